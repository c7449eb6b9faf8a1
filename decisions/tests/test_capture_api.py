from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import jwt
import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEntry, AuditQueuedEntry, EventType
from audit.services import queue_seal
from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw, pause_end, pause_start
from consentry.signing import verify_jws
from decisions.models import CaptureGrant, DecisionCounter
from decisions.pseudonyms import pseudonym
from decisions.tests.conftest import (
    PURPOSE,
    acknowledge,
    capture,
    codes,
    device_client,
    grant_consent,
)
from people.services import employee_set_status, employee_transfer

pytestmark = pytest.mark.django_db


def test_an_employee_with_consent_is_allowed_and_gets_a_signed_grant(us_employee):
    grant_consent(us_employee, "keystrokes", "mouse_movement")
    client = device_client(us_employee)

    decision = capture(client, "keystrokes", "mouse_movement", "screenshots")

    assert decision["employee"] == us_employee.hr_id
    assert decision["categories"]["keystrokes"] == {"allowed": True, "reasons": []}
    assert codes(decision, "screenshots") == ["no_consent"]
    grant = decision["grant"]
    assert grant["categories"] == ["keystrokes", "mouse_movement"]
    assert grant["subject"] == pseudonym(purpose=PURPOSE, hr_id=us_employee.hr_id)
    # Data keys for the allowed categories only; the feed cursor alongside.
    assert sorted(grant["data_keys"]) == ["keystrokes", "mouse_movement"]
    assert decision["revocation_cursor"].startswith("c_")
    claims = verify_jws(grant["token"], audience="laptop-7")
    assert claims["jti"] == grant["id"] and claims["sub"] == grant["subject"]
    assert claims["purpose"] == PURPOSE and claims["categories"] == ["keystrokes", "mouse_movement"]
    assert claims["policy_version"] == decision["policy_version"]
    assert claims["exp"] - claims["iat"] == 60
    assert decision["consent_version"] == 2


def test_a_grant_is_stored_and_audited_in_one_entry(us_employee):
    grant_consent(us_employee, "keystrokes")
    decision = capture(device_client(us_employee), "keystrokes", "screenshots")

    stored = CaptureGrant.objects.get(pk=decision["grant"]["id"])
    assert stored.employee == us_employee and stored.subject == decision["grant"]["subject"]
    # Queued with the grant, chained by the sealer.
    queued = AuditQueuedEntry.objects.get()
    assert (queued.event_type, queued.object_id) == (EventType.GRANT_ISSUED, stored.pk)
    assert not AuditEntry.objects.filter(event_type=EventType.GRANT_ISSUED).exists()
    queue_seal()
    entry = AuditEntry.objects.get(event_type=EventType.GRANT_ISSUED)
    assert entry.object_id == stored.pk and entry.subject == us_employee.hr_id
    assert entry.payload["categories"] == ["keystrokes"]
    assert entry.payload["denied"] == {"screenshots": ["no_consent"]}


def test_a_grant_token_is_refused_for_another_device(us_employee):
    grant_consent(us_employee, "keystrokes")
    token = capture(device_client(us_employee), "keystrokes")["grant"]["token"]
    with pytest.raises(jwt.InvalidAudienceError):
        verify_jws(token, audience="someone-elses-laptop")


def test_a_denied_decision_has_no_grant_and_is_counted_not_audited(us_employee):
    client = device_client(us_employee)
    before = AuditEntry.objects.count()

    decision = capture(client, "keystrokes")
    capture(client, "keystrokes")

    assert decision["grant"] is None and codes(decision, "keystrokes") == ["no_consent"]
    assert AuditEntry.objects.count() == before
    assert not AuditQueuedEntry.objects.exists()
    counter = DecisionCounter.objects.get(purpose=PURPOSE, reason="no_consent")
    assert counter.count == 2 and counter.day == timezone.now().date()


def test_a_new_york_employee_needs_the_notice_acknowledged(policy, ny_employee):
    grant_consent(ny_employee, "keystrokes")
    client = device_client(ny_employee)

    denied = capture(client, "keystrokes")
    acknowledge(ny_employee)
    allowed = capture(client, "keystrokes")

    [reason] = denied["categories"]["keystrokes"]["reasons"]
    assert reason["code"] == "precondition_missing"
    assert reason["preconditions"] == ["notice_acknowledgement"] and "notice_acknowledgement" in reason["detail"]
    assert allowed["categories"]["keystrokes"]["allowed"]


def test_a_german_employee_is_blocked_even_with_no_consent_possible(policy, de_employee):
    decision = capture(device_client(de_employee), "keystrokes")
    assert codes(decision, "keystrokes")[0] == "jurisdiction_blocked"
    assert decision["grant"] is None


def test_an_employee_where_no_rule_exists_is_denied_as_unknown_jurisdiction(policy):
    employee = make_employee(country="BR", subdivision="BR-SP")
    decision = capture(device_client(employee), "keystrokes")
    [reason, *_] = decision["categories"]["keystrokes"]["reasons"]
    assert reason["code"] == "jurisdiction_unknown" and reason["missing_configuration"] is True


def test_withdrawal_denies_the_next_capture(us_employee):
    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    assert capture(client, "keystrokes")["grant"] is not None

    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    decision = capture(client, "keystrokes")
    assert codes(decision, "keystrokes") == ["consent_withdrawn"] and decision["grant"] is None
    assert decision["consent_version"] == 2


def test_a_transfer_to_a_blocked_country_denies_the_next_capture(us_employee):
    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    assert capture(client, "keystrokes")["grant"] is not None

    employee_transfer(employee=us_employee, country="FR", actor=SYSTEM)

    assert "jurisdiction_blocked" in codes(capture(client, "keystrokes"), "keystrokes")


def test_an_employee_on_leave_or_terminated_is_denied(us_employee):
    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    employee_set_status(employee=us_employee, status="on_leave", actor=SYSTEM)
    assert codes(capture(client, "keystrokes"), "keystrokes") == ["employee_inactive"]
    employee_set_status(employee=us_employee, status="terminated", actor=SYSTEM)
    assert codes(capture(client, "keystrokes"), "keystrokes") == ["employee_inactive"]


def test_a_paused_employee_is_denied_until_the_pause_ends(us_employee):
    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    pause_start(employee=us_employee, until=timezone.now() + timedelta(minutes=30), actor=SYSTEM)

    assert codes(capture(client, "keystrokes"), "keystrokes") == ["paused_by_employee"]
    pause_end(employee=us_employee, actor=SYSTEM)
    assert capture(client, "keystrokes")["categories"]["keystrokes"]["allowed"]


def test_performance_evaluation_is_always_prohibited(us_employee):
    grant_consent(us_employee, "keystrokes")
    decision = capture(device_client(us_employee), "keystrokes", purpose="performance_evaluation")
    assert "purpose_prohibited" in codes(decision, "keystrokes") and decision["grant"] is None
    assert DecisionCounter.objects.filter(purpose="performance_evaluation", reason="purpose_prohibited").exists()


def test_an_unknown_purpose_is_missing_configuration_and_counted_without_its_name(us_employee):
    decision = capture(device_client(us_employee), "keystrokes", purpose="mind_reading")
    [reason] = decision["categories"]["keystrokes"]["reasons"]
    assert reason["code"] == "purpose_unknown" and reason["missing_configuration"]
    assert DecisionCounter.objects.get(reason="purpose_unknown").purpose == "(unknown)"


@pytest.mark.parametrize(
    "context",
    [
        {"app": "com.1password.1password"},
        {"domain": "secure.chase.com"},
        {"domain": "chase.com"},
        {"domain": "github.com", "private_browsing": True},
        {"flags": ["private_browsing"]},
    ],
)
def test_an_excluded_app_domain_or_context_is_never_captured(us_employee, context):
    grant_consent(us_employee, "keystrokes")
    decision = capture(device_client(us_employee), "keystrokes", context=context)
    assert codes(decision, "keystrokes") == ["excluded_context"] and decision["grant"] is None


def test_an_ordinary_context_is_captured(us_employee):
    grant_consent(us_employee, "keystrokes")
    context = {"app": "com.microsoft.VSCode", "domain": "github.com", "private_browsing": False}
    assert capture(device_client(us_employee), "keystrokes", context=context)["grant"] is not None


@pytest.fixture
def midday():
    """Grants end at UTC midnight at the latest (the day's data key): lifetimes are checked at noon."""
    noon = datetime.combine(timezone.now().date(), time(12), tzinfo=UTC)
    with time_machine.travel(noon, tick=True):
        yield noon


def test_the_grant_lifetime_follows_the_setting(us_employee, settings, midday):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 300
    grant_consent(us_employee, "keystrokes")
    grant = capture(device_client(us_employee), "keystrokes")["grant"]
    stored = CaptureGrant.objects.get(pk=grant["id"])
    assert stored.expires_at - stored.issued_at == timedelta(seconds=300)


def test_the_grant_lifetime_never_exceeds_fifteen_minutes(us_employee, settings, midday):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 86400
    grant_consent(us_employee, "keystrokes")
    grant = capture(device_client(us_employee), "keystrokes")["grant"]
    stored = CaptureGrant.objects.get(pk=grant["id"])
    assert stored.expires_at - stored.issued_at == timedelta(minutes=15)


@pytest.fixture
def fresh_keys(settings, tmp_path):
    from consentry import signing

    settings.STATE_DIR = tmp_path
    (tmp_path / "secrets").mkdir()
    settings.CONSENTRY_SIGNING_KEY = signing.ed25519_pem()
    (tmp_path / "secrets" / "consentry_signing_key").write_text(settings.CONSENTRY_SIGNING_KEY)
    signing.keyring.cache_clear()
    yield signing
    signing.keyring.cache_clear()


def test_a_grant_signed_before_a_key_rotation_still_verifies_with_the_published_keys(us_employee, fresh_keys, client):
    grant_consent(us_employee, "keystrokes")
    device = device_client(us_employee)
    before = capture(device, "keystrokes")["grant"]["token"]

    fresh_keys.rotate_local_key("signing")
    after = capture(device, "keystrokes")["grant"]["token"]

    published = {key["kid"]: key for key in client.get("/.well-known/jwks.json").json()["keys"]}
    for token in (before, after):
        jwk = published[jwt.get_unverified_header(token)["kid"]]
        claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience="laptop-7")
        assert claims["purpose"] == PURPOSE
    assert jwt.get_unverified_header(before)["kid"] != jwt.get_unverified_header(after)["kid"]


def test_staff_revoke_tokens_from_the_admin(us_employee, admin_client):
    device = device_client(us_employee)
    response = admin_client.post(
        "/admin/people/apitoken/", {"action": "revoke", "_selected_action": [device.token.pk]}, follow=True
    )
    assert response.status_code == 200
    device.token.refresh_from_db()
    assert device.token.revoked_at is not None
    assert (
        device.post("/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}).status_code == 401
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_denial_counters_commit_on_their_own_in_one_statement(django_assert_num_queries):
    from decisions.services import decision_counters_add

    day = timezone.now().date()
    with django_assert_num_queries(1):
        decision_counters_add(day=day, purpose=PURPOSE, reasons=["no_consent", "paused_by_employee", "no_consent"])
    decision_counters_add(day=day, purpose=PURPOSE, reasons=["no_consent"])

    counts = dict(DecisionCounter.objects.filter(day=day).values_list("reason", "count"))
    assert counts == {"no_consent": 2, "paused_by_employee": 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_capture_decision_makes_few_round_trips(policy, us_employee, de_employee, django_assert_num_queries):
    """Round trips are what a decision costs: the token; the feed head, policy marker and facts together; then
    for a denial one counter statement, for a grant the locked re-read and the writes."""
    grant_consent(us_employee, "keystrokes")
    allowed, denied = device_client(us_employee), device_client(de_employee, device_id="laptop-9")
    capture(allowed, "keystrokes")  # the day's data key is created once; later grants only read it
    capture(denied, "keystrokes")  # the compiled policy is cached from here on

    with django_assert_num_queries(3):
        assert "jurisdiction_blocked" in codes(capture(denied, "keystrokes"), "keystrokes")
    # token, reads; BEGIN, lock, facts again, grant, data keys, ledger queue, COMMIT
    with django_assert_num_queries(9):
        assert capture(allowed, "keystrokes")["grant"] is not None


def _change_while_waiting_for_the_lock(monkeypatch, change):
    """Run ``change`` (committed first) while a capture decision waits for the employee's lock."""
    from decisions import services

    locked = services._lock_employee

    def lock_after_the_change(pk):
        change()
        return locked(pk)

    monkeypatch.setattr(services, "_lock_employee", lock_after_the_change)


def test_a_pause_committed_while_a_decision_waited_for_the_lock_denies_it(monkeypatch, us_employee):
    from decisions import engine
    from decisions.services import capture_decide

    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    _change_while_waiting_for_the_lock(
        monkeypatch,
        lambda: pause_start(employee=us_employee, until=timezone.now() + timedelta(hours=1), actor=SYSTEM),
    )

    outcome = capture_decide(token=client.token, request=engine.CaptureRequest(PURPOSE, ("keystrokes",)))

    # The request arrived before the pause began, but is decided after it committed.
    assert outcome.grant is None and [r.code for r in outcome.decision.categories[0].reasons] == ["paused_by_employee"]


def test_a_grant_issued_while_a_withdrawal_waited_for_the_lock_is_dated_before_it(monkeypatch, us_employee):
    from consent import services as consent_services
    from decisions import engine
    from decisions.services import capture_decide

    grant_consent(us_employee, "keystrokes")
    client = device_client(us_employee)
    issued = []
    locked = consent_services._lock_employee

    def lock_after_a_grant(employee):
        # The device's decision holds the lock first and commits its grant.
        issued.append(capture_decide(token=client.token, request=engine.CaptureRequest(PURPOSE, ("keystrokes",))))
        return locked(employee)

    monkeypatch.setattr(consent_services, "_lock_employee", lock_after_a_grant)
    (withdrawal,) = consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    # Dated in lock order: the use decision must see the grant as issued before the withdrawal,
    # so what was captured under it stays unusable even after a later re-consent.
    first = issued[0].grant
    assert first is not None
    assert first.grant.issued_at < withdrawal.at

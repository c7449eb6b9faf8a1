"""The issue's acceptance cases, on the default policy pack that ships with the project."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw, pause_end, pause_start
from decisions.tests.conftest import PURPOSE, acknowledge, capture, codes, device_client, grant_consent, pipeline_client
from decisions.tests.test_use_api import issue_grant, reasons, record, use
from governance import services as gov
from governance.models import Region
from people.services import employee_transfer

pytestmark = pytest.mark.django_db


def employee_in(subdivision: str, country: str = "US"):
    return make_employee(country=country, subdivision=subdivision)


def test_a_new_york_employee_with_consent_and_acknowledgement_is_allowed(default_pack):
    nina = employee_in("US-NY")
    grant_consent(nina, "keystrokes")
    client = device_client(nina)

    without = capture(client, "keystrokes")
    acknowledge(nina)
    with_ack = capture(client, "keystrokes")

    [reason] = without["categories"]["keystrokes"]["reasons"]
    assert reason["code"] == "precondition_missing" and reason["preconditions"] == ["notice_acknowledgement"]
    assert with_ack["categories"]["keystrokes"]["allowed"] and with_ack["grant"] is not None


def test_a_german_employee_with_consent_is_blocked(default_pack):
    # Consent cannot be given in Germany; this employee gave it while working in the US.
    dieter = employee_in("US-WA")
    grant_consent(dieter, "keystrokes")
    employee_transfer(employee=dieter, country="DE", subdivision="DE-BE", actor=SYSTEM)
    decision = capture(device_client(dieter), "keystrokes")
    assert codes(decision, "keystrokes") == ["jurisdiction_blocked"] and decision["grant"] is None


def test_an_employee_where_no_rule_exists_is_denied_as_jurisdiction_unknown(default_pack):
    decision = capture(device_client(employee_in("BR-SP", "BR")), "keystrokes")
    assert codes(decision, "keystrokes")[0] == "jurisdiction_unknown"


@pytest.mark.parametrize(("country", "subdivision"), [("GB", "GB-LND"), ("FR", ""), ("IT", "IT-RM"), ("NO", "")])
def test_the_eu_eea_and_uk_are_blocked(default_pack, country, subdivision):
    decision = capture(device_client(employee_in(subdivision, country)), "keystrokes")
    assert codes(decision, "keystrokes")[0] == "jurisdiction_blocked"


def test_a_california_employee_transferred_to_france_is_denied_on_the_next_decision(default_pack):
    carlos = employee_in("US-CA")
    grant_consent(carlos, "keystrokes", "screenshots")
    acknowledge(carlos)  # notice at collection
    client = device_client(carlos)
    assert capture(client, "keystrokes", "screenshots")["grant"]["categories"] == ["keystrokes", "screenshots"]

    employee_transfer(employee=carlos, country="FR", actor=SYSTEM)

    decision = capture(client, "keystrokes", "screenshots")
    assert decision["grant"] is None and codes(decision, "keystrokes") == ["jurisdiction_blocked"]


def test_a_california_employee_needs_notice_at_collection(default_pack):
    carlos = employee_in("US-CA")
    grant_consent(carlos, "keystrokes")
    [reason] = capture(device_client(carlos), "keystrokes")["categories"]["keystrokes"]["reasons"]
    assert reason["preconditions"] == ["notice_at_collection"]


def test_after_a_withdrawal_the_next_capture_denies_and_earlier_records_are_unusable(default_pack):
    wanda = employee_in("US-WA")
    grant_consent(wanda, "keystrokes")
    device = device_client(wanda)
    grant = issue_grant(wanda, "keystrokes", device=device)
    earlier = record(grant, "keystrokes")
    pipeline = pipeline_client()
    assert use(pipeline, [earlier])["results"][0]["allowed"]

    consent_withdraw(employee=wanda, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    assert codes(capture(device, "keystrokes"), "keystrokes") == ["consent_withdrawn"]
    assert reasons(use(pipeline, [earlier])) == ["consent_withdrawn"]


def test_records_without_or_outside_their_grant_are_denied(default_pack):
    wanda = employee_in("US-WA")
    grant_consent(wanda, "keystrokes", "mouse_movement")
    grant = issue_grant(wanda, "keystrokes")
    body = use(
        pipeline_client(),
        [
            {**record(grant), "grant_id": "g_unknown"},
            record(grant, "mouse_movement", id="r2"),
            record(grant, id="r3", at=grant.expires_at + timedelta(minutes=1)),
        ],
    )
    assert [reasons(body, i)[0] for i in range(3)] == ["no_capture_grant", "grant_mismatch", "grant_mismatch"]


def test_performance_evaluation_is_always_prohibited(default_pack):
    wanda = employee_in("US-WA")
    grant_consent(wanda, "keystrokes")
    assert "purpose_prohibited" in codes(
        capture(device_client(wanda), "keystrokes", purpose="performance_evaluation"), "keystrokes"
    )
    grant = issue_grant(wanda, "keystrokes")
    body = use(pipeline_client("performance_evaluation"), [record(grant)], purpose="performance_evaluation")
    assert "purpose_prohibited" in reasons(body)


@pytest.mark.parametrize(
    "context",
    [
        {"app": "com.1password.1password"},
        {"domain": "secure.chase.com"},
        {"domain": "mail.google.com"},
        {"private_browsing": True},
    ],
)
def test_excluded_apps_domains_and_private_windows_are_never_captured(default_pack, context):
    wanda = employee_in("US-WA")
    grant_consent(wanda, "keystrokes", "screenshots")
    decision = capture(device_client(wanda), "keystrokes", "screenshots", context=context)
    assert decision["grant"] is None
    assert codes(decision, "keystrokes") == codes(decision, "screenshots") == ["excluded_context"]


def test_a_paused_employee_is_denied_until_the_pause_ends(default_pack):
    wanda = employee_in("US-WA")
    grant_consent(wanda, "keystrokes")
    client = device_client(wanda)
    pause_start(employee=wanda, until=timezone.now() + timedelta(minutes=15), actor=SYSTEM)
    assert codes(capture(client, "keystrokes"), "keystrokes") == ["paused_by_employee"]
    pause_end(employee=wanda, actor=SYSTEM)
    assert capture(client, "keystrokes")["grant"] is not None


def test_an_illinois_employee_needs_their_own_biometric_release_for_keystroke_timing_only(default_pack):
    ian = employee_in("US-IL")
    grant_consent(ian, "keystrokes", "keystroke_timing")
    client = device_client(ian)
    before = capture(client, "keystrokes", "keystroke_timing")
    assert before["grant"]["categories"] == ["keystrokes"]
    assert codes(before, "keystroke_timing") == ["precondition_missing"]

    gov.instrument_save(
        kind="biometric_release",
        title="Ian's written release",
        region=Region.objects.get(code="US-IL"),
        valid_from=timezone.now().date(),
        document_ref="hr/releases/ian.pdf",
        employee=ian,
        actor=SYSTEM,
    )

    after = capture(client, "keystrokes", "keystroke_timing")
    assert sorted(after["grant"]["categories"]) == ["keystroke_timing", "keystrokes"]


@pytest.mark.parametrize(("country", "subdivision"), [("US", "US-CT"), ("CA", "CA-ON"), ("US", "US-TX")])
def test_regions_whose_preconditions_the_pack_meets_allow_consented_capture(default_pack, country, subdivision):
    employee = employee_in(subdivision, country)
    grant_consent(employee, "mouse_movement")
    assert capture(device_client(employee), "mouse_movement")["grant"] is not None


def test_delaware_needs_one_acknowledgement_of_any_notice(default_pack):
    employee = employee_in("US-DE")
    grant_consent(employee, "mouse_movement")
    client = device_client(employee)
    assert codes(capture(client, "mouse_movement"), "mouse_movement") == ["precondition_missing"]
    acknowledge(employee)
    assert capture(client, "mouse_movement")["grant"] is not None

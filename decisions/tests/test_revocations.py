"""The revocation feed's store: every change that takes something away becomes events, exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from django.conf import settings
from django.db import IntegrityError
from django.utils import timezone

from conftest import POLICY_START, SYSTEM, make_employee
from consent.services import consent_expire_due, consent_withdraw, consent_withdraw_all, pause_start
from consentry import outbox
from consentry.errors import DomainError
from consentry.models import OutboxMessage
from consentry.tasks import relay_outbox
from consentry.tests.workers import shared_database_url
from decisions.models import RevocationEvent
from decisions.pseudonyms import pseudonym
from decisions.tests.conftest import (
    PURPOSE,
    acknowledge,
    capture,
    device_client,
    feed_of,
    grant_consent,
    published_notice,
    relay,
)
from governance import services as gov
from governance.models import JurisdictionRule, PolicyRevision, Purpose
from governance.tasks import policy_boundaries_announce_task
from people.services import employee_set_status, employee_transfer
from people.tokens import token_revoke

ROOT = Path(settings.BASE_DIR)
ALL = ["keystroke_timing", "keystrokes", "mouse_movement", "screenshots"]


@pytest.fixture
def consenting(policy):
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, *ALL)
    relay()  # the policy's own rule approvals: nobody had consent yet
    return employee


def _types(employee) -> list[tuple[str, str, list[str]]]:
    return [(event.type, event.purpose, event.categories) for event in feed_of(employee)]


@pytest.mark.django_db
class TestWhatIsPublished:
    def test_a_withdrawal_publishes_its_categories_under_the_purpose_pseudonym(self, consenting):
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots", "keystrokes"], actor=SYSTEM)
        assert feed_of(consenting) == []  # nothing before the relay runs

        relay()

        (event,) = feed_of(consenting)
        assert (event.type, event.purpose, event.categories) == (
            "consent_withdrawn",
            PURPOSE,
            ["keystrokes", "screenshots"],
        )
        assert event.subject == pseudonym(purpose=PURPOSE, hr_id=consenting.hr_id)
        assert event.subject != consenting.hr_id

    def test_withdrawing_everything_is_one_event_for_every_withdrawn_category(self, consenting):
        consent_withdraw_all(employee=consenting, actor=SYSTEM)
        relay()
        assert _types(consenting) == [("consent_withdrawn", PURPOSE, ALL)]

    def test_withdrawing_what_was_never_granted_publishes_nothing(self, policy):
        employee = make_employee(country="US", subdivision="US-WA")
        consent_withdraw(employee=employee, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        relay()
        assert feed_of(employee) == []

    def test_expiry_publishes_consent_expired(self, consenting):
        consent_expire_due(at=timezone.now() + timedelta(days=400))
        relay()
        assert _types(consenting) == [("consent_expired", PURPOSE, ALL)]

    def test_a_pause_stops_every_category_of_every_grantable_purpose(self, consenting):
        pause_start(employee=consenting, until=timezone.now() + timedelta(minutes=30), actor=SYSTEM)
        relay()
        # performance_evaluation is prohibited: nobody holds a grant for it.
        assert _types(consenting) == [("paused", PURPOSE, ALL)]

    @pytest.mark.parametrize("status", ["on_leave", "terminated"])
    def test_leave_and_termination_publish_employee_inactive(self, consenting, status):
        employee_set_status(employee=consenting, status=status, actor=SYSTEM)
        relay()
        assert _types(consenting) == [("employee_inactive", PURPOSE, ALL)]

    def test_coming_back_from_leave_publishes_nothing_more(self, consenting):
        employee_set_status(employee=consenting, status="on_leave", actor=SYSTEM)
        employee_set_status(employee=consenting, status="active", actor=SYSTEM)
        relay()
        assert [event.type for event in feed_of(consenting)] == ["employee_inactive"]

    def test_a_transfer_into_a_blocked_region_publishes_jurisdiction_blocked(self, consenting):
        employee_transfer(employee=consenting, country="DE", subdivision="DE-BE", actor=SYSTEM)
        relay()
        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]

    def test_a_transfer_into_a_region_without_rules_publishes_jurisdiction_blocked(self, consenting):
        employee_transfer(employee=consenting, country="BR", actor=SYSTEM)
        relay()
        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]

    def test_a_transfer_that_adds_an_unmet_precondition_publishes_policy_changed(self, consenting):
        # US-NY needs the monitoring notice acknowledged, which this employee never did.
        employee_transfer(employee=consenting, country="US", subdivision="US-NY", actor=SYSTEM)
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ALL)]

    def test_a_transfer_that_takes_nothing_away_publishes_nothing(self, consenting):
        acknowledge(consenting)
        employee_transfer(employee=consenting, country="US", subdivision="US-NY", actor=SYSTEM)
        relay()
        assert feed_of(consenting) == []

    def test_revoking_a_device_token_revokes_exactly_its_live_grants(self, consenting):
        laptop, desktop = device_client(consenting, "laptop"), device_client(consenting, "desktop")
        mine = capture(laptop, "keystrokes", "screenshots")["grant"]["id"]
        capture(desktop, "keystrokes")

        token_revoke(token=laptop.token, actor=SYSTEM)
        relay()

        (event,) = feed_of(consenting)
        assert (event.type, event.categories, event.grants) == ("grant_revoked", ["keystrokes", "screenshots"], [mine])

    def test_revoking_a_device_token_without_live_grants_publishes_nothing(self, consenting):
        token_revoke(token=device_client(consenting).token, actor=SYSTEM)
        relay()
        assert feed_of(consenting) == []


def _supersede(region_code: str, **fields) -> JurisdictionRule:
    old = JurisdictionRule.objects.get(region_id=region_code, state="approved", effective_to=None)
    draft = gov.rule_draft(
        region=old.region, supersedes=old, actor=SYSTEM, **{"status": "allow", "effective_from": POLICY_START, **fields}
    )
    return gov.rule_approve(rule=draft, actor=SYSTEM, via="tests")


@pytest.mark.django_db
class TestRuleChanges:
    def test_a_rule_that_blocks_a_region_tells_the_employees_who_had_an_allow(self, consenting):
        no_consent = make_employee(country="US", subdivision="US-WA")
        elsewhere = make_employee(country="US", subdivision="US-NY")
        grant_consent(elsewhere, "keystrokes")
        _supersede("US-NY", status="conditional", preconditions=["notice_acknowledgement"])
        relay()
        assert feed_of(elsewhere) == []  # nothing was allowed there before (no acknowledgement)

        _supersede("US", status="block")
        relay()

        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]
        assert feed_of(no_consent) == []

    def test_a_rule_that_blocks_one_category_publishes_policy_changed_for_it(self, consenting):
        _supersede("US", blocked_categories=["screenshots"])
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ["screenshots"])]

    def test_a_rule_that_only_opens_things_up_publishes_nothing(self, consenting):
        _supersede("US", blocked_categories=["screenshots"])
        relay()
        _supersede("US")
        relay()
        assert [event.categories for event in feed_of(consenting)] == [["screenshots"]]

    def test_a_subdivision_rule_reaches_only_that_subdivision(self, consenting):
        washington = gov.region_save(code="US-WA", actor=SYSTEM)
        oregon = make_employee(country="US", subdivision="US-OR")
        grant_consent(oregon, "keystrokes")
        gov.rule_approve(
            rule=gov.rule_draft(region=washington, status="block", effective_from=POLICY_START, actor=SYSTEM),
            actor=SYSTEM,
            via="tests",
        )
        relay()
        assert [event.type for event in feed_of(consenting)] == ["jurisdiction_blocked"]
        assert feed_of(oregon) == []


@pytest.mark.django_db
class TestRuleBoundaries:
    """Rule periods approved to begin or end later are announced when they do, exactly once."""

    @pytest.fixture
    def now(self, consenting):
        moment = timezone.now()
        assert gov.policy_boundaries_announce(now=moment) == 0  # the first run only sets the watermark
        return moment

    def test_a_rule_approved_to_start_later_is_announced_when_it_starts(self, consenting, now):
        starts = now + timedelta(hours=1)
        _supersede("US", status="block", effective_from=starts)
        relay()
        assert feed_of(consenting) == []  # nothing is taken away yet

        assert gov.policy_boundaries_announce(now=starts - timedelta(seconds=1)) == 0
        # One moment: the old rule's end is the new one's start.
        assert gov.policy_boundaries_announce(now=starts + timedelta(seconds=5)) == 1
        relay()

        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]
        assert feed_of(consenting)[0].at == starts
        assert gov.policy_boundaries_announce(now=starts + timedelta(seconds=20)) == 0
        relay()
        assert len(feed_of(consenting)) == 1

    def test_a_rule_that_ends_with_nothing_after_it_leaves_the_region_unknown(self, consenting, now):
        ends = now + timedelta(minutes=10)
        _supersede("US", effective_to=ends)
        relay()
        assert feed_of(consenting) == []

        assert gov.policy_boundaries_announce(now=ends) == 1
        relay()

        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]

    def test_a_start_that_opens_things_up_announces_nothing_to_anyone(self, consenting, now):
        starts = now + timedelta(minutes=5)
        _supersede("US", blocked_categories=["screenshots"])
        relay()
        _supersede("US", effective_from=starts)
        assert gov.policy_boundaries_announce(now=starts) == 1
        relay()
        assert [event.categories for event in feed_of(consenting)] == [["screenshots"]]  # only the first approval's

    def test_a_rule_approved_after_its_start_was_told_by_its_approval(self, consenting, now):
        # The watermark lies an hour back; the rule starts half an hour back and is approved now.
        PolicyRevision.objects.filter(pk=1).update(boundaries_announced_until=now - timedelta(hours=1))
        _supersede("US", status="block", effective_from=now - timedelta(minutes=30))
        relay()
        assert _types(consenting) == [("jurisdiction_blocked", PURPOSE, ALL)]

        assert gov.policy_boundaries_announce(now=now + timedelta(seconds=1)) == 0

    def test_a_material_notice_published_later_is_announced_when_it_is(self, consenting, now):
        published = now + timedelta(days=1)
        _republish_notice(reworded="screenshots", material=True, published_at=published)
        relay()
        assert feed_of(consenting) == []  # the old wording still holds

        assert gov.policy_boundaries_announce(now=published - timedelta(seconds=1)) == 0
        assert gov.policy_boundaries_announce(now=published) == 1
        relay()

        assert _types(consenting) == [("policy_changed", PURPOSE, ["screenshots"])]
        assert feed_of(consenting)[0].at == published
        assert gov.policy_boundaries_announce(now=published + timedelta(minutes=1)) == 0

    def test_a_notice_published_on_approval_is_told_by_its_approval(self, consenting, now):
        _republish_notice(reworded="screenshots", material=True)
        relay()
        assert len(feed_of(consenting)) == 1
        assert gov.policy_boundaries_announce(now=timezone.now() + timedelta(seconds=1)) == 0

    def test_a_clock_that_goes_back_announces_nothing_twice(self, consenting, now):
        starts = now + timedelta(minutes=1)
        _supersede("US", status="block", effective_from=starts)
        assert gov.policy_boundaries_announce(now=starts) == 1
        assert gov.policy_boundaries_announce(now=starts - timedelta(seconds=30)) == 0
        assert gov.policy_boundaries_announce(now=starts + timedelta(seconds=30)) == 0

    def test_the_beat_runs_the_announcer(self, consenting, now):
        starts = now + timedelta(seconds=1)
        _supersede("US", status="block", effective_from=starts)
        PolicyRevision.objects.filter(pk=1).update(boundaries_announced_until=starts - timedelta(seconds=1))
        while timezone.now() <= starts:
            time.sleep(0.05)
        assert policy_boundaries_announce_task() == 1
        relay()
        assert [event.type for event in feed_of(consenting)] == ["jurisdiction_blocked"]
        schedule = settings.CELERY_BEAT_SCHEDULE["policy-boundaries"]
        assert schedule["task"] == policy_boundaries_announce_task.name


@pytest.mark.django_db
class TestExclusions:
    """A new or widened exclusion tells the holders of the categories it covers; anything else tells nobody."""

    def test_a_new_exclusion_names_its_categories(self, consenting):
        gov.exclusion_save(kind="app", pattern="com.signal.*", label="Signal", categories=["screenshots"], actor=SYSTEM)
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ["screenshots"])]

    def test_an_exclusion_of_every_category_names_them_all(self, consenting):
        gov.exclusion_save(kind="domain", pattern="*.hospital.example", label="Health", actor=SYSTEM)
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ALL)]

    def test_widening_names_only_what_was_added(self, consenting):
        save = partial(gov.exclusion_save, kind="app", pattern="com.signal.*", label="Signal", actor=SYSTEM)
        save(categories=["screenshots"])
        relay()
        save(categories=["keystrokes", "screenshots"])
        relay()
        assert [event.categories for event in feed_of(consenting)] == [["screenshots"], ["keystrokes"]]

    def test_narrowing_relabelling_and_removing_tell_nobody(self, consenting):
        save = partial(gov.exclusion_save, kind="app", pattern="com.signal.*", actor=SYSTEM)
        exclusion = save(label="Signal")
        relay()
        assert len(feed_of(consenting)) == 1
        save(label="Signal", categories=["screenshots"])
        save(label="Signal messenger", categories=["screenshots"])
        gov.exclusion_remove(exclusion=exclusion, actor=SYSTEM)
        relay()
        assert len(feed_of(consenting)) == 1

    def test_a_refused_exclusion_publishes_nothing(self, consenting):
        with pytest.raises(DomainError):
            gov.exclusion_save(
                kind="app", pattern="com.signal.*", label="Signal", categories=["telepathy"], actor=SYSTEM
            )
        assert not OutboxMessage.objects.filter(payload__exclusion="app:com.signal.*").exists()
        relay()
        assert feed_of(consenting) == []

    def test_consent_given_after_the_exclusion_is_not_taken_back(self, policy):
        gov.exclusion_save(kind="app", pattern="com.signal.*", label="Signal", actor=SYSTEM)
        later = make_employee(country="US", subdivision="US-WA")
        grant_consent(later, *ALL)
        relay()
        assert feed_of(later) == []


def _republish_notice(*, reworded: str, material: bool, published_at=None) -> None:
    notice = published_notice()
    items = [
        (
            item.purpose_id,
            item.category_id,
            item.description + (" Now more often." if item.category_id == reworded else ""),
        )
        for item in notice.items.all()
    ]
    fields = ("title", "summary", "body", "retention_statement", "access_statement", "no_evaluation_statement")
    draft = gov.notice_draft(
        **{name: getattr(notice, name) for name in fields}, items=items, material=material, actor=SYSTEM
    )
    gov.notice_approve(notice=draft, actor=SYSTEM, via="tests", published_at=published_at)


def _narrow_purpose(*, drop: Sequence[str] = (), prohibit: bool = False) -> None:
    purpose = Purpose.objects.get(slug=PURPOSE)
    gov.purpose_save(
        slug=purpose.slug,
        name=purpose.name,
        description=purpose.description,
        categories=[slug for slug in purpose.categories.values_list("slug", flat=True) if slug not in drop],
        consent_validity_days=purpose.consent_validity_days,
        prohibited=prohibit,
        actor=SYSTEM,
    )


@pytest.mark.django_db
class TestPolicyChangesThatTakeConsentAway:
    def test_a_material_notice_change_revokes_only_the_reworded_category(self, consenting):
        others = make_employee(country="US", subdivision="US-WA")
        grant_consent(others, "keystrokes")
        relay()

        _republish_notice(reworded="screenshots", material=True)
        relay()

        assert _types(consenting) == [("policy_changed", PURPOSE, ["screenshots"])]
        assert feed_of(others) == []  # never consented to screenshots: nothing to take away

    def test_a_non_material_notice_change_publishes_nothing(self, consenting):
        _republish_notice(reworded="screenshots", material=False)
        relay()
        assert feed_of(consenting) == []

    def test_a_withdrawn_consent_is_not_revoked_again(self, consenting):
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        relay()
        _republish_notice(reworded="screenshots", material=True)
        relay()
        assert [event.type for event in feed_of(consenting)] == ["consent_withdrawn"]

    def test_consent_given_under_the_new_notice_before_the_relay_stands(self, consenting):
        _republish_notice(reworded="screenshots", material=True)
        grant_consent(consenting, "screenshots")  # re-consent under the new wording, before the relay runs
        relay()
        assert feed_of(consenting) == []

    def test_a_purpose_that_drops_a_category_revokes_it(self, consenting):
        _narrow_purpose(drop=["screenshots"])
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ["screenshots"])]

    def test_a_purpose_made_prohibited_revokes_everything_granted_under_it(self, consenting):
        _narrow_purpose(prohibit=True)
        relay()
        assert _types(consenting) == [("policy_changed", PURPOSE, ALL)]

    def test_saving_a_purpose_unchanged_publishes_nothing(self, consenting):
        _narrow_purpose()
        relay()
        assert feed_of(consenting) == []


@pytest.mark.django_db
class TestRelay:
    def test_the_relay_is_idempotent(self, consenting):
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        assert relay() == 1
        assert relay() == 0
        assert len(feed_of(consenting)) == 1
        assert OutboxMessage.objects.get(topic="consent_withdrawn").delivered_at is not None

    def test_a_message_handed_over_twice_cannot_add_its_events_twice(self, consenting):
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        relay()
        message = OutboxMessage.objects.get(topic="consent_withdrawn")
        from decisions.revocations import feed_from_outbox

        with pytest.raises(IntegrityError):
            feed_from_outbox(outbox.decode(message))

    def test_a_failing_consumer_keeps_its_message_pending_and_lets_the_rest_through(self, consenting, monkeypatch):
        other = make_employee(country="US", subdivision="US-WA")
        grant_consent(other, "keystrokes")
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        consent_withdraw(employee=other, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
        first = OutboxMessage.objects.filter(topic="consent_withdrawn").order_by("id").first()
        assert first is not None

        def broken(delivery):
            if delivery.id == first.pk:
                raise RuntimeError("consumer down")

        monkeypatch.setitem(outbox._consumers, "consent_withdrawn", [broken, *outbox._consumers["consent_withdrawn"]])
        relay()

        first.refresh_from_db()
        assert first.delivered_at is None and first.attempts == 1 and "consumer down" in first.last_error
        assert feed_of(consenting) == [] and len(feed_of(other)) == 1
        monkeypatch.undo()
        relay()
        assert len(feed_of(consenting)) == 1

    def test_the_relay_leaves_topics_nobody_consumes_alone(self, consenting, monkeypatch):
        from django.db import transaction

        # A topic another component declares and will consume; nothing consumes it yet.
        monkeypatch.setitem(outbox.PAYLOADS, "somebody_elses_topic", outbox.EmployeeRevoked)
        with transaction.atomic():
            outbox.publish(topic="somebody_elses_topic", payload=outbox.EmployeeRevoked(employee=consenting.pk))
        relay()
        assert OutboxMessage.objects.get(topic="somebody_elses_topic").delivered_at is None

    def test_messages_queued_before_payloads_were_typed_still_reach_the_feed(self, consenting):
        # Rows exactly as the hand-built dicts stored them (dates as text), still pending after an upgrade.
        at = timezone.now().isoformat()
        moved = {"country": "US", "subdivision": "US-WA"}
        rows = [
            (
                "consent_withdrawn",
                {"employee": consenting.pk, "purpose": PURPOSE, "categories": ["screenshots"], "at": at},
            ),
            ("paused", {"employee": consenting.pk, "at": at, "until": None}),
            (
                "jurisdiction_blocked",
                {"employee": consenting.pk, "at": at, "from": moved, "to": {"country": "XX", "subdivision": ""}},
            ),
            ("policy_changed", {"pairs": [f"{PURPOSE}/keystrokes"], "purpose_changed": PURPOSE, "at": at}),
            ("erasure", {"employee": consenting.pk, "at": at}),
        ]
        OutboxMessage.objects.bulk_create([OutboxMessage(topic=topic, payload=payload) for topic, payload in rows])

        assert relay() == len(rows)

        assert OutboxMessage.objects.filter(delivered_at__isnull=True).count() == 0
        assert [event.type for event in feed_of(consenting)] == [
            "consent_withdrawn",
            "paused",
            "jurisdiction_blocked",
            "policy_changed",
            "erasure",
        ]
        assert feed_of(consenting)[0].categories == ["screenshots"]

    def test_a_stored_row_that_does_not_fit_its_topic_stays_pending_with_the_reason(self, consenting):
        OutboxMessage.objects.create(topic="consent_withdrawn", payload={"employee": "nobody", "purpose": PURPOSE})

        assert relay() == 0

        message = OutboxMessage.objects.get(topic="consent_withdrawn")
        assert message.delivered_at is None and message.attempts == 1
        assert "does not fit ConsentRevoked" in message.last_error
        assert feed_of(consenting) == []

    def test_an_unknown_topic_or_a_payload_of_another_type_is_refused_and_nothing_is_written(self, consenting):
        from django.db import transaction

        before = OutboxMessage.objects.count()
        with transaction.atomic():
            with pytest.raises(ValueError, match="'consent_revoked' is not an outbox topic"):
                outbox.publish(topic="consent_revoked", payload=outbox.EmployeeRevoked(employee=consenting.pk))
            with pytest.raises(TypeError, match="a consent_withdrawn message carries a ConsentRevoked, not dict"):
                # Deliberately not a Payload: the run-time check is what is under test.
                outbox.publish(topic="consent_withdrawn", payload={"employee": consenting.pk})  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="a paused message carries a Paused, not EmployeeRevoked"):
                outbox.publish(topic="paused", payload=outbox.EmployeeRevoked(employee=consenting.pk))
        assert OutboxMessage.objects.count() == before

    def test_a_consumer_cannot_register_for_a_topic_without_a_payload_type(self):
        with pytest.raises(ValueError, match="no payload type is declared"):
            outbox.consumer("consent_revoked")

    @pytest.mark.django_db(transaction=True)
    def test_publishing_outside_a_transaction_is_refused(self):
        with pytest.raises(RuntimeError):
            outbox.publish(
                topic="consent_withdrawn", payload=outbox.ConsentRevoked(employee=1, purpose=PURPOSE, categories=[])
            )

    def test_the_relay_runs_right_after_commit(self, consenting, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        # One kick for the transaction's messages, then the relay's own wake-up of waiting readers.
        assert len(feed_of(consenting)) == 1
        assert len(callbacks) >= 1

    def test_rule_approvals_are_left_to_the_periodic_relay(self, consenting, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=True):
            _supersede("US", status="block")
        assert feed_of(consenting) == []  # the approver's request did not wait for the fan-out

        relay_outbox()

        assert [event.type for event in feed_of(consenting)] == ["jurisdiction_blocked"]

    def test_the_beat_task_delivers_what_is_pending(self, consenting):
        consent_withdraw(employee=consenting, purpose=PURPOSE, categories=["screenshots"], actor=SYSTEM)
        assert relay_outbox() == 1
        assert len(feed_of(consenting)) == 1
        assert settings.CELERY_BEAT_SCHEDULE["outbox-relay"]["task"] == "consentry.outbox_relay"


CRASH_AFTER_COMMIT = textwrap.dedent(
    """
    import os, django
    django.setup()
    from django.db import transaction
    from audit.actors import Actor
    from consent.services import consent_withdraw
    from people.models import Employee

    employee = Employee.objects.get(hr_id=os.environ["HR_ID"])
    with transaction.atomic():
        # Registered first, so it runs first after commit: the process dies
        # between the commit and the outbox relay's kick.
        transaction.on_commit(lambda: os._exit(0))
        consent_withdraw(employee=employee, purpose="ai_agent_training", categories=["screenshots"],
                         actor=Actor.system("crash-test"))
    raise SystemExit("the process should have died after commit")
    """
)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_event_committed_by_a_process_that_dies_before_publishing_is_still_delivered(policy):
    employee = make_employee(country="US", subdivision="US-WA")
    grant_consent(employee, "screenshots")
    relay()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consentry.settings",
        "DATABASE_URL": shared_database_url(),
        "CONSENTRY_STATE_DIR": str(settings.STATE_DIR),
        "HR_ID": employee.hr_id,
        "LOG_LEVEL": "ERROR",
    }

    result = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_COMMIT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    pending = OutboxMessage.objects.get(topic="consent_withdrawn")
    assert pending.delivered_at is None, "the kick ran: the crash did not happen between commit and relay"
    assert feed_of(employee) == []
    assert relay_outbox() == 1
    (event,) = feed_of(employee)
    assert (event.type, event.categories) == ("consent_withdrawn", ["screenshots"])
    assert RevocationEvent.objects.count() == 1

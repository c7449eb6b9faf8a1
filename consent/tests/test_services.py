from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import make_employee
from consent.models import ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause
from consent.services import (
    Choice,
    consent_apply_choices,
    consent_expire_due,
    consent_grant,
    consent_withdraw,
    consent_withdraw_all,
    notice_acknowledge,
    pause_end,
    pause_start,
)
from consentry.errors import Conflict, DomainError
from governance import services as gov
from people.services import employee_terminate

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def _grant(employee, notice, *categories):
    return consent_grant(
        employee=employee, notice=notice, choices=[("ai_agent_training", c) for c in categories], actor=ACTOR
    )


def test_granting_records_an_event_a_state_and_an_audit_entry(small_policy, ny_employee):
    [event] = _grant(ny_employee, small_policy["notice"], "keystrokes")
    assert event.kind == ConsentEventKind.GRANTED and event.version == 1
    state = ConsentState.objects.get(employee=ny_employee)
    assert state.state == "granted" and state.last_event == event
    entry = AuditEntry.objects.get(event_type=EventType.CONSENT_GRANTED)
    assert entry.subject == ny_employee.hr_id and entry.payload["receipt_id"] == event.receipt_id


def test_withdrawal_is_one_event_and_keeps_the_withdrawal_time(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "keystrokes", "screenshots")
    [event] = consent_withdraw(
        employee=ny_employee, purpose="ai_agent_training", categories=["screenshots"], actor=ACTOR
    )
    state = ConsentState.objects.get(employee=ny_employee, category="screenshots")
    assert state.state == "withdrawn" and state.withdrawn_at == event.at
    assert ConsentState.objects.get(employee=ny_employee, category="keystrokes").state == "granted"


def test_withdraw_all_withdraws_every_granted_pair(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "keystrokes", "screenshots", "mouse_movement")
    events = consent_withdraw_all(employee=ny_employee, actor=ACTOR)
    assert len(events) == 3
    assert set(ConsentState.objects.filter(employee=ny_employee).values_list("state", flat=True)) == {"withdrawn"}


def test_repeating_a_choice_writes_no_new_event(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "keystrokes")
    assert _grant(ny_employee, small_policy["notice"], "keystrokes") == []
    assert (
        consent_withdraw(employee=ny_employee, purpose="ai_agent_training", categories=["screenshots"], actor=ACTOR)
        == []
    )
    assert ConsentEvent.objects.count() == 1


def test_a_prohibited_purpose_can_never_be_consented_to(small_policy, ny_employee):
    with pytest.raises(DomainError) as caught:
        consent_grant(
            employee=ny_employee,
            notice=small_policy["notice"],
            choices=[("performance_evaluation", "keystrokes")],
            actor=ACTOR,
        )
    assert caught.value.code == "purpose_prohibited"
    assert ConsentEvent.objects.count() == 0


def test_a_category_outside_the_purpose_is_refused(small_policy, ny_employee):
    gov.category_save(slug="app_usage", name="App usage", description="apps", actor=ACTOR)
    with pytest.raises(DomainError) as caught:
        _grant(ny_employee, small_policy["notice"], "app_usage")
    assert caught.value.code == "invalid_choice"
    assert ConsentEvent.objects.count() == 0


def test_a_notice_version_that_is_not_current_is_refused(small_policy, ny_employee):
    draft = gov.notice_draft(
        title="v2",
        summary="s",
        body="b",
        retention_statement="r",
        access_statement="a",
        no_evaluation_statement="n",
        items=[("ai_agent_training", "keystrokes", "changed")],
        material=True,
        actor=ACTOR,
    )
    gov.notice_approve(notice=draft, actor=ACTOR, via="tests")
    with pytest.raises(Conflict) as caught:
        _grant(ny_employee, small_policy["notice"], "keystrokes")
    assert caught.value.code == "stale_notice"


def test_consent_in_a_blocked_region_is_refused(small_policy, de_employee):
    with pytest.raises(Conflict) as caught:
        _grant(de_employee, small_policy["notice"], "keystrokes")
    assert caught.value.code == "unavailable_in_region"


def test_consent_where_no_rule_exists_is_refused(small_policy):
    employee = make_employee(country="BR")
    with pytest.raises(Conflict):
        _grant(employee, small_policy["notice"], "keystrokes")


def test_withdrawal_works_even_after_the_region_becomes_blocked(small_policy, ny_employee):
    from people.services import employee_transfer

    _grant(ny_employee, small_policy["notice"], "keystrokes")
    employee_transfer(employee=ny_employee, country="DE", actor=ACTOR)
    assert len(consent_withdraw_all(employee=ny_employee, actor=ACTOR)) == 1


def test_a_terminated_employee_cannot_consent(small_policy, ny_employee):
    employee_terminate(employee=ny_employee, actor=ACTOR)
    with pytest.raises(Conflict):
        _grant(ny_employee, small_policy["notice"], "keystrokes")


def test_mixed_choices_apply_grants_and_withdrawals_together(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "screenshots")
    consent_apply_choices(
        employee=ny_employee,
        notice=small_policy["notice"],
        choices=[Choice("ai_agent_training", "keystrokes", True), Choice("ai_agent_training", "screenshots", False)],
        actor=ACTOR,
    )
    states = dict(ConsentState.objects.filter(employee=ny_employee).values_list("category", "state"))
    assert states == {"keystrokes": "granted", "screenshots": "withdrawn"}


def test_expiry_sweep_expires_lapsed_grants_once(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "keystrokes")
    later = timezone.now() + timedelta(days=366)
    assert consent_expire_due(at=later) == 1
    assert consent_expire_due(at=later) == 0
    assert ConsentState.objects.get(employee=ny_employee).state == "expired"


def test_acknowledgement_is_recorded_once(small_policy, ny_employee):
    first = notice_acknowledge(employee=ny_employee, notice=small_policy["notice"], actor=ACTOR)
    again = notice_acknowledge(employee=ny_employee, notice=small_policy["notice"], actor=ACTOR)
    assert first.pk == again.pk and NoticeAcknowledgement.objects.count() == 1
    assert AuditEntry.objects.filter(event_type=EventType.NOTICE_ACKNOWLEDGED).count() == 1


def test_pause_and_resume(small_policy, ny_employee):
    now = timezone.now()
    pause = pause_start(employee=ny_employee, until=now + timedelta(minutes=30), actor=ACTOR)
    ended = pause_end(employee=ny_employee, actor=ACTOR)
    assert ended is not None and ended.pk == pause.pk
    assert Pause.objects.get().resumed_at is not None
    assert pause_end(employee=ny_employee, actor=ACTOR) is None


@pytest.mark.parametrize("delta", [timedelta(minutes=-5), timedelta(days=8)])
def test_a_pause_in_the_past_or_beyond_a_week_is_refused(small_policy, ny_employee, delta):
    with pytest.raises(DomainError):
        pause_start(employee=ny_employee, until=timezone.now() + delta, actor=ACTOR)
    assert Pause.objects.count() == 0


def test_projection_equals_a_replay_of_the_events(small_policy, ny_employee):
    _grant(ny_employee, small_policy["notice"], "keystrokes", "screenshots")
    consent_withdraw(employee=ny_employee, purpose="ai_agent_training", categories=["keystrokes"], actor=ACTOR)
    _grant(ny_employee, small_policy["notice"], "keystrokes")
    assert_projection_matches_replay(ny_employee)


def assert_projection_matches_replay(employee) -> None:
    replay: dict[tuple[str, str], tuple[str, int]] = {}
    versions = []
    for event in ConsentEvent.objects.filter(employee=employee).order_by("version"):
        replay[(event.purpose_id, event.category_id)] = (event.kind, event.version)
        versions.append(event.version)
    assert versions == list(range(1, len(versions) + 1)), "versions must advance once per event"
    projection = {
        (s.purpose_id, s.category_id): (s.state, s.version) for s in ConsentState.objects.filter(employee=employee)
    }
    assert projection == replay

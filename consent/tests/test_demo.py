"""The local platform's start-up steps, run again after people used it: nothing lost, nothing doubled."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

import run
from audit.actors import Actor
from consent.demo import EMPLOYEES, STAFF
from consent.models import ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement
from consent.services import consent_withdraw
from governance.models import ApprovalState, JurisdictionRule, Notice
from governance.services import notice_approve, notice_draft, rule_approve, rule_draft
from people.models import Employee

pytestmark = pytest.mark.django_db


def start_up() -> str:
    """The management commands ``run.py`` runs at every start, in its order; returns their output."""
    out = io.StringIO()
    for name, *args in run.START_COMMANDS:
        if name != "collectstatic":  # files only; the test needs none
            call_command(name, *args, stdout=out)
    return out.getvalue()


def approve_in_console(*, region: str, **changes) -> JurisdictionRule:
    """Legal drafts a successor of the rule in force, as the console does; the approver approves it."""
    User = get_user_model()
    current = JurisdictionRule.objects.get(region=region, state=ApprovalState.APPROVED, effective_to__isnull=True)
    fields = {
        "status": current.status,
        "preconditions": current.preconditions,
        "blocked_categories": current.blocked_categories,
        "max_retention_days": current.max_retention_days,
        "notes": current.notes,
        # The console's form starts a successor now, so the pack's rule is closed, not replaced.
        "effective_from": timezone.now().replace(microsecond=0),
        **changes,
    }
    draft = rule_draft(
        region=current.region, supersedes=current, actor=Actor.for_user(User.objects.get(username="legal_us")), **fields
    )
    return rule_approve(rule=draft, actor=Actor.for_user(User.objects.get(username="approver")))


def test_a_rule_approved_in_the_console_survives_a_restart_and_start_up_succeeds(settings, tmp_path):
    settings.STATE_DIR = tmp_path
    start_up()
    approved = approve_in_console(region="US-TX", preconditions=["biometric_release", "company_written_policy", "dpia"])
    rules_before = list(JurisdictionRule.objects.order_by("pk").values_list("pk", "state", "effective_to"))

    output = start_up()

    approved.refresh_from_db()
    assert approved.state == ApprovalState.APPROVED
    assert approved.preconditions == ["biometric_release", "company_written_policy", "dpia"]
    in_force = JurisdictionRule.objects.filter(region="US-TX", state=ApprovalState.APPROVED, effective_to__isnull=True)
    assert list(in_force) == [approved]
    assert list(JurisdictionRule.objects.order_by("pk").values_list("pk", "state", "effective_to")) == rules_before
    assert "Demo logins" in output


def test_a_rule_replaced_in_the_console_from_the_packs_own_start_survives_a_restart(settings, tmp_path):
    settings.STATE_DIR = tmp_path
    start_up()
    pack_rule = JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED)
    approved = approve_in_console(region="US-TX", effective_from=pack_rule.effective_from, status="block")
    rule_count = JurisdictionRule.objects.count()

    start_up()

    assert JurisdictionRule.objects.get(region="US-TX", state=ApprovalState.APPROVED) == approved
    assert JurisdictionRule.objects.count() == rule_count


def test_restarting_keeps_what_demo_people_changed_and_duplicates_nothing(settings, tmp_path):
    settings.STATE_DIR = tmp_path
    start_up()
    nina = Employee.objects.get(user__username="nina")
    consent_withdraw(
        employee=nina, purpose="ai_agent_training", categories=["keystrokes"], actor=Actor.for_user(nina.user)
    )
    # Legal publishes a new notice version: nobody has acknowledged it yet.
    first = Notice.objects.get(version=1)
    draft = notice_draft(
        title=first.title,
        summary=first.summary + " Now with more detail.",
        body=first.body,
        retention_statement=first.retention_statement,
        access_statement=first.access_statement,
        no_evaluation_statement=first.no_evaluation_statement,
        items=sorted(first.items.values_list("purpose_id", "category_id", "description")),
        material=False,
        actor=Actor.for_user(get_user_model().objects.get(username="legal_us")),
    )
    notice_approve(
        notice=draft,
        actor=Actor.for_user(get_user_model().objects.get(username="approver")),
        published_at=timezone.now() - timedelta(seconds=1),
    )
    counts = {
        "users": get_user_model().objects.count(),
        "employees": Employee.objects.count(),
        "events": ConsentEvent.objects.count(),
        "acknowledgements": NoticeAcknowledgement.objects.count(),
    }

    start_up()

    state = ConsentState.objects.get(employee=nina, purpose_id="ai_agent_training", category_id="keystrokes")
    assert state.state == ConsentEventKind.WITHDRAWN
    assert not NoticeAcknowledgement.objects.filter(notice__version=2).exists()
    assert {
        "users": get_user_model().objects.count(),
        "employees": Employee.objects.count(),
        "events": ConsentEvent.objects.count(),
        "acknowledgements": NoticeAcknowledgement.objects.count(),
    } == counts
    names = set(get_user_model().objects.values_list("username", flat=True))
    assert {person.username for person in [*EMPLOYEES, *STAFF]} <= names

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, IntegrityError, transaction

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import POLICY_START, SYSTEM
from consent.models import ConsentEvent
from consent.services import consent_grant
from consentry.errors import Conflict, DomainError, Forbidden
from governance import services as gov
from governance.models import ApprovalState, JurisdictionRule, PolicyRevision
from governance.selectors import effective_rule, region_chain

pytestmark = pytest.mark.django_db


def test_a_rule_cannot_be_approved_by_its_author(small_policy, legal):
    actor = Actor.for_user(legal)
    draft = gov.rule_draft(
        region=small_policy["regions"]["US-CA"], status="allow", effective_from=POLICY_START, actor=actor
    )
    with pytest.raises(Forbidden) as caught:
        gov.rule_approve(rule=draft, actor=actor)
    assert caught.value.code == "four_eyes"
    assert JurisdictionRule.objects.get(pk=draft.pk).state == ApprovalState.DRAFT


def test_a_second_person_approves_and_the_policy_revision_moves(small_policy, legal, approver):
    before = PolicyRevision.objects.get().revision
    draft = gov.rule_draft(
        region=small_policy["regions"]["US-CA"],
        status="allow",
        effective_from=POLICY_START,
        actor=Actor.for_user(legal),
    )
    rule = gov.rule_approve(rule=draft, actor=Actor.for_user(approver))
    assert rule.state == ApprovalState.APPROVED and rule.approved_by == approver
    assert PolicyRevision.objects.get().revision == before + 1
    assert AuditEntry.objects.filter(event_type=EventType.RULE_APPROVED, object_id=str(rule.pk)).exists()


def test_the_four_eyes_rule_also_lives_in_the_database(small_policy, legal):
    draft = gov.rule_draft(
        region=small_policy["regions"]["US-CA"],
        status="allow",
        effective_from=POLICY_START,
        actor=Actor.for_user(legal),
    )
    draft.approved_by = legal
    with pytest.raises(IntegrityError), transaction.atomic():
        draft.save()


def test_overlapping_approved_rules_are_refused(small_policy, legal, approver):
    draft = gov.rule_draft(
        region=small_policy["regions"]["US"], status="block", effective_from=POLICY_START, actor=Actor.for_user(legal)
    )
    with pytest.raises(Conflict) as caught:
        gov.rule_approve(rule=draft, actor=Actor.for_user(approver))
    assert caught.value.code == "rule_overlap"


def test_a_successor_starting_later_closes_the_old_rule_at_its_start(small_policy, legal, approver):
    old = small_policy["rules"]["US"]
    switch = POLICY_START + timedelta(days=200)
    draft = gov.rule_draft(
        region=old.region, status="block", effective_from=switch, supersedes=old, actor=Actor.for_user(legal)
    )
    gov.rule_approve(rule=draft, actor=Actor.for_user(approver))
    old.refresh_from_db()
    assert old.state == ApprovalState.APPROVED and old.effective_to == switch
    before = effective_rule(codes=["US"], at=switch - timedelta(seconds=1))
    after = effective_rule(codes=["US"], at=switch)
    assert before is not None and before.pk == old.pk
    assert after is not None and after.pk == draft.pk


def test_a_successor_from_the_same_start_supersedes_the_old_rule(small_policy, legal, approver):
    old = small_policy["rules"]["US"]
    draft = gov.rule_draft(
        region=old.region,
        status="conditional",
        effective_from=POLICY_START,
        supersedes=old,
        actor=Actor.for_user(legal),
    )
    gov.rule_approve(rule=draft, actor=Actor.for_user(approver))
    old.refresh_from_db()
    assert old.state == ApprovalState.SUPERSEDED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("status", "maybe"),
        ("preconditions", ["vibes"]),
        ("blocked_categories", ["telepathy"]),
        ("max_retention_days", {"keystrokes": -1}),
        ("effective_to", POLICY_START - timedelta(days=1)),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(small_policy, legal, field, value):
    fields = {"status": "allow", "effective_from": POLICY_START, field: value}
    with pytest.raises(DomainError) as caught:
        gov.rule_draft(region=small_policy["regions"]["US-CA"], actor=Actor.for_user(legal), **fields)
    assert field in caught.value.errors
    assert not JurisdictionRule.objects.filter(region="US-CA").exists()


@pytest.mark.parametrize(("code", "kind"), [("XX", "country"), ("US-ZZ", "subdivision"), ("de", "")])
def test_unknown_region_codes_are_refused(db, code, kind):
    with pytest.raises(DomainError):
        gov.region_save(code=code, kind=kind, actor=SYSTEM)


def test_lookup_walks_subdivision_then_country_then_groups(small_policy):
    assert region_chain(country="DE", subdivision="DE-BE") == ["DE-BE", "DE", "EU"]
    at = datetime(2026, 6, 1, tzinfo=UTC)
    berlin = effective_rule(codes=region_chain(country="DE", subdivision="DE-BE"), at=at)
    new_york = effective_rule(codes=region_chain(country="US", subdivision="US-NY"), at=at)
    assert berlin is not None and berlin.region_id == "EU"
    assert new_york is not None and new_york.region_id == "US-NY"
    assert effective_rule(codes=region_chain(country="BR"), at=at) is None
    assert effective_rule(codes=["US"], at=POLICY_START - timedelta(seconds=1)) is None


def test_a_material_notice_marks_only_the_changed_pairs_for_reconsent(small_policy):
    previous = {i.category_id: i.description for i in small_policy["notice"].items.all()}
    items = [
        ("ai_agent_training", slug, text if slug != "screenshots" else "Screenshots every 10 seconds now.")
        for slug, text in previous.items()
    ]
    draft = gov.notice_draft(
        title="v2",
        summary="s",
        body="b",
        retention_statement="r",
        access_statement="a",
        no_evaluation_statement="n",
        items=items,
        material=True,
        actor=SYSTEM,
    )
    notice = gov.notice_approve(notice=draft, actor=SYSTEM, via="tests")
    flagged = {i.category_id for i in notice.items.all() if i.requires_reconsent}
    assert flagged == {"screenshots"}


def test_a_non_material_notice_carries_every_consent_over(small_policy):
    draft = gov.notice_draft(
        title="v2 typo fix",
        summary="s",
        body="b",
        retention_statement="r",
        access_statement="a",
        no_evaluation_statement="n",
        items=[("ai_agent_training", "screenshots", "Reworded.")],
        material=False,
        actor=SYSTEM,
    )
    notice = gov.notice_approve(notice=draft, actor=SYSTEM, via="tests")
    assert not notice.items.filter(requires_reconsent=True).exists()


def test_a_notice_cannot_declare_a_prohibited_purpose(small_policy):
    with pytest.raises(DomainError):
        gov.notice_draft(
            title="bad",
            summary="s",
            body="b",
            retention_statement="r",
            access_statement="a",
            no_evaluation_statement="n",
            items=[("performance_evaluation", "keystrokes", "no")],
            material=True,
            actor=SYSTEM,
        )


def test_negative_retention_is_refused(small_policy):
    from governance.models import DataCategory

    with pytest.raises(DomainError):
        gov.retention_save(
            category=DataCategory.objects.get(slug="keystrokes"),
            raw_retention_days=-1,
            delete_on_withdrawal_days=7,
            delete_on_termination_days=30,
            actor=SYSTEM,
        )


@pytest.mark.postgres
def test_the_database_refuses_changes_to_an_approved_rule(small_policy):
    rule = small_policy["rules"]["US"]
    with pytest.raises(DatabaseError), transaction.atomic():
        JurisdictionRule.objects.filter(pk=rule.pk).update(status="block")
    with pytest.raises(DatabaseError), transaction.atomic():
        JurisdictionRule.objects.filter(pk=rule.pk).delete()


@pytest.mark.postgres
def test_the_database_refuses_overlapping_approved_rules(small_policy):
    rule = small_policy["rules"]["US"]
    with pytest.raises(IntegrityError), transaction.atomic():
        JurisdictionRule.objects.create(
            region=rule.region, status="block", effective_from=POLICY_START, state="approved", approved_at=POLICY_START
        )


@pytest.mark.postgres
def test_the_database_refuses_to_update_or_delete_consent_events(small_policy, ny_employee):
    consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[("ai_agent_training", "keystrokes")], actor=SYSTEM
    )
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentEvent.objects.update(kind="withdrawn")
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentEvent.objects.all().delete()


def _draft_notice(text: str):
    return gov.notice_draft(
        title="next",
        summary="s",
        body="b",
        retention_statement="r",
        access_statement="a",
        no_evaluation_statement="n",
        items=[("ai_agent_training", "keystrokes", text)],
        material=True,
        actor=SYSTEM,
    )


def test_an_older_notice_draft_cannot_be_approved_after_a_newer_version(small_policy):
    older, newer = _draft_notice("older"), _draft_notice("newer")
    gov.notice_approve(notice=newer, actor=SYSTEM, via="tests")
    with pytest.raises(Conflict) as caught:
        gov.notice_approve(notice=older, actor=SYSTEM, via="tests")
    assert caught.value.code == "stale_draft"
    gov.notice_discard_draft(notice=older, actor=SYSTEM)
    assert AuditEntry.objects.filter(event_type=EventType.NOTICE_DRAFT_DISCARDED).count() == 1


def test_a_successor_never_lengthens_a_rule_that_already_ended(small_policy, legal, approver):
    region = small_policy["regions"]["US-CA"]
    end = POLICY_START + timedelta(days=30)
    old = gov.rule_approve(
        rule=gov.rule_draft(
            region=region, status="allow", effective_from=POLICY_START, effective_to=end, actor=Actor.for_user(legal)
        ),
        actor=Actor.for_user(approver),
    )
    later = gov.rule_draft(
        region=region,
        status="block",
        effective_from=end + timedelta(days=30),
        supersedes=old,
        actor=Actor.for_user(legal),
    )
    gov.rule_approve(rule=later, actor=Actor.for_user(approver))
    old.refresh_from_db()
    assert old.effective_to == end and old.state == ApprovalState.APPROVED


def test_saving_an_unchanged_instrument_writes_nothing(small_policy):
    region = small_policy["regions"]["US"]
    fields = {
        "kind": "company_written_policy",
        "title": "Policy",
        "region": region,
        "valid_from": POLICY_START.date(),
        "document_ref": "policy.pdf",
    }
    instrument = gov.instrument_save(**fields, actor=SYSTEM)
    before = (AuditEntry.objects.count(), PolicyRevision.objects.get().revision)
    gov.instrument_save(**fields, instrument=instrument, actor=SYSTEM)
    assert (AuditEntry.objects.count(), PolicyRevision.objects.get().revision) == before


def test_group_members_created_on_the_fly_are_audited(db):
    gov.region_save(code="EEA", name="EEA", kind="group", members=["IS", "NO"], actor=SYSTEM)
    audited = set(AuditEntry.objects.filter(event_type=EventType.REGION_SAVED).values_list("object_id", flat=True))
    assert {"IS", "NO", "EEA"} <= audited

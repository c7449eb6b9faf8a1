"""Policy administration API: drafts, four eyes, immutability, region scoping, re-consent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.models import AuditEntry, EventType
from conftest import POLICY_START
from governance.models import ApprovalState, JurisdictionRule, Notice, Region

pytestmark = pytest.mark.django_db
RULES = "/api/v1/jurisdiction-rules/"
NOTICES = "/api/v1/notices/"


def rule_body(region="US-CA", **extra):
    return {
        "region": region,
        "status": "conditional",
        "preconditions": ["notice_at_collection"],
        "blocked_categories": [],
        "max_retention_days": {"screenshots": 30},
        "effective_from": "2026-06-01T00:00:00Z",
        **extra,
    }


def notice_body(screenshots="We capture your screenshots.", material=True):
    items = [
        {"purpose": "ai_agent_training", "category": c, "description": f"We capture your {c}."}
        for c in ("keystrokes", "keystroke_timing", "mouse_movement")
    ]
    items.append({"purpose": "ai_agent_training", "category": "screenshots", "description": screenshots})
    return {
        "title": "Activity capture, version 2",
        "summary": "What changes.",
        "body": "Full text.",
        "retention_statement": "Kept 90 days.",
        "access_statement": "Research pipelines only.",
        "no_evaluation_statement": "Never used to evaluate you.",
        "material": material,
        "items": items,
    }


def assert_problem(response, status, code=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    if code:
        assert response.json()["code"] == code
    return response.json()


def draft_rule(cast, **extra):
    response = cast.client("legal_in_scope").post(RULES, rule_body(**extra), format="json")
    assert response.status_code == 201, response.content
    return response.json()


# Drafts and four eyes ------------------------------------------------------------------------------


def test_a_rule_is_created_as_a_draft_and_audited_with_its_author(cast):
    body = draft_rule(cast)
    assert body["state"] == "draft" and body["created_by"] == "legal_in_scope"
    entry = AuditEntry.objects.filter(event_type=EventType.RULE_DRAFTED).last()
    assert entry is not None
    assert entry.actor == "user:legal_in_scope" and entry.object_id == str(body["id"])
    assert entry.region == "US-CA"


def test_a_second_person_with_the_approve_permission_makes_a_draft_effective(cast):
    rule = draft_rule(cast)
    response = cast.client("approver").post(f"{RULES}{rule['id']}/approve", format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "approved" and body["approved_by"] == "approver"
    assert AuditEntry.objects.filter(event_type=EventType.RULE_APPROVED, object_id=str(rule["id"])).exists()


def test_a_legal_user_cannot_approve_their_own_draft_even_with_the_approve_permission(cast):
    author = cast.users["legal_in_scope"]
    assign_perm("governance.approve_region_policy", author)
    rule = draft_rule(cast)
    body = assert_problem(cast.client("legal_in_scope").post(f"{RULES}{rule['id']}/approve"), 403, "four_eyes")
    assert "someone other than its author" in body["detail"]
    assert JurisdictionRule.objects.get(pk=rule["id"]).state == ApprovalState.DRAFT


def test_a_legal_user_without_the_approve_permission_cannot_approve_a_colleagues_draft(cast):
    rule = draft_rule(cast)
    colleague = cast.users["legal_elsewhere"]
    assign_perm("governance.manage_region_policy", colleague, Region.objects.get(code="US"))
    assert_problem(cast.client("legal_elsewhere").post(f"{RULES}{rule['id']}/approve"), 403, "out_of_scope")


def test_an_approver_scoped_to_a_region_approves_there_only(cast):
    regional = cast.users["auditor"]  # any person; give them the legal approver role for the EU only
    from people.roles import Role, ensure_roles

    regional.groups.add(ensure_roles()[Role.APPROVER])
    assign_perm("governance.approve_region_policy", regional, Region.objects.get(code="EU"))
    us_rule = draft_rule(cast)
    assert cast.client("auditor").post(f"{RULES}{us_rule['id']}/approve").status_code == 404
    eu = cast.client("legal_elsewhere").post(RULES, rule_body(region="FR", status="block"), format="json").json()
    assert cast.client("auditor").post(f"{RULES}{eu['id']}/approve").json()["state"] == "approved"


def test_approving_twice_is_a_conflict(cast):
    rule = draft_rule(cast)
    cast.client("approver").post(f"{RULES}{rule['id']}/approve")
    assert_problem(cast.client("approver").post(f"{RULES}{rule['id']}/approve"), 409, "not_a_draft")


def test_only_the_author_edits_a_draft(cast):
    rule = draft_rule(cast)
    colleague = cast.users["legal_elsewhere"]
    assign_perm("governance.manage_region_policy", colleague, Region.objects.get(code="US"))
    response = cast.client("legal_elsewhere").patch(f"{RULES}{rule['id']}", {"status": "allow"}, format="json")
    assert_problem(response, 403, "not_the_author")
    response = cast.client("legal_in_scope").patch(f"{RULES}{rule['id']}", {"status": "allow"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "allow"
    assert response.json()["max_retention_days"] == {"screenshots": 30}, "PATCH keeps the fields it does not name"
    assert AuditEntry.objects.filter(event_type=EventType.RULE_DRAFT_UPDATED).count() == 1


def test_a_draft_can_be_discarded(cast):
    rule = draft_rule(cast)
    assert cast.client("legal_in_scope").delete(f"{RULES}{rule['id']}").status_code == 204
    assert not JurisdictionRule.objects.filter(pk=rule["id"]).exists()
    assert AuditEntry.objects.filter(event_type=EventType.RULE_DRAFT_DISCARDED).exists()


# Immutability -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_an_approved_rule_is_immutable(cast, small_policy, method):
    rule = small_policy["rules"]["US"]
    client = cast.client("legal_in_scope")
    response = getattr(client, method)(f"{RULES}{rule.pk}", rule_body(region="US"), format="json")
    body = assert_problem(response, 409, "immutable")
    assert f"supersedes={rule.pk}" in body["detail"]
    assert JurisdictionRule.objects.get(pk=rule.pk).state == ApprovalState.APPROVED


def test_editing_an_approved_rule_is_drafting_a_successor_that_supersedes_it(cast, small_policy):
    old = small_policy["rules"]["US"]
    successor = draft_rule(
        cast, region="US", status="allow", effective_from=POLICY_START.isoformat(), supersedes=old.pk
    )
    assert successor["supersedes"] == old.pk
    cast.client("approver").post(f"{RULES}{successor['id']}/approve")
    assert JurisdictionRule.objects.get(pk=old.pk).state == ApprovalState.SUPERSEDED


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_published_notice_is_immutable(cast, small_policy, method):
    response = getattr(cast.client("legal_in_scope"), method)(f"{NOTICES}1", notice_body(), format="json")
    assert_problem(response, 409, "immutable")


# Region scoping -------------------------------------------------------------------------------------


def test_an_eu_scoped_legal_user_cannot_see_or_change_us_rules(cast, small_policy):
    us_draft = draft_rule(cast)
    eu = cast.client("legal_elsewhere")
    listed = {rule["region"] for rule in eu.get(RULES).json()["results"]}
    assert listed == {"EU"}
    for rule_id in (us_draft["id"], small_policy["rules"]["US"].pk, small_policy["rules"]["US-NY"].pk):
        assert_problem(eu.get(f"{RULES}{rule_id}"), 404)
        assert_problem(eu.patch(f"{RULES}{rule_id}", {"status": "block"}, format="json"), 404)
        assert_problem(eu.delete(f"{RULES}{rule_id}"), 404)
    assert_problem(eu.post(RULES, rule_body(region="US"), format="json"), 403, "out_of_scope")
    assert JurisdictionRule.objects.filter(region="US").count() == 1


def test_the_us_legal_user_sees_us_rules_and_subdivisions_but_not_the_eu(cast):
    listed = {rule["region"] for rule in cast.client("legal_in_scope").get(RULES).json()["results"]}
    assert listed == {"US", "US-NY"}


def test_an_eu_scoped_legal_user_may_draft_for_a_member_country(cast):
    response = cast.client("legal_elsewhere").post(RULES, rule_body(region="DE", status="block"), format="json")
    assert response.status_code == 201


def test_instruments_are_scoped_like_rules(cast):
    instrument = {
        "kind": "company_written_policy",
        "title": "US monitoring policy",
        "region": "US",
        "valid_from": "2026-01-01",
        "document_ref": "dms://policy.pdf",
    }
    created = cast.client("legal_in_scope").post("/api/v1/legal-instruments/", instrument, format="json")
    assert created.status_code == 201
    eu = cast.client("legal_elsewhere")
    assert eu.get("/api/v1/legal-instruments/").json()["count"] == 0
    assert_problem(eu.get(f"/api/v1/legal-instruments/{created.json()['id']}"), 404)
    assert_problem(eu.post("/api/v1/legal-instruments/", instrument, format="json"), 403, "out_of_scope")
    moved = cast.client("legal_in_scope").patch(
        f"/api/v1/legal-instruments/{created.json()['id']}", {"region": "DE"}, format="json"
    )
    assert_problem(moved, 403, "out_of_scope")


def test_regional_retention_follows_the_scope_and_company_wide_retention_is_shared(cast):
    us = cast.client("legal_in_scope")
    regional = us.post(
        "/api/v1/retention-policies/", {"category": "screenshots", "region": "US-CA", "raw_retention_days": 30}
    )
    assert regional.status_code == 201, regional.content
    everywhere = us.post("/api/v1/retention-policies/", {"category": "keystrokes", "raw_retention_days": 90})
    assert everywhere.status_code == 201
    eu = cast.client("legal_elsewhere")
    assert [p["category"] for p in eu.get("/api/v1/retention-policies/").json()["results"]] == ["keystrokes"]
    assert_problem(eu.patch(f"/api/v1/retention-policies/{regional.json()['id']}", {"raw_retention_days": 1}), 404)


def test_a_scoped_legal_user_adds_subdivisions_of_their_country_only(cast):
    us = cast.client("legal_in_scope")
    assert us.post("/api/v1/regions/", {"code": "US-TX"}, format="json").status_code == 201
    assert_problem(us.post("/api/v1/regions/", {"code": "CA-ON"}, format="json"), 403, "out_of_scope")
    assert_problem(us.post("/api/v1/regions/", {"code": "CA"}, format="json"), 403, "out_of_scope")
    assert "US-TX" in {r["code"] for r in us.get("/api/v1/regions/", {"limit": 500}).json()["results"]}


def test_a_group_cannot_be_given_members_outside_the_editors_scope(cast):
    eu = cast.client("legal_elsewhere")
    response = eu.patch("/api/v1/regions/EU", {"members": ["DE", "FR", "US"]}, format="json")
    assert_problem(response, 403, "out_of_scope")
    assert set(Region.objects.get(code="EU").members.values_list("code", flat=True)) == {"DE", "FR"}


# Notices and re-consent ---------------------------------------------------------------------------------


def test_a_material_notice_approved_through_the_api_asks_again_only_for_the_changed_pair(cast, small_policy):
    employee = cast.client("employee")
    grant = {
        "notice_version": 1,
        "choices": [
            {"purpose": "ai_agent_training", "category": c, "granted": True} for c in ("keystrokes", "screenshots")
        ],
    }
    assert employee.put("/api/v1/me/consent", grant, format="json").status_code == 200
    draft = cast.client("legal_in_scope").post(NOTICES, notice_body("Screenshots every 10 seconds, full resolution."))
    assert draft.status_code == 201 and draft.json()["state"] == "draft"
    version = draft.json()["version"]
    approved = cast.client("approver").post(f"{NOTICES}{version}/approve", format="json")
    assert approved.status_code == 200
    reconsent = {i["category"]: i["requires_reconsent"] for i in approved.json()["items"]}
    assert reconsent == {
        "keystrokes": False,
        "keystroke_timing": False,
        "mouse_movement": False,
        "screenshots": True,
    }
    states = {i["category"]: i["state"] for i in employee.get("/api/v1/me/consent").json()["items"]}
    assert states["keystrokes"] == "granted"
    assert states["screenshots"] == "reconsent_required"


def test_approving_a_notice_needs_the_approve_permission_everywhere(cast):
    version = cast.client("legal_in_scope").post(NOTICES, notice_body()).json()["version"]
    regional = cast.users["legal_elsewhere"]
    assign_perm("governance.approve_region_policy", regional, Region.objects.get(code="EU"))
    assert_problem(cast.client("legal_elsewhere").post(f"{NOTICES}{version}/approve"), 403, "out_of_scope")
    assert Notice.objects.get(version=version).state == ApprovalState.DRAFT


def test_a_notice_may_be_scheduled_for_later_publication(cast):
    version = cast.client("legal_in_scope").post(NOTICES, notice_body()).json()["version"]
    later = (timezone.now() + timedelta(days=30)).replace(microsecond=0)
    response = cast.client("approver").post(
        f"{NOTICES}{version}/approve", {"published_at": later.isoformat()}, format="json"
    )
    assert response.status_code == 200
    assert cast.client("employee").get("/api/v1/me/consent").json()["notice"]["version"] == 1


def test_a_notice_draft_is_edited_by_its_author_and_discarded(cast):
    legal = cast.client("legal_in_scope")
    version = legal.post(NOTICES, notice_body()).json()["version"]
    response = legal.patch(f"{NOTICES}{version}", {"title": "Better title"}, format="json")
    assert response.status_code == 200 and response.json()["title"] == "Better title"
    assert len(response.json()["items"]) == 4
    assert_problem(cast.client("approver").patch(f"{NOTICES}{version}", {"title": "Mine"}), 403)
    assert legal.delete(f"{NOTICES}{version}").status_code == 204
    assert not Notice.objects.filter(version=version).exists()


# Company-wide resources ---------------------------------------------------------------------------------


def test_a_purpose_is_created_and_changed(cast):
    legal = cast.client("legal_in_scope")
    body = {
        "slug": "ui_research",
        "name": "UI research",
        "description": "Study interfaces.",
        "categories": ["mouse_movement"],
    }
    created = legal.post("/api/v1/purposes/", body, format="json")
    assert created.status_code == 201 and created.json()["consent_validity_days"] == 365
    assert_problem(legal.post("/api/v1/purposes/", body, format="json"), 409, "exists")
    changed = legal.patch("/api/v1/purposes/ui_research", {"categories": ["mouse_movement", "screenshots"]})
    assert changed.json()["categories"] == ["mouse_movement", "screenshots"]


def test_a_prohibited_purpose_stays_prohibited(cast):
    response = cast.client("legal_in_scope").patch(
        "/api/v1/purposes/performance_evaluation", {"prohibited": False}, format="json"
    )
    assert_problem(response, 409, "prohibited_is_permanent")


def test_exclusions_are_created_changed_and_removed_with_audit(cast):
    legal = cast.client("legal_in_scope")
    created = legal.post(
        "/api/v1/exclusions/",
        {"kind": "domain", "pattern": "*.bank.example", "label": "Bank", "reason": "banking"},
        format="json",
    ).json()
    changed = legal.patch(f"/api/v1/exclusions/{created['id']}", {"categories": ["screenshots"]}, format="json")
    assert changed.json()["categories"] == ["screenshots"]
    assert legal.delete(f"/api/v1/exclusions/{created['id']}").status_code == 204
    kinds = set(AuditEntry.objects.filter(object_type="context_exclusion").values_list("event_type", flat=True))
    assert kinds == {EventType.EXCLUSION_SAVED, EventType.EXCLUSION_REMOVED}


def test_unknown_filters_are_invalid_input(cast):
    assert_problem(cast.client("legal_in_scope").get(RULES, {"state": "nonsense"}), 422, "invalid")

"""Bad input on every policy write is a 4xx problem+json, never a 500, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEntry
from governance import services
from governance.models import ContextExclusion, DataCategory, LegalInstrument, Region, RetentionPolicy

pytestmark = pytest.mark.django_db

RULE = {
    "region": "US-CA",
    "status": "allow",
    "effective_from": "2026-06-01T00:00:00Z",
}
NOTICE: dict[str, Any] = {
    "title": "t",
    "summary": "s",
    "body": "b",
    "retention_statement": "r",
    "access_statement": "a",
    "no_evaluation_statement": "n",
    "material": True,
    "items": [{"purpose": "ai_agent_training", "category": "keystrokes", "description": "d"}],
}
INSTRUMENT = {
    "kind": "company_written_policy",
    "title": "Policy",
    "region": "US",
    "valid_from": "2026-01-01",
    "document_ref": "dms://x",
}


def with_(base: dict, **changes) -> dict:
    return {**base, **changes}


# (method, path template, body, status, code). {rule}, {notice}, {instrument}, {retention}, {exclusion}
# name objects the fixture creates as the legal user in scope.
BAD_WRITES = [
    # regions
    ("post", "/api/v1/regions/", {"code": 42}, 422, "invalid"),
    ("post", "/api/v1/regions/", {"code": "US-ZZ"}, 422, "invalid"),
    ("post", "/api/v1/regions/", {"code": "US-NY"}, 409, "exists"),
    ("post", "/api/v1/regions/", {"code": "US-TX", "kind": "planet"}, 422, "invalid"),
    ("post", "/api/v1/regions/", {"code": "US-TX", "members": "DE"}, 422, "invalid"),
    ("patch", "/api/v1/regions/US-NY", {"code": "US-CA"}, 422, "invalid"),
    ("patch", "/api/v1/regions/US-NY", {"members": ["US"]}, 422, "invalid"),
    ("put", "/api/v1/regions/US-NY", {"name": "no code"}, 422, "invalid"),
    # data categories
    ("post", "/api/v1/data-categories/", {"slug": "has space", "name": "x", "description": "d"}, 422, "invalid"),
    (
        "post",
        "/api/v1/data-categories/",
        {"slug": "clip", "name": "x", "description": "d", "sensitive": "yes"},
        422,
        "invalid",
    ),
    ("post", "/api/v1/data-categories/", {"slug": "keystrokes", "name": "x", "description": "d"}, 409, "exists"),
    ("patch", "/api/v1/data-categories/keystrokes", {"slug": "renamed"}, 422, "invalid"),
    ("put", "/api/v1/data-categories/keystrokes", {"name": None}, 422, "invalid"),
    # purposes
    (
        "post",
        "/api/v1/purposes/",
        {"slug": "p", "name": "p", "description": "d", "categories": ["dreams"]},
        422,
        "invalid",
    ),
    (
        "post",
        "/api/v1/purposes/",
        {"slug": "p", "name": "p", "description": "d", "categories": "keystrokes"},
        422,
        "invalid",
    ),
    (
        "post",
        "/api/v1/purposes/",
        {"slug": "p", "name": "p", "description": "d", "categories": [], "consent_validity_days": 0},
        422,
        "invalid",
    ),
    ("patch", "/api/v1/purposes/ai_agent_training", {"consent_validity_days": "forever"}, 422, "invalid"),
    ("patch", "/api/v1/purposes/performance_evaluation", {"prohibited": False}, 409, "prohibited_is_permanent"),
    # notices
    ("post", "/api/v1/notices/", with_(NOTICE, items=[]), 422, "invalid"),
    ("post", "/api/v1/notices/", with_(NOTICE, material="no"), 422, "invalid"),
    ("post", "/api/v1/notices/", with_(NOTICE, title=""), 422, "invalid"),
    (
        "post",
        "/api/v1/notices/",
        with_(NOTICE, items=[{"purpose": "ai_agent_training", "category": "dreams", "description": "d"}]),
        422,
        "invalid",
    ),
    (
        "post",
        "/api/v1/notices/",
        with_(NOTICE, items=[{"purpose": "performance_evaluation", "category": "keystrokes", "description": "d"}]),
        422,
        "invalid",
    ),
    ("post", "/api/v1/notices/", with_(NOTICE, items=[NOTICE["items"][0], NOTICE["items"][0]]), 422, "invalid"),
    ("patch", "/api/v1/notices/{notice}", {"items": "everything"}, 422, "invalid"),
    ("patch", "/api/v1/notices/1", {"title": "rewrite history"}, 409, "immutable"),
    ("post", "/api/v1/notices/{notice}/approve", {"published_at": "soon"}, 422, "invalid"),
    ("post", "/api/v1/notices/1/approve", {}, 409, "not_a_draft"),
    # jurisdiction rules
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, status="maybe"), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, region="XX"), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, preconditions=["vibes"]), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, blocked_categories=["dreams"]), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, max_retention_days={"screenshots": -1}), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, max_retention_days=[30]), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, effective_from="yesterday"), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, effective_to="2026-01-01T00:00:00Z"), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, supersedes=999999), 422, "invalid"),
    ("post", "/api/v1/jurisdiction-rules/", with_(RULE, supersedes="{us_rule}"), 409, "invalid_supersedes"),
    ("patch", "/api/v1/jurisdiction-rules/{rule}", {"region": "US"}, 422, "invalid"),
    ("patch", "/api/v1/jurisdiction-rules/{rule}", {"status": ["allow"]}, 422, "invalid"),
    ("patch", "/api/v1/jurisdiction-rules/{us_rule}", {"status": "block"}, 409, "immutable"),
    ("post", "/api/v1/jurisdiction-rules/{rule}/approve", [1], 422, "invalid"),
    # legal instruments
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, kind="handshake"), 422, "invalid"),
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, region="Atlantis"), 422, "invalid"),
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, employee="E0"), 422, "invalid"),
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, valid_from="2026-02-30"), 422, "invalid"),
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, valid_to="2025-01-01"), 422, "invalid"),
    ("post", "/api/v1/legal-instruments/", with_(INSTRUMENT, document_ref=" "), 422, "invalid"),
    ("patch", "/api/v1/legal-instruments/{instrument}", {"valid_from": 20260101}, 422, "invalid"),
    # retention
    ("post", "/api/v1/retention-policies/", {"category": "dreams", "raw_retention_days": 1}, 422, "invalid"),
    ("post", "/api/v1/retention-policies/", {"category": "keystrokes", "raw_retention_days": -1}, 422, "invalid"),
    (
        "post",
        "/api/v1/retention-policies/",
        {"category": "keystrokes", "purpose": "nope", "raw_retention_days": 1},
        422,
        "invalid",
    ),
    (
        "post",
        "/api/v1/retention-policies/",
        {"category": "keystrokes", "region": "US", "raw_retention_days": 1},
        409,
        "exists",
    ),
    ("patch", "/api/v1/retention-policies/{retention}", {"region": "US-CA"}, 422, "invalid"),
    ("patch", "/api/v1/retention-policies/{retention}", {"raw_retention_days": "long"}, 422, "invalid"),
    # exclusions
    ("post", "/api/v1/exclusions/", {"kind": "planet", "pattern": "x", "label": "x"}, 422, "invalid"),
    ("post", "/api/v1/exclusions/", {"kind": "app", "pattern": "x", "label": "x", "reason": "fun"}, 422, "invalid"),
    (
        "post",
        "/api/v1/exclusions/",
        {"kind": "app", "pattern": "x", "label": "x", "categories": ["dreams"]},
        422,
        "invalid",
    ),
    ("post", "/api/v1/exclusions/", {"kind": "app", "pattern": "com.1password.*", "label": "x"}, 409, "exists"),
    ("patch", "/api/v1/exclusions/{exclusion}", {"pattern": "other"}, 422, "invalid"),
]

WRITE_PATHS = [
    ("post", "/api/v1/regions/"),
    ("put", "/api/v1/regions/US-NY"),
    ("patch", "/api/v1/regions/US-NY"),
    ("post", "/api/v1/data-categories/"),
    ("put", "/api/v1/data-categories/keystrokes"),
    ("patch", "/api/v1/data-categories/keystrokes"),
    ("post", "/api/v1/purposes/"),
    ("put", "/api/v1/purposes/ai_agent_training"),
    ("patch", "/api/v1/purposes/ai_agent_training"),
    ("post", "/api/v1/notices/"),
    ("put", "/api/v1/notices/{notice}"),
    ("patch", "/api/v1/notices/{notice}"),
    ("delete", "/api/v1/notices/{notice}"),
    ("post", "/api/v1/notices/{notice}/approve"),
    ("post", "/api/v1/jurisdiction-rules/"),
    ("put", "/api/v1/jurisdiction-rules/{rule}"),
    ("patch", "/api/v1/jurisdiction-rules/{rule}"),
    ("delete", "/api/v1/jurisdiction-rules/{rule}"),
    ("post", "/api/v1/jurisdiction-rules/{rule}/approve"),
    ("post", "/api/v1/legal-instruments/"),
    ("put", "/api/v1/legal-instruments/{instrument}"),
    ("patch", "/api/v1/legal-instruments/{instrument}"),
    ("post", "/api/v1/retention-policies/"),
    ("put", "/api/v1/retention-policies/{retention}"),
    ("patch", "/api/v1/retention-policies/{retention}"),
    ("post", "/api/v1/exclusions/"),
    ("put", "/api/v1/exclusions/{exclusion}"),
    ("patch", "/api/v1/exclusions/{exclusion}"),
    ("delete", "/api/v1/exclusions/{exclusion}"),
]


@pytest.fixture
def objects(cast, small_policy):
    """Drafts and records created by the legal user in scope, so they may change them."""
    from audit.actors import Actor

    actor = Actor.for_user(cast.users["legal_in_scope"])
    rule = services.rule_draft(
        region=Region.objects.get(code="US-CA"), status="allow", effective_from=timezone.now(), actor=actor
    )
    notice = services.notice_draft(
        **{k: v for k, v in NOTICE.items() if k != "items"},
        items=[("ai_agent_training", "keystrokes", "d")],
        actor=actor,
    )
    instrument = services.instrument_save(
        kind="company_written_policy",
        title="Policy",
        region=Region.objects.get(code="US"),
        valid_from=timezone.now().date(),
        document_ref="dms://x",
        actor=actor,
    )
    retention = services.retention_save(
        category=DataCategory.objects.get(slug="keystrokes"),
        region=Region.objects.get(code="US"),
        raw_retention_days=30,
        delete_on_withdrawal_days=7,
        delete_on_termination_days=7,
        actor=actor,
    )
    exclusion = services.exclusion_save(
        kind="app", pattern="com.1password.*", label="1Password", reason="password_manager", actor=actor
    )
    return {
        "rule": rule.pk,
        "us_rule": small_policy["rules"]["US"].pk,
        "notice": notice.version,
        "instrument": instrument.pk,
        "retention": retention.pk,
        "exclusion": exclusion.pk,
    }


def fill(template, objects):
    if isinstance(template, str):
        return template.format(**objects)
    if isinstance(template, dict):
        return {key: _coerce(fill(value, objects), value) for key, value in template.items()}
    if isinstance(template, list):
        return [fill(item, objects) for item in template]
    return template


def _coerce(filled, template):
    # "{us_rule}" in a body stands for the id as a number.
    if isinstance(template, str) and template.startswith("{") and filled.isdigit():
        return int(filled)
    return filled


def answer(client, method, path, body=None, **extra):
    """One request, rolled back afterwards so every case starts from the same state."""
    with transaction.atomic():
        response = getattr(client, method)(path, body, **extra)
        transaction.set_rollback(True)
    return response


def problem_of(response) -> tuple[int, str | None]:
    """(status, code), with code None unless the answer is problem+json."""
    if not response["Content-Type"].startswith("application/problem+json"):
        return response.status_code, None
    return response.status_code, response.json()["code"]


def snapshot():
    return (
        AuditEntry.objects.count(),
        LegalInstrument.objects.count(),
        RetentionPolicy.objects.count(),
        ContextExclusion.objects.count(),
    )


def client_for(cast, path):
    return cast.client("approver" if path.endswith("/approve") else "legal_in_scope")


def test_bad_input_on_every_policy_write_is_refused_with_a_problem(cast, objects):
    before = snapshot()
    answers, wanted = {}, {}
    for method, path, body, status, code in BAD_WRITES:
        case = (method, path, str(body)[:80])
        url = fill(path, objects)
        answers[case] = problem_of(answer(client_for(cast, path), method, url, fill(body, objects), format="json"))
        wanted[case] = (status, code)
    assert answers == wanted
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{oops", "application/json", 400, "parse_error"),
        (json.dumps({"padding": "x" * 5000}), "application/json", 413, "payload_too_large"),
        ("a=1", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
    ids=["malformed JSON", "oversized body", "not JSON"],
)
def test_unreadable_bodies_are_refused_on_every_policy_write(cast, objects, settings, body, content_type, status, code):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    answers = {
        (method, path): problem_of(
            answer(client_for(cast, path), method, fill(path, objects), body, content_type=content_type)
        )
        for method, path in WRITE_PATHS
    }
    assert answers == dict.fromkeys(answers, (status, code))

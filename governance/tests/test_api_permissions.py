"""The permission matrix of the policy administration API: every endpoint × every persona.

Objects under test are the US legal team's (a draft rule for US-CA, a draft
notice, a US instrument and retention policy, an exclusion). Legal scoped
elsewhere is the EU team: it sees nothing regional of the US (404) and may
not create there (403); company-wide resources are shared by the legal role.
The approver holds the approve permission everywhere but may not author.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from audit.actors import Actor
from governance import services
from governance.models import DataCategory, Region
from governance.tests.personas import PERSONAS, matrix

pytestmark = pytest.mark.django_db


def cells(elsewhere: int, in_scope: int, approver: int) -> dict[str, int]:
    """Everyone else is refused: not signed in 401, no role for the policy or a machine token 403."""
    expected = dict.fromkeys(PERSONAS, 403)
    expected["anonymous"] = 401
    expected.update(legal_elsewhere=elsewhere, legal_in_scope=in_scope, approver=approver)
    return expected


NOTICE: dict[str, Any] = {
    "title": "v2",
    "summary": "s",
    "body": "b",
    "retention_statement": "r",
    "access_statement": "a",
    "no_evaluation_statement": "n",
    "material": True,
    "items": [{"purpose": "ai_agent_training", "category": "keystrokes", "description": "d"}],
}
RULE = {"region": "US-CA", "status": "conditional", "effective_from": "2026-06-01T00:00:00Z"}
INSTRUMENT = {
    "kind": "company_written_policy",
    "title": "Policy",
    "region": "US",
    "valid_from": "2026-01-01",
    "document_ref": "dms://x",
}
EXCLUSION = {"kind": "domain", "pattern": "*.bank.example", "label": "Bank", "reason": "banking"}

LIST, READ = cells(200, 200, 200), cells(200, 200, 200)
SHARED_CREATE, SHARED_CHANGE, SHARED_DELETE = cells(201, 201, 403), cells(200, 200, 403), cells(204, 204, 403)
REGIONAL_CREATE, REGIONAL_READ, REGIONAL_CHANGE = cells(403, 201, 403), cells(404, 200, 200), cells(404, 200, 403)

MATRIX = [
    # regions
    ("get", "/api/v1/regions/", None, LIST),
    ("post", "/api/v1/regions/", {"code": "US-TX"}, REGIONAL_CREATE),
    ("get", "/api/v1/regions/US-NY", None, REGIONAL_READ),
    ("put", "/api/v1/regions/US-NY", {"code": "US-NY", "name": "New York State"}, REGIONAL_CHANGE),
    ("patch", "/api/v1/regions/US-NY", {"name": "New York State"}, REGIONAL_CHANGE),
    # data categories
    ("get", "/api/v1/data-categories/", None, LIST),
    ("post", "/api/v1/data-categories/", {"slug": "clipboard", "name": "Clipboard", "description": "d"}, SHARED_CREATE),
    ("get", "/api/v1/data-categories/keystrokes", None, READ),
    (
        "put",
        "/api/v1/data-categories/keystrokes",
        {"slug": "keystrokes", "name": "Keys", "description": "d", "sensitive": True},
        SHARED_CHANGE,
    ),
    ("patch", "/api/v1/data-categories/keystrokes", {"name": "Keys"}, SHARED_CHANGE),
    # purposes
    ("get", "/api/v1/purposes/", None, LIST),
    (
        "post",
        "/api/v1/purposes/",
        {"slug": "ui_research", "name": "UI", "description": "d", "categories": ["mouse_movement"]},
        SHARED_CREATE,
    ),
    ("get", "/api/v1/purposes/ai_agent_training", None, READ),
    (
        "put",
        "/api/v1/purposes/ai_agent_training",
        {"slug": "ai_agent_training", "name": "AI", "description": "d", "categories": ["keystrokes"]},
        SHARED_CHANGE,
    ),
    ("patch", "/api/v1/purposes/ai_agent_training", {"name": "AI"}, SHARED_CHANGE),
    # notices: company-wide; drafts change only by their author; approval needs the global permission
    ("get", "/api/v1/notices/", None, LIST),
    ("post", "/api/v1/notices/", NOTICE, SHARED_CREATE),
    ("get", "/api/v1/notices/{notice}", None, READ),
    ("put", "/api/v1/notices/{notice}", NOTICE, cells(403, 200, 403)),
    ("patch", "/api/v1/notices/{notice}", {"title": "v2b"}, cells(403, 200, 403)),
    ("delete", "/api/v1/notices/{notice}", None, cells(204, 204, 204)),
    ("post", "/api/v1/notices/{notice}/approve", None, cells(403, 403, 200)),
    # jurisdiction rules: regional
    ("get", "/api/v1/jurisdiction-rules/", None, LIST),
    ("post", "/api/v1/jurisdiction-rules/", RULE, REGIONAL_CREATE),
    ("get", "/api/v1/jurisdiction-rules/{rule}", None, REGIONAL_READ),
    ("put", "/api/v1/jurisdiction-rules/{rule}", {**RULE, "status": "allow"}, REGIONAL_CHANGE),
    ("patch", "/api/v1/jurisdiction-rules/{rule}", {"status": "block"}, REGIONAL_CHANGE),
    ("delete", "/api/v1/jurisdiction-rules/{rule}", None, cells(404, 204, 403)),
    ("post", "/api/v1/jurisdiction-rules/{rule}/approve", None, cells(404, 403, 200)),
    # legal instruments: regional
    ("get", "/api/v1/legal-instruments/", None, LIST),
    ("post", "/api/v1/legal-instruments/", INSTRUMENT, REGIONAL_CREATE),
    ("get", "/api/v1/legal-instruments/{instrument}", None, REGIONAL_READ),
    ("put", "/api/v1/legal-instruments/{instrument}", {**INSTRUMENT, "title": "New"}, REGIONAL_CHANGE),
    ("patch", "/api/v1/legal-instruments/{instrument}", {"title": "New"}, REGIONAL_CHANGE),
    # retention: this one is regional (US)
    ("get", "/api/v1/retention-policies/", None, LIST),
    (
        "post",
        "/api/v1/retention-policies/",
        {"category": "screenshots", "region": "US-CA", "raw_retention_days": 30},
        REGIONAL_CREATE,
    ),
    ("get", "/api/v1/retention-policies/{retention}", None, REGIONAL_READ),
    (
        "put",
        "/api/v1/retention-policies/{retention}",
        {"category": "keystrokes", "region": "US", "raw_retention_days": 10},
        REGIONAL_CHANGE,
    ),
    ("patch", "/api/v1/retention-policies/{retention}", {"raw_retention_days": 10}, REGIONAL_CHANGE),
    # exclusions: company-wide
    ("get", "/api/v1/exclusions/", None, LIST),
    ("post", "/api/v1/exclusions/", EXCLUSION, SHARED_CREATE),
    ("get", "/api/v1/exclusions/{exclusion}", None, READ),
    (
        "put",
        "/api/v1/exclusions/{exclusion}",
        {**EXCLUSION, "pattern": "com.1password.*", "kind": "app"},
        SHARED_CHANGE,
    ),
    ("patch", "/api/v1/exclusions/{exclusion}", {"label": "1Password 8"}, SHARED_CHANGE),
    ("delete", "/api/v1/exclusions/{exclusion}", None, SHARED_DELETE),
]


@pytest.fixture
def objects(cast):
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
    exclusion = services.exclusion_save(kind="app", pattern="com.1password.*", label="1Password", actor=actor)
    return {
        "rule": rule.pk,
        "notice": notice.version,
        "instrument": instrument.pk,
        "retention": retention.pk,
        "exclusion": exclusion.pk,
    }


def test_every_persona_gets_exactly_its_answer_on_every_endpoint(cast, objects):
    answers = {(method, path): matrix(cast, method, path.format(**objects), body) for method, path, body, _ in MATRIX}
    assert answers == {(method, path): expected for method, path, _, expected in MATRIX}


def test_the_matrix_covers_every_policy_endpoint_and_method():
    from django.urls import resolve

    from governance import urls

    served = {
        (method, pattern.name)
        for pattern in urls.urlpatterns
        for method in ("get", "post", "put", "patch", "delete")
        # as_view() sets view_class; URLPattern types its callback as a plain callable.
        if hasattr(pattern.callback.view_class, method)  # type: ignore[attr-defined]
    }
    ids = {"notice": 1, "rule": 1, "instrument": 1, "retention": 1, "exclusion": 1}
    covered = {(method, resolve(path.format(**ids)).url_name) for method, path, _, _ in MATRIX}
    assert covered == served

"""Every route of the URL map answers OPTIONS, whoever asks: never with a server error.

OPTIONS is how browsers preflight and how API clients discover what an
endpoint accepts; DRF answers it from the view's declared serializer, so a
view that declares none used to fail with 500.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from conftest import SYSTEM
from governance import services as gov
from governance.models import DataCategory, JurisdictionRule, Notice
from governance.tests.personas import PERSONAS, build_cast
from people.tokens import token_issue

PROBLEM = "application/problem+json"
# The admin's own pages are Django's and answer OPTIONS alike; the API and the consoles are ours.
SKIPPED = ("admin/",)


def routes(patterns=None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every concrete route of the URL map, with its full pattern text."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from routes(entry.url_patterns, prefix + str(entry.pattern))
        else:
            yield prefix + str(entry.pattern), entry


def is_api(pattern: URLPattern) -> bool:
    view = getattr(pattern.callback, "cls", None)
    return isinstance(view, type) and issubclass(view, APIView)


@pytest.fixture
def world(small_policy):
    """The personas plus one object of each kind, so item routes reach real objects (not a 404)."""
    cast = build_cast(small_policy["regions"])
    us = small_policy["regions"]["US"]
    instrument = gov.instrument_save(
        kind="company_written_policy",
        title="Monitoring policy",
        region=us,
        valid_from=date(2026, 1, 1),
        document_ref="dms://policies/monitoring.pdf",
        actor=SYSTEM,
    )
    retention = gov.retention_save(
        category=DataCategory.objects.get(slug="screenshots"),
        raw_retention_days=30,
        delete_on_withdrawal_days=7,
        delete_on_termination_days=30,
        actor=SYSTEM,
    )
    exclusion = gov.exclusion_save(kind="app", pattern="com.1password.*", label="1Password", actor=SYSTEM)
    token, _ = token_issue(kind="user", name="cli", user=cast.users["legal_in_scope"], actor=SYSTEM)
    rule = JurisdictionRule.objects.filter(region="US").first()
    assert rule is not None
    values = {
        "code": "US",
        "version": str(Notice.objects.get().version),
        "pk": str(rule.pk),
        "seq": "1",
        "number": "1",
        "receipt_id": "r_unknown",
    }
    # Routes whose <pk> names another model than the rule's.
    by_route = {
        "legal-instruments/": instrument.pk,
        "retention-policies/": retention.pk,
        "exclusions/": exclusion.pk,
        "tokens/": token.pk,
        "instruments/": instrument.pk,
    }
    return cast, values, by_route


def url_of(route: str, values: dict, by_route: dict) -> str:
    def fill(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        if converter == "uuid":
            return str(uuid.uuid4())
        for prefix, value in by_route.items():
            if name == "pk" and prefix in route:
                return str(value)
        if name == "slug":
            return "ai_agent_training" if "purposes" in route else "keystrokes"
        return values.get(name, "1" if converter == "int" else "x")

    url = re.sub(r"<(?:(\w+):)?(\w+)>", fill, route)
    # re_path routes (SCIM's catch-all) are regular expressions: ask for something unknown there.
    return "/" + url.replace("^", "").replace("$", "").replace(".*", "unknown")


def test_every_route_answers_options_without_a_server_error(world):
    cast, values, by_route = world
    clients = {persona: cast.client(persona) for persona in PERSONAS if persona != "anonymous"}
    answered = 0
    for route, pattern in routes():
        if route.startswith(SKIPPED):
            continue
        url = url_of(route, values, by_route)
        for persona, client in clients.items():
            response = client.options(url)
            assert response.status_code < 500, (url, persona, response.status_code)
            if is_api(pattern) and response.status_code >= 400:
                assert response["Content-Type"].startswith((PROBLEM, "application/scim+json")), (url, persona)
            answered += 1
    assert answered > 300


def test_options_on_a_policy_collection_describes_what_post_accepts(world):
    cast, _, _ = world

    response = cast.client("legal_in_scope").options("/api/v1/jurisdiction-rules/")

    assert response.status_code == 200, response.content
    post = response.json()["actions"]["POST"]
    assert {"region", "status", "preconditions", "effective_from"} <= set(post)
    assert post["status"]["type"] == "choice"


def test_options_on_a_policy_item_describes_what_put_accepts(world):
    cast, values, _ = world

    response = cast.client("legal_in_scope").options(f"/api/v1/regions/{values['code']}")

    assert response.status_code == 200, response.content
    assert {"code", "name", "kind", "members"} <= set(response.json()["actions"]["PUT"])


def test_options_on_an_approval_describes_its_optional_body(world):
    cast, values, _ = world

    response = cast.client("approver").options(f"/api/v1/notices/{values['version']}/approve")

    assert response.status_code == 200, response.content
    assert "published_at" in response.json()["actions"]["POST"]

"""Shared test personas and helpers (STYLE.md: one base with personas, small make_* helpers).

Personas: an employee in New York and one in Germany, a legal user and a
second approver, an auditor, and an outsider with no role. ``small_policy``
builds a compact policy through the services (so it is audited like any
other); tests of the shipped rules load the default pack instead.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from audit.actors import Actor
from governance import services as gov
from people.models import Employee
from people.services import employee_provision

SYSTEM = Actor.system("tests")
POLICY_START = datetime(2026, 1, 1, tzinfo=UTC)
_serial = itertools.count(1)


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests when the suite runs on SQLite."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Production settings otherwise; the test client speaks plain HTTP.
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache, keyed by user and token ids, which
    repeat from test to test on SQLite: start every test with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_serial)}"
    return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)


def make_employee(
    *,
    country: str = "US",
    subdivision: str = "",
    hr_id: str | None = None,
    user=None,
    **extra,
) -> Employee:
    hr_id = hr_id or f"E{1000 + next(_serial)}"
    return employee_provision(
        hr_id=hr_id,
        display_name=extra.pop("display_name", f"Employee {hr_id}"),
        country=country,
        subdivision=subdivision,
        user=user,
        actor=SYSTEM,
        **extra,
    )


CATEGORIES = {
    "keystrokes": {"sensitive": True},
    "keystroke_timing": {"sensitive": True, "biometric": True},
    "mouse_movement": {},
    "screenshots": {"sensitive": True},
}


def build_small_policy() -> dict:
    """Categories, two purposes, regions, approved rules and an approved notice."""
    for slug, flags in CATEGORIES.items():
        gov.category_save(
            slug=slug, name=slug.replace("_", " ").title(), description=f"{slug} data", actor=SYSTEM, **flags
        )
    gov.purpose_save(
        slug="ai_agent_training",
        name="AI agent training",
        description="Train agents.",
        categories=CATEGORIES,
        actor=SYSTEM,
    )
    gov.purpose_save(
        slug="performance_evaluation",
        name="Performance evaluation",
        description="Never allowed.",
        categories=["keystrokes"],
        prohibited=True,
        actor=SYSTEM,
    )
    regions = {code: gov.region_save(code=code, actor=SYSTEM) for code in ("US", "US-NY", "US-CA", "DE", "FR")}
    regions["EU"] = gov.region_save(code="EU", name="European Union", kind="group", members=["DE", "FR"], actor=SYSTEM)
    rules = {}
    for code, status, pre in (
        ("US", "allow", []),
        ("US-NY", "conditional", ["notice_acknowledgement"]),
        ("EU", "block", []),
    ):
        rules[code] = gov.rule_approve(
            rule=gov.rule_draft(
                region=regions[code], status=status, preconditions=pre, effective_from=POLICY_START, actor=SYSTEM
            ),
            actor=SYSTEM,
            via="tests",
        )
    notice = gov.notice_approve(
        notice=gov.notice_draft(
            title="Activity capture for AI training",
            summary="We would like to record how you use your computer to train AI agents.",
            body="Full text.",
            retention_statement="Kept 90 days.",
            access_statement="Only the research team's pipelines.",
            no_evaluation_statement="Never used to evaluate you.",
            items=[("ai_agent_training", slug, f"We capture your {slug}.") for slug in CATEGORIES],
            material=True,
            actor=SYSTEM,
        ),
        actor=SYSTEM,
        published_at=POLICY_START,
        via="tests",
    )
    return {"regions": regions, "rules": rules, "notice": notice}


@pytest.fixture
def small_policy(db):
    return build_small_policy()


@pytest.fixture
def legal(db):
    return make_user("legal")


@pytest.fixture
def approver(db):
    return make_user("approver")


@pytest.fixture
def auditor(db):
    return make_user("auditor")


@pytest.fixture
def outsider(db):
    return make_user("outsider")


@pytest.fixture
def ny_employee(db):
    return make_employee(country="US", subdivision="US-NY", user=make_user("nina"), display_name="Nina (New York)")


@pytest.fixture
def de_employee(db):
    return make_employee(country="DE", subdivision="DE-BE", user=make_user("dieter"), display_name="Dieter (Berlin)")


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"

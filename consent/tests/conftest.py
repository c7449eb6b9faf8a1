"""Fixtures for consent tests.

The self-service API tests use the same ten personas as the policy API's
(``cast``); the portal tests use the small policy plus what the notice page
promises (exclusions, retention).
"""

from __future__ import annotations

import pytest

from conftest import SYSTEM, make_employee, make_user
from governance import services as gov
from governance.models import DataCategory, Purpose
from governance.tests.conftest import cast  # noqa: F401 - re-exported fixture


def add_portal_promises() -> None:
    gov.exclusion_save(
        kind="app", pattern="com.1password.*", label="Password managers", reason="password_manager", actor=SYSTEM
    )
    gov.exclusion_save(
        kind="domain", pattern="*.bankofamerica.com", label="Online banking", reason="banking", actor=SYSTEM
    )
    gov.exclusion_save(
        kind="flag",
        pattern="private_browsing",
        label="Private browsing windows",
        reason="private_browsing",
        categories=["screenshots"],
        actor=SYSTEM,
    )
    for category in DataCategory.objects.all():
        gov.retention_save(
            category=category,
            raw_retention_days=90,
            delete_on_withdrawal_days=30,
            delete_on_termination_days=30,
            actor=SYSTEM,
        )
    gov.retention_save(
        category=DataCategory.objects.get(slug="screenshots"),
        raw_retention_days=30,
        delete_on_withdrawal_days=7,
        delete_on_termination_days=7,
        purpose=Purpose.objects.get(slug="ai_agent_training"),
        actor=SYSTEM,
    )


@pytest.fixture
def portal_policy(small_policy):
    add_portal_promises()
    return small_policy


@pytest.fixture
def us_employee(db):
    """An employee in a plain "allow" US state (Texas falls back to the US rule)."""
    return make_employee(country="US", subdivision="US-TX", user=make_user("tara"), display_name="Tara (Texas)")

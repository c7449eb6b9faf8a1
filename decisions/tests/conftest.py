"""Fixtures for the decision API: a policy with retention and exclusions, tokens, and helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import SYSTEM, build_small_policy, make_employee
from consent.services import consent_grant, notice_acknowledge
from consentry.outbox import relay_pending
from decisions.feedwait import stop_listener
from decisions.models import RevocationEvent
from governance import services as gov
from governance.models import DataCategory, Notice
from governance.selectors import current_notice
from people.models import ApiToken, Employee
from people.tokens import token_issue

PURPOSE = "ai_agent_training"


def build_decision_policy() -> dict:
    """The shared small policy plus what decisions also need: retention and exclusions."""
    policy = build_small_policy()
    for category in DataCategory.objects.all():
        gov.retention_save(
            category=category,
            raw_retention_days=30,
            delete_on_withdrawal_days=7,
            delete_on_termination_days=30,
            actor=SYSTEM,
        )
    gov.exclusion_save(
        kind="app", pattern="com.1password.*", label="1Password", reason="password_manager", actor=SYSTEM
    )
    gov.exclusion_save(kind="domain", pattern="*.chase.com", label="Chase", reason="banking", actor=SYSTEM)
    gov.exclusion_save(
        kind="flag", pattern="private_browsing", label="Private browsing", reason="private_browsing", actor=SYSTEM
    )
    return policy


@pytest.fixture
def policy(db):
    return build_decision_policy()


@pytest.fixture
def default_pack(db):
    """The policy pack that ships with the project, as an operator loads it."""
    call_command("load_policy_pack", verbosity=0)


def published_notice(at: datetime | None = None) -> Notice:
    """The notice in force at ``at`` (now by default); every decision policy publishes one."""
    notice = current_notice(at=at or timezone.now())
    assert notice is not None, "no notice is published yet"
    return notice


def grant_consent(employee: Employee, *categories: str, purpose: str = PURPOSE, at=None) -> None:
    consent_grant(
        employee=employee,
        notice=published_notice(at),
        choices=[(purpose, category) for category in categories],
        actor=SYSTEM,
        at=at,
    )


def acknowledge(employee: Employee, at=None) -> None:
    notice_acknowledge(employee=employee, notice=published_notice(at), actor=SYSTEM, at=at)


@dataclass
class Client:
    """An API client authenticated by one bearer token."""

    token: ApiToken
    raw: str
    api: APIClient

    def post(self, path: str, data=None, **extra):
        return self.api.post(path, data, format="json", **extra)


def bearer(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def device_client(employee: Employee, device_id: str = "laptop-7") -> Client:
    token, raw = token_issue(kind="device", name=device_id, employee=employee, device_id=device_id, actor=SYSTEM)
    return Client(token, raw, bearer(raw))


def pipeline_client(*purposes: str, name: str = "trainer") -> Client:
    token, raw = token_issue(kind="pipeline", name=name, purposes=purposes or [PURPOSE], actor=SYSTEM)
    return Client(token, raw, bearer(raw))


def capture(client: Client, *categories: str, purpose: str = PURPOSE, context=None):
    body = {"purpose": purpose, "categories": list(categories)}
    if context is not None:
        body["context"] = context
    response = client.post("/api/v1/decisions/capture", body)
    assert response.status_code == 200, response.content
    return response.json()


def codes(decision: dict, category: str) -> list[str]:
    return [reason["code"] for reason in decision["categories"][category]["reasons"]]


@pytest.fixture
def us_employee(policy):
    return make_employee(country="US", subdivision="US-WA", display_name="Wanda (Washington)")


@pytest.fixture(scope="session", autouse=True)
def _feed_listener_stopped_before_the_database_is_dropped(django_db_setup):
    """A waiting long poll starts a LISTEN connection on PostgreSQL; it must be gone before DROP DATABASE."""
    yield
    stop_listener()


def relay() -> int:
    """Run the outbox relay as the after-commit kick or the beat task would."""
    return relay_pending()


def feed_of(employee: Employee) -> list[RevocationEvent]:
    return list(RevocationEvent.objects.filter(employee=employee).order_by("id"))

"""Fixtures for provisioning tests: bearer tokens of every kind and SCIM payloads."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from conftest import SYSTEM, make_employee, make_user
from people.roles import Role, ensure_roles
from people.tokens import token_issue

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim_user(hr_id: str = "E2001", *, country: str = "US", region: str | None = "CA", **extra) -> dict:
    """A SCIM User as an HR system would send it."""
    address = {"type": "work", "country": country, **({"region": region} if region else {})}
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "userName": f"{hr_id.lower()}@example.com",
        "displayName": f"Person {hr_id}",
        "active": True,
        "emails": [{"value": f"{hr_id.lower()}@example.com", "type": "work"}],
        "addresses": [address],
        ENTERPRISE: {"employeeNumber": hr_id, "organization": "Example Corp", "division": "HQ", "department": "R&D"},
    }
    body.update(extra)
    return body


def patch_op(*operations: dict) -> dict:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def bearer_client(raw: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def hr_client(db) -> APIClient:
    _, raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    return bearer_client(raw)


@pytest.fixture
def role_user(db):
    """make a user holding ``role`` (and a password ``pw-<username>``)."""
    groups = ensure_roles()

    def make(role: str, username: str | None = None):
        user = make_user(username or f"{role}-user")
        user.groups.add(groups[role])
        return user

    return make


@pytest.fixture
def clients(db, role_user) -> dict[str, APIClient]:
    """One client per kind of caller, for permission matrices."""
    employee_user = make_user("emma")
    employee = make_employee(user=employee_user)
    employee_user.groups.add(ensure_roles()[Role.EMPLOYEE])
    result: dict[str, APIClient] = {"anonymous": APIClient()}
    for name, user in (
        ("employee", employee_user),
        ("legal", role_user(Role.LEGAL)),
        ("hr_admin", role_user(Role.HR_ADMIN)),
    ):
        client = APIClient()
        client.force_login(user)
        result[name] = client
    tokens: dict[str, dict[str, Any]] = {
        "device_token": {"kind": "device", "employee": employee, "device_id": "laptop-1"},
        "pipeline_token": {"kind": "pipeline", "purposes": ["ai_agent_training"]},
        "user_token": {"kind": "user", "user": employee_user},
        "hr_token": {"kind": "hr"},
    }
    for name, options in tokens.items():
        _, raw = token_issue(name=name, actor=SYSTEM, **options)
        result[name] = bearer_client(raw)
    return result


def verified_login(client, user) -> None:
    """Sign ``user`` in with a confirmed authenticator already proven in this session."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

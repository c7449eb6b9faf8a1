"""The ten callers every API permission matrix checks, and a client for each.

Legal users are scoped the way the demo and real deployments do it: the US
team holds ``manage_region_policy`` on US (covering its states), the EU team
on the EU group (covering its members). The approver holds the approve
permission globally. Staff sessions carry a verified TOTP second factor, as
they must; machine tokens are real bearer tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from conftest import SYSTEM, make_employee, make_user
from people.models import Employee
from people.roles import Role, ensure_roles
from people.tokens import token_issue

PERSONAS = (
    "anonymous",
    "employee",
    "other_employee",
    "legal_elsewhere",
    "legal_in_scope",
    "approver",
    "auditor",
    "device",
    "pipeline",
    "hr",
)


@dataclass
class Cast:
    """Who is who in a test world: users by persona, the employee, and raw tokens."""

    users: dict
    employee: Employee
    other_employee: Employee
    tokens: dict[str, str]

    def client(self, persona: str) -> APIClient:
        client = APIClient()
        if persona in self.tokens:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.tokens[persona]}")
        elif persona != "anonymous":
            user = self.users[persona]
            client.force_login(user)
            device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
            if device is not None:
                # What django_otp.login does once the person typed a valid code: staff
                # sessions must carry a verified second factor (people.second_factor).
                session = client.session
                session[DEVICE_ID_SESSION_KEY] = device.persistent_id
                session.save()
        return client


def build_cast(regions: dict) -> Cast:
    """Personas on top of ``small_policy``'s regions (US, US-NY, US-CA, DE, FR, EU)."""
    groups = ensure_roles()
    users = {}

    def person(persona: str, role: str | None):
        user = make_user(persona)
        if role:
            user.groups.add(groups[role])
        if role in settings.CONSENTRY_SECOND_FACTOR_ROLES:
            TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
        users[persona] = user
        return user

    employee = make_employee(country="US", subdivision="US-NY", user=person("employee", Role.EMPLOYEE))
    other = make_employee(country="US", subdivision="US-NY", user=person("other_employee", Role.EMPLOYEE))
    assign_perm("governance.manage_region_policy", person("legal_in_scope", Role.LEGAL), regions["US"])
    assign_perm("governance.manage_region_policy", person("legal_elsewhere", Role.LEGAL), regions["EU"])
    assign_perm("governance.approve_region_policy", person("approver", Role.APPROVER))
    assign_perm("governance.audit_region", person("auditor", Role.AUDITOR))
    tokens = {
        "device": token_issue(kind="device", name="laptop", employee=employee, device_id="laptop-7", actor=SYSTEM)[1],
        "pipeline": token_issue(kind="pipeline", name="trainer", purposes=["ai_agent_training"], actor=SYSTEM)[1],
        "hr": token_issue(kind="hr", name="workday", actor=SYSTEM)[1],
    }
    return Cast(users=users, employee=employee, other_employee=other, tokens=tokens)


def matrix(cast: Cast, method: str, path: str, body=None) -> dict[str, int]:
    """Status per persona for one request; each persona's request is rolled back, so all start equal."""
    statuses = {}
    for persona in PERSONAS:
        with transaction.atomic():
            response = getattr(cast.client(persona), method)(path, body, format="json")
            transaction.set_rollback(True)
        if response.status_code >= 400:
            assert response["Content-Type"].startswith("application/problem+json"), (persona, response.content)
        statuses[persona] = response.status_code
    return statuses

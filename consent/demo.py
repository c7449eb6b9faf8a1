"""Demo data for the local platform: employees in eight regions, a user per role, some consent."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.actors import Actor
from consent.models import ConsentState
from consent.services import consent_grant, notice_acknowledge
from governance.models import Region
from governance.selectors import current_notice
from people.models import Employee
from people.roles import Role, ensure_roles
from people.services import employee_provision

ACTOR = Actor.system("demo")


@dataclass(frozen=True)
class DemoPerson:
    username: str
    name: str
    role: str
    country: str = ""
    subdivision: str = ""
    department: str = ""
    # Categories of ai_agent_training this employee opts in to.
    consents: tuple[str, ...] = ()
    acknowledges: bool = False


EMPLOYEES = [
    DemoPerson(
        "nina",
        "Nina Novak",
        Role.EMPLOYEE,
        "US",
        "US-NY",
        "Engineering",
        ("keystrokes", "mouse_movement", "mouse_clicks", "app_usage"),
        acknowledges=True,
    ),
    DemoPerson(
        "carlos",
        "Carlos Reyes",
        Role.EMPLOYEE,
        "US",
        "US-CA",
        "Engineering",
        ("keystrokes", "mouse_movement", "mouse_clicks", "screenshots", "app_usage"),
        acknowledges=True,
    ),
    DemoPerson("tess", "Tess Walker", Role.EMPLOYEE, "US", "US-TX", "Support", ("mouse_movement", "app_usage")),
    DemoPerson("ian", "Ian Brooks", Role.EMPLOYEE, "US", "US-IL", "Finance"),
    DemoPerson("dieter", "Dieter Braun", Role.EMPLOYEE, "DE", "DE-BE", "Engineering"),
    DemoPerson("fleur", "Fleur Martin", Role.EMPLOYEE, "FR", "", "Sales"),
    DemoPerson("george", "George Hughes", Role.EMPLOYEE, "GB", "GB-LND", "Sales"),
    DemoPerson("olivia", "Olivia Tremblay", Role.EMPLOYEE, "CA", "CA-ON", "Support"),
]
STAFF = [
    DemoPerson("legal_us", "Lena (legal, US)", Role.LEGAL),
    DemoPerson("legal_eu", "Elias (legal, EU)", Role.LEGAL),
    DemoPerson("approver", "Ada (approver)", Role.APPROVER),
    DemoPerson("auditor", "Aurelio (auditor)", Role.AUDITOR),
    DemoPerson("hr", "Hana (HR admin)", Role.HR_ADMIN),
    DemoPerson("admin", "Platform admin", "admin"),
]
EU_REGIONS = ("EU", "EEA", "DE", "FR", "IT")


def _logins_file() -> Path:
    return Path(settings.STATE_DIR) / "demo_logins.json"


def _passwords() -> dict[str, str]:
    path = _logins_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    people = [*EMPLOYEES, *STAFF]
    changed = False
    for person in people:
        if person.username not in stored:
            stored[person.username] = f"{person.username}-{secrets.token_urlsafe(9)}"
            changed = True
    if changed:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored


def _user(person: DemoPerson, password: str, groups: dict) -> AbstractUser:
    User = get_user_model()
    user, created = User.objects.get_or_create(username=person.username)
    if created or not user.check_password(password):
        user.set_password(password)
    first, _, last = person.name.partition(" ")
    user.first_name, user.last_name = first, last
    user.is_staff = person.role == "admin"
    user.is_superuser = person.role == "admin"
    user.save()
    if person.role in groups:
        user.groups.add(groups[person.role])
    return user


def _scope_staff(users: dict[str, AbstractUser]) -> None:
    """Legal users cover their regions; the approver and auditor see every region."""
    for region in Region.objects.all():
        eu = region.code in EU_REGIONS or region.groups.filter(code__in=EU_REGIONS).exists()
        us = region.code == "US" or region.code.startswith("US-")
        if us:
            assign_perm("governance.manage_region_policy", users["legal_us"], region)
        if eu:
            assign_perm("governance.manage_region_policy", users["legal_eu"], region)
    assign_perm("governance.approve_region_policy", users["approver"])
    assign_perm("governance.audit_region", users["auditor"])


def load_demo() -> list[tuple[str, str, str]]:
    """Create (or refresh) the demo; returns (username, password, who) rows to print."""
    passwords = _passwords()
    notice = current_notice(at=timezone.now())
    if notice is None:
        raise RuntimeError("No current notice: load the policy pack first (manage.py load_policy_pack).")
    groups = ensure_roles()
    rows = []
    with transaction.atomic():
        users = {p.username: _user(p, passwords[p.username], groups) for p in STAFF}
        _scope_staff(users)
        for index, person in enumerate(EMPLOYEES, start=1):
            user = _user(person, passwords[person.username], groups)
            employee = Employee.objects.filter(user=user).first() or employee_provision(
                hr_id=f"E{1000 + index}",
                display_name=person.name,
                email=f"{person.username}@example.com",
                country=person.country,
                subdivision=person.subdivision,
                department=person.department,
                entity="Example Corp",
                user=user,
                actor=ACTOR,
            )
            if person.acknowledges:
                notice_acknowledge(employee=employee, notice=notice, actor=ACTOR)
            if person.consents and not ConsentState.objects.filter(employee=employee).exists():
                consent_grant(
                    employee=employee,
                    notice=notice,
                    choices=[("ai_agent_training", category) for category in person.consents],
                    actor=Actor.for_user(user),
                )
            where = person.subdivision or person.country
            rows.append((person.username, passwords[person.username], f"employee {employee.hr_id} in {where}"))
    rows += [(p.username, passwords[p.username], p.name) for p in STAFF]
    return rows

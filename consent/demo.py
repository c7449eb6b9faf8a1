"""Demo data for the local platform: employees in eight regions, a user per role, some consent.

``run.py`` loads it at every start, so loading it again only adds what is
missing: people who already exist keep their consent, withdrawals,
acknowledgements, roles and scopes as they changed them since. Consent and
acknowledgements are seeded once, when the demo employee is created; they
are never given again on the employee's behalf (a later notice version is
theirs to read).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit.actors import Actor
from consent.services import consent_grant, notice_acknowledge
from governance.models import Notice, Region
from governance.selectors import current_notice
from people.models import Employee
from people.roles import Role, ensure_roles
from people.services import employee_provision

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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


def _passwords() -> tuple[dict[str, str], set[str]]:
    """The demo passwords, and the user names whose password was generated just now."""
    path = _logins_file()
    stored = json.loads(path.read_text()) if path.exists() else {}
    fresh = set()
    for person in [*EMPLOYEES, *STAFF]:
        if person.username not in stored:
            stored[person.username] = f"{person.username}-{secrets.token_urlsafe(9)}"
            fresh.add(person.username)
    if fresh:
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return stored, fresh


def _user(person: DemoPerson, password: str, *, fresh: bool, groups: dict) -> tuple[User, bool]:
    """The demo user, created with its name and role if missing; returns (user, created).

    An existing user is left as it is (an admin may have changed its roles or
    password), except that a password generated just now, because the logins
    file was lost, is set so the printed login works.
    """
    User = get_user_model()
    user, created = User.objects.get_or_create(username=person.username)
    if not created:
        if fresh:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user, False
    user.set_password(password)
    first, _, last = person.name.partition(" ")
    user.first_name, user.last_name = first, last
    user.is_staff = person.role == "admin"
    user.is_superuser = person.role == "admin"
    user.save()
    if person.role in groups:
        user.groups.add(groups[person.role])
    return user, True


def _scope_staff(users: dict[str, User], *, created: set[str]) -> None:
    """Legal users cover their regions; the approver and auditor see every region (new users only)."""
    for region in Region.objects.all():
        eu = region.code in EU_REGIONS or region.groups.filter(code__in=EU_REGIONS).exists()
        us = region.code == "US" or region.code.startswith("US-")
        if us and "legal_us" in created:
            assign_perm("governance.manage_region_policy", users["legal_us"], region)
        if eu and "legal_eu" in created:
            assign_perm("governance.manage_region_policy", users["legal_eu"], region)
    if "approver" in created:
        assign_perm("governance.approve_region_policy", users["approver"])
    if "auditor" in created:
        assign_perm("governance.audit_region", users["auditor"])


def load_demo() -> list[tuple[str, str, str]]:
    """Create what is missing of the demo; returns (username, password, who) rows to print."""
    passwords, fresh = _passwords()
    notice = current_notice(at=timezone.now())
    if notice is None:
        raise RuntimeError("No current notice: load the policy pack first (python3 run.py manage load_policy_pack).")
    groups = ensure_roles()
    rows = []
    with transaction.atomic():
        users, created = {}, set()
        for person in STAFF:
            users[person.username], new = _user(
                person, passwords[person.username], fresh=person.username in fresh, groups=groups
            )
            if new:
                created.add(person.username)
        _scope_staff(users, created=created)
        for index, person in enumerate(EMPLOYEES, start=1):
            user, _ = _user(person, passwords[person.username], fresh=person.username in fresh, groups=groups)
            employee = Employee.objects.filter(user=user).first()
            if employee is None:
                employee = employee_provision(
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
                _seed_choices(person, employee, notice=notice, user=user)
            where = person.subdivision or person.country
            rows.append((person.username, passwords[person.username], f"employee {employee.hr_id} in {where}"))
    rows += [(p.username, passwords[p.username], p.name) for p in STAFF]
    return rows


def _seed_choices(person: DemoPerson, employee: Employee, *, notice: Notice, user: User) -> None:
    """A new demo employee's acknowledgement and opt-ins, as if they had made them in the portal."""
    if person.acknowledges:
        notice_acknowledge(employee=employee, notice=notice, actor=ACTOR)
    if person.consents:
        consent_grant(
            employee=employee,
            notice=notice,
            choices=[("ai_agent_training", category) for category in person.consents],
            actor=Actor.for_user(user),
        )

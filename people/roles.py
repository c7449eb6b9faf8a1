"""The roles people hold, as Django groups with model permissions.

Region scoping is per object on top of these (django-guardian): a legal user
holds ``manage_region_policy`` on the regions they cover, an auditor
``audit_region``. A role's model permission without any object permission
grants nothing region-bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import Group, Permission
from django.db import models

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


class Role(models.TextChoices):
    EMPLOYEE = "employee", "Employee"
    LEGAL = "legal", "Legal"
    APPROVER = "approver", "Legal approver"
    AUDITOR = "auditor", "Auditor"
    HR_ADMIN = "hr_admin", "HR administrator"


_POLICY_MODELS = (
    "region",
    "datacategory",
    "purpose",
    "notice",
    "jurisdictionrule",
    "legalinstrument",
    "retentionpolicy",
    "contextexclusion",
)

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.EMPLOYEE: [],
    Role.LEGAL: [f"governance.{verb}_{model}" for model in _POLICY_MODELS for verb in ("view", "add", "change")]
    + ["people.view_aggregates"],
    Role.APPROVER: [f"governance.view_{model}" for model in _POLICY_MODELS]
    + ["governance.change_jurisdictionrule", "governance.change_notice"],
    Role.AUDITOR: ["audit.view_auditentry"],
    Role.HR_ADMIN: ["people.view_employee", "people.add_employee", "people.change_employee"],
}


def ensure_roles() -> dict[str, Group]:
    """Create the role groups and (re)attach their permissions; idempotent."""
    groups = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted: list[Permission] = []
        for name in perms:
            app_label, codename = name.split(".")
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
        groups[role] = group
    return groups


def has_role(user: User | AnonymousUser, role: str) -> bool:
    return user.is_authenticated and user.groups.filter(name=role).exists()

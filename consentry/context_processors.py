"""What the site-wide layout needs on every page: the areas the visitor may open.

The project package sits above every app, so it asks by permission name and
by the ``employee`` relation instead of importing the apps that define them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True, slots=True)
class Area:
    namespace: str
    label: str
    url: str
    current: bool


def user_areas(user) -> list[tuple[str, str, str]]:
    """(namespace, label, url name) of each console the user may open, in menu order."""
    if not user.is_authenticated:
        return []
    areas = []
    if getattr(user, "employee", None) is not None:
        areas.append(("portal", "My data", "portal:home"))
    if user.has_perm("governance.view_jurisdictionrule"):
        areas.append(("legal", "Legal console", "legal:regions"))
    if user.has_perm("audit.view_auditentry"):
        areas.append(("audit", "Audit", "audit:entries"))
    if user.has_perm("people.add_employee"):
        areas.append(("people", "People", "people:import"))
    if user.has_perm("people.view_apitoken"):
        areas.append(("tokens", "API tokens", "tokens:list"))
    return areas


def navigation(request: HttpRequest) -> dict:
    match = getattr(request, "resolver_match", None)
    here = match.namespace if match else ""
    user = getattr(request, "user", None)
    if user is None:
        return {"areas": []}
    return {
        "areas": [
            Area(namespace=ns, label=label, url=reverse(name), current=ns == here)
            for ns, label, name in user_areas(user)
        ]
    }

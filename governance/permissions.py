"""Who may see and change which part of the policy: a role permission plus a region scope.

Two layers, both required (STYLE.md, "authorize twice"):

- the role's model permission for the verb (``view_``, ``add_``, ``change_``
  on the model), which the role groups in ``people.roles`` grant;
- for region-bound objects (rules, instruments, regional retention,
  regions themselves) a django-guardian object permission on the region:
  ``manage_region_policy`` to see and change, ``approve_region_policy`` to
  approve. A global permission covers every region.

An object permission on a country also covers its subdivisions, and one on a
group (EU, EEA) covers its member countries and their subdivisions: legal
teams are organised that way, and a subdivision created later is covered
without anyone remembering to grant it.

Company-wide objects (categories, purposes, notices, exclusions, retention
without a region) need the role permission only; approving a notice, which
applies everywhere, needs the global approve permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from consentry.errors import Forbidden
from governance.models import Region, RegionKind
from people.authentication import IsPersonAuthenticated

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

MANAGE = "governance.manage_region_policy"
APPROVE = "governance.approve_region_policy"


@dataclass(frozen=True, slots=True)
class RegionScope:
    """The regions a user may act on with one permission."""

    everything: bool
    codes: frozenset[str]
    # Countries whose subdivisions are covered, including ones not yet created.
    countries: frozenset[str]

    def covers(self, code: str) -> bool:
        if self.everything or code in self.codes:
            return True
        country, dash, _ = code.partition("-")
        return bool(dash) and country in self.countries

    def filter(self, queryset: QuerySet, field: str = "region") -> QuerySet:
        """Narrow ``queryset`` to rows whose ``field`` region is in scope."""
        if self.everything:
            return queryset
        return queryset.filter(**{f"{field}__in": self.codes})

    def __or__(self, other: RegionScope) -> RegionScope:
        return RegionScope(
            everything=self.everything or other.everything,
            codes=self.codes | other.codes,
            countries=self.countries | other.countries,
        )


NOTHING = RegionScope(everything=False, codes=frozenset(), countries=frozenset())


def region_scope(user: User | AnonymousUser, perm: str) -> RegionScope:
    """The regions where ``user`` holds ``perm``, globally or per region (guardian)."""
    if not user.is_authenticated or not user.is_active:
        return NOTHING
    if user.is_superuser or user.has_perm(perm):
        return RegionScope(everything=True, codes=frozenset(), countries=frozenset())
    direct = list(
        get_objects_for_user(user, perm, klass=Region, with_superuser=False, accept_global_perms=False).values_list(
            "code", "kind"
        )
    )
    groups = [code for code, kind in direct if kind == RegionKind.GROUP]
    members = set(Region.objects.filter(groups__code__in=groups).values_list("code", flat=True)) if groups else set()
    countries = {code for code, kind in direct if kind == RegionKind.COUNTRY} | members
    codes = {code for code, _ in direct} | members
    if countries:
        subdivisions = Region.objects.filter(kind=RegionKind.SUBDIVISION).filter(
            reduce(or_, (Q(code__startswith=f"{country}-") for country in countries))
        )
        codes |= set(subdivisions.values_list("code", flat=True))
    return RegionScope(everything=False, codes=frozenset(codes), countries=frozenset(countries))


def managed_regions(user: User | AnonymousUser) -> RegionScope:
    return region_scope(user, MANAGE)


def approvable_regions(user: User | AnonymousUser) -> RegionScope:
    return region_scope(user, APPROVE)


def visible_regions(user: User | AnonymousUser) -> RegionScope:
    """Whoever may manage or approve a region's policy may read it."""
    return managed_regions(user) | approvable_regions(user)


def require_region(scope: RegionScope, code: str, *, doing: str) -> None:
    """Refuse an action on a region outside the caller's scope (403 out_of_scope)."""
    if not scope.covers(code):
        raise Forbidden(f"You may not {doing} for region {code}.", code="out_of_scope")


_VERBS = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PUT": "change", "PATCH": "change"}


class PolicyPermission(BasePermission):
    """A person (never a machine token) whose role holds the model permission for the verb.

    Reads need ``view_<model>``, creates ``add_<model>``, and updates and
    deletes ``change_<model>`` (roles hold no delete permission: removing a
    draft or an exclusion is a change of the policy). Views mark approval
    actions with ``approval = True``: they need only ``view_<model>`` here and
    the approve permission on the object, checked by the view.
    """

    message = "Your role may not do this with the policy."

    def has_permission(self, request: Request, view) -> bool:
        if not IsPersonAuthenticated().has_permission(request, view):
            return False
        verb = "view" if getattr(view, "approval", False) else _VERBS.get(request.method or "", "change")
        return request.user.has_perm(f"governance.{verb}_{view.model._meta.model_name}")


# The legal console's questions, on the same scopes as the API ---------------------------


def can_manage_region(user: User | AnonymousUser, region: Region) -> bool:
    """Draft rules, record instruments and discard drafts for this region."""
    return user.has_perm("governance.add_jurisdictionrule") and managed_regions(user).covers(region.code)


def can_approve_region(user: User | AnonymousUser, region: Region) -> bool:
    """Approve drafts of this region (the four-eyes check itself is the service's)."""
    return user.has_perm("governance.change_jurisdictionrule") and approvable_regions(user).covers(region.code)


def can_view_region(user: User | AnonymousUser, region: Region) -> bool:
    """Open the region's rules, drafts and instruments: those who manage or approve it."""
    return user.has_perm("governance.view_jurisdictionrule") and visible_regions(user).covers(region.code)


def regions_managed(user: User | AnonymousUser) -> QuerySet[Region]:
    if not user.has_perm("governance.add_jurisdictionrule"):
        return Region.objects.none()
    return managed_regions(user).filter(Region.objects.all(), field="code")


def regions_viewable(user: User | AnonymousUser) -> QuerySet[Region]:
    if not user.has_perm("governance.view_jurisdictionrule"):
        return Region.objects.none()
    return visible_regions(user).filter(Region.objects.all(), field="code")


def can_load_packs(user: User | AnonymousUser) -> bool:
    """Loading a pack approves its rules as a reviewed pack, in every region it names.

    So only someone who may draft and approve in every region (the global
    grants) may load one from the console; anyone in the console may check one.
    """
    return (
        user.has_perm("governance.add_jurisdictionrule")
        and user.has_perm("governance.change_jurisdictionrule")
        and managed_regions(user).everything
        and approvable_regions(user).everything
    )

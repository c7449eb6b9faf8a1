"""Who may do what to a region's policy: model permissions of the role, scoped per region.

A role's model permission says what kind of thing a person may touch; the
region object permission (django-guardian) says where. Both are needed: an
EU legal user holds ``add_jurisdictionrule`` but ``manage_region_policy``
only on EU regions, so a US rule stays out of reach. A global grant of the
region permission (an approver for every region) counts for every region.
"""

from __future__ import annotations

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from governance.models import Region

MANAGE = "governance.manage_region_policy"
APPROVE = "governance.approve_region_policy"


def _holds(user, perm: str, region: Region) -> bool:
    return user.has_perm(perm) or user.has_perm(perm, region)


def can_manage_region(user, region: Region) -> bool:
    """Draft rules, record instruments and discard drafts for this region."""
    return user.has_perm("governance.add_jurisdictionrule") and _holds(user, MANAGE, region)


def can_approve_region(user, region: Region) -> bool:
    """Approve drafts of this region (the four-eyes check itself is the service's)."""
    return user.has_perm("governance.change_jurisdictionrule") and _holds(user, APPROVE, region)


def can_view_region(user, region: Region) -> bool:
    """Open the region's rules, drafts and instruments: those who manage or approve it."""
    return user.has_perm("governance.view_jurisdictionrule") and (
        _holds(user, MANAGE, region) or _holds(user, APPROVE, region)
    )


def regions_managed(user) -> QuerySet[Region]:
    if not user.has_perm("governance.add_jurisdictionrule"):
        return Region.objects.none()
    return get_objects_for_user(user, MANAGE, klass=Region, accept_global_perms=True)


def regions_viewable(user) -> QuerySet[Region]:
    if not user.has_perm("governance.view_jurisdictionrule"):
        return Region.objects.none()
    return get_objects_for_user(user, [MANAGE, APPROVE], klass=Region, any_perm=True, accept_global_perms=True)


def can_load_packs(user) -> bool:
    """Loading a pack approves its rules as a reviewed pack, in every region it names.

    So only someone who may draft and approve in every region (the global
    grants) may load one from the console; anyone in the console may check one.
    """
    return (
        user.has_perm("governance.add_jurisdictionrule")
        and user.has_perm("governance.change_jurisdictionrule")
        and user.has_perm(MANAGE)
        and user.has_perm(APPROVE)
    )

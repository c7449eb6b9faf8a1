"""Compute an auditor's region scope for the ledger (``CONSENTRY_AUDIT_ACCESS_RESOLVER``).

The only place an audit scope is worked out; ``audit.access`` declares what it
is and every caller gets it from ``audit.access.access_for``, which calls this
by setting because the audit app sits below governance and people. The lowest
layer that sees both regions and employees is this one. ``audit.view_auditentry``
(the auditor role) is needed at all; the global ``governance.audit_region``
permission covers every region, and guardian object permissions on regions
cover those regions (a group counts as its member countries, a country as its
subdivisions). The user's own HR ids come along so employees may fetch proofs
of their own entries.
"""

from __future__ import annotations

from typing import Any

from guardian.shortcuts import get_objects_for_user

from audit.access import AuditAccess
from governance.models import Region, RegionKind
from people.models import Employee


def audit_access_for(user: Any) -> AuditAccess:
    subjects = frozenset(Employee.objects.filter(user=user).values_list("hr_id", flat=True))
    if not user.has_perm("audit.view_auditentry"):
        return AuditAccess(subjects=subjects)
    if user.has_perm("governance.audit_region"):
        return AuditAccess(can_audit=True, all_regions=True, subjects=subjects)
    regions: set[str] = set()
    countries: set[str] = set()
    scoped = get_objects_for_user(
        user, "governance.audit_region", klass=Region, accept_global_perms=False, with_superuser=False
    ).prefetch_related("members")
    for region in scoped:
        regions.add(region.code)
        if region.kind == RegionKind.COUNTRY:
            countries.add(region.code)
        elif region.kind == RegionKind.GROUP:
            members = {member.code for member in region.members.all()}
            regions |= members
            countries |= members
    return AuditAccess(can_audit=True, regions=frozenset(regions), countries=frozenset(countries), subjects=subjects)

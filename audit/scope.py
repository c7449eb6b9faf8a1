"""Which audit entries an auditor may read: every region, or the regions granted to them.

Auditors hold the ``audit.view_auditentry`` model permission through their
role, and ``governance.audit_region`` either globally (every region) or per
region (django-guardian). The ledger sits above governance in the layers, so
regions are looked up by permission name, never by importing their model.
A region covers its own entries, its subdivisions' (``US`` covers ``US-NY``)
and, for a group such as EU, its member countries and their subdivisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from guardian.shortcuts import get_objects_for_user

from audit.models import AuditEntry

AUDIT_REGION = "governance.audit_region"


@dataclass(frozen=True, slots=True)
class AuditScope:
    everything: bool
    codes: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.everything and not self.codes

    def filter(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        if self.everything:
            return entries
        if not self.codes:
            return entries.none()
        covered = Q(region__in=self.codes)
        for code in self.codes:
            if "-" not in code:
                covered |= Q(region__startswith=f"{code}-")
        return entries.filter(covered)


def audit_scope(user) -> AuditScope:
    """The caller's audit scope; nothing at all without the auditor's model permission."""
    if not user.is_authenticated or not user.has_perm("audit.view_auditentry"):
        return AuditScope(everything=False)
    if user.has_perm(AUDIT_REGION):
        return AuditScope(everything=True)
    codes: set[str] = set()
    for region in get_objects_for_user(user, AUDIT_REGION, accept_global_perms=False):
        codes.add(region.pk)
        codes.update(region.members.values_list("pk", flat=True))
    return AuditScope(everything=False, codes=frozenset(codes))

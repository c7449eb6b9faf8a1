"""Who may read which audit entries: the one model of an auditor's scope.

Auditors read and export the ledger, scoped by region: everything (the
global ``governance.audit_region`` permission) or the regions they hold that
permission on as django-guardian object permissions. A region in scope covers
entries about it, about its member countries if it is a group, and about
the subdivisions of those countries. Entries that name no region are visible
only to auditors of all regions. An employee may read only the inclusion
proof of an entry about themselves. Nobody else reads the ledger.

Every caller (the audit API and console, exports and their bundles, the rights
requests auditors see) asks ``access_for`` and filters with ``AuditAccess``;
nothing else works out an audit scope. The type lives here, in the lowest layer
that needs it, because the ledger's own selectors and exports filter by it.
Working it out needs regions, their groups (governance) and the people behind
users (people), which sit above this app and which it may not import, so this
module only declares what an access is and the resolver named by
``CONSENTRY_AUDIT_ACCESS_RESOLVER`` (``governance.audit_scope``) computes it:
the scope comes down as data, and the layers stay one-way. A setting rather
than a registration at start-up, so there is no window before the apps are
ready in which the ledger would have no resolver. Any failure there denies;
a database outage is raised, to be answered as one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils.module_loading import import_string

from consentry.outages import is_database_outage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditAccess:
    # Holds the auditor role's ``audit.view_auditentry``.
    can_audit: bool = False
    all_regions: bool = False
    # Region codes in scope, groups already expanded to their members.
    regions: frozenset[str] = frozenset()
    # Countries among them: their subdivisions (``DE-BE``) are in scope too.
    countries: frozenset[str] = frozenset()
    # The caller's own HR ids: the subjects whose proofs they may read.
    subjects: frozenset[str] = frozenset()

    @property
    def scoped(self) -> bool:
        return self.can_audit and not self.all_regions

    def entries(self) -> Q:
        """The entries this access may read, as a filter."""
        if not self.can_audit:
            return Q(pk__in=[])
        if self.all_regions:
            return Q()
        condition = Q(region__in=sorted(self.regions))
        for country in sorted(self.countries):
            condition |= Q(region__startswith=f"{country}-")
        return condition

    def may_read(self, entry: Any) -> bool:
        if not self.can_audit:
            return False
        if self.all_regions:
            return True
        region = entry.region
        if region in self.regions:
            return True
        country, dash, _ = region.partition("-")
        return bool(dash) and country in self.countries

    def may_prove(self, entry: Any) -> bool:
        """An auditor in scope, or the employee the entry is about."""
        return self.may_read(entry) or (bool(entry.subject) and entry.subject in self.subjects)

    def scope_json(self) -> dict[str, Any]:
        """The audit scope, frozen into an export when it is requested."""
        if self.all_regions:
            return {"all": True}
        return {"all": False, "regions": sorted(self.regions), "countries": sorted(self.countries)}

    @classmethod
    def from_scope_json(cls, scope: dict[str, Any]) -> AuditAccess:
        if scope.get("all") is True:
            return cls(can_audit=True, all_regions=True)
        return cls(
            can_audit=True,
            regions=frozenset(scope.get("regions", ())),
            countries=frozenset(scope.get("countries", ())),
        )


NO_ACCESS = AuditAccess()


def access_for(user: Any) -> AuditAccess:
    """The caller's audit access; no access on any doubt."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_ACCESS
    try:
        resolver = import_string(settings.CONSENTRY_AUDIT_ACCESS_RESOLVER)
        access = resolver(user)
    except Exception as exc:  # fail closed: a broken resolver grants nothing
        if is_database_outage(exc):
            # Still nothing granted, but said as it is: the caller gets a 503, not "you are no auditor".
            raise
        logger.exception("audit access resolver failed; denying")
        return NO_ACCESS
    return access if isinstance(access, AuditAccess) else NO_ACCESS

"""Reads of the policy: region look-up, the rule in force, the current notice."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q

from governance.models import ApprovalState, JurisdictionRule, LegalInstrument, Notice, Region
from people.models import Employee


def region_chain(*, country: str, subdivision: str = "") -> list[str]:
    """Codes to try, most specific first: subdivision → country → its groups."""
    groups = Region.objects.filter(members__code=country).order_by("code").values_list("code", flat=True)
    return [code for code in (subdivision, country) if code] + list(groups)


def rules_in_force(*, at: datetime) -> Q:
    return Q(state=ApprovalState.APPROVED, effective_from__lte=at) & (
        Q(effective_to__isnull=True) | Q(effective_to__gt=at)
    )


def effective_rule(*, codes: list[str], at: datetime) -> JurisdictionRule | None:
    """The approved rule in force at ``at`` for the first code that has one; None means unknown."""
    rules = {rule.region_id: rule for rule in JurisdictionRule.objects.filter(rules_in_force(at=at), region__in=codes)}
    return next((rules[code] for code in codes if code in rules), None)


def rule_for_employee(*, employee: Employee, at: datetime) -> JurisdictionRule | None:
    return effective_rule(codes=region_chain(country=employee.country, subdivision=employee.subdivision), at=at)


def current_notice(*, at: datetime) -> Notice | None:
    """The latest approved notice already published at ``at``."""
    return (
        Notice.objects.filter(state=ApprovalState.APPROVED, published_at__lte=at)
        .order_by("-version")
        .prefetch_related("items")
        .first()
    )


def instruments_covering(*, employee: Employee, codes: list[str], at: datetime) -> list[LegalInstrument]:
    """Instruments valid at ``at`` whose scope (region, entity, site, employee) covers the employee."""
    day = at.date()
    return list(
        LegalInstrument.objects.filter(region__in=codes, valid_from__lte=day)
        .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day))
        .filter(Q(entity="") | Q(entity=employee.entity))
        .filter(Q(site="") | Q(site=employee.site))
        .filter(Q(employee__isnull=True) | Q(employee=employee))
    )

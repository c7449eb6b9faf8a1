"""Reads of the policy: region look-up, the rule in force, the current notice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Min, Q

from governance.models import ApprovalState, JurisdictionRule, LegalInstrument, Notice, Region, RetentionPolicy
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


@dataclass(frozen=True, slots=True)
class RetentionLimits:
    raw_days: int
    withdrawal_days: int
    termination_days: int


def retention_for(*, codes: list[str], purpose: str, category: str) -> RetentionLimits | None:
    """The strictest retention limits for a category here, for a purpose; None when none is set.

    A policy applies when its region is empty or in ``codes`` and its purpose
    is empty or ``purpose``. Each limit is the shortest among the applicable
    policies (SPEC.md: the strictest applicable limit wins).
    """
    limits = (
        RetentionPolicy.objects.filter(category=category)
        .filter(Q(region__isnull=True) | Q(region__in=codes))
        .filter(Q(purpose__isnull=True) | Q(purpose=purpose))
        .aggregate(
            raw=Min("raw_retention_days"),
            withdrawal=Min("delete_on_withdrawal_days"),
            termination=Min("delete_on_termination_days"),
        )
    )
    if limits["raw"] is None:
        return None
    return RetentionLimits(
        raw_days=limits["raw"], withdrawal_days=limits["withdrawal"], termination_days=limits["termination"]
    )


@dataclass(frozen=True, slots=True)
class RegionRow:
    """A region with the rule that decides for it now: its own, or one inherited up the chain."""

    region: Region
    own_rule: JurisdictionRule | None
    rule: JurisdictionRule | None
    drafts: int

    @property
    def status(self) -> str:
        return self.rule.status if self.rule else "unknown"

    @property
    def inherited_from(self) -> str:
        return self.rule.region_id if self.rule and self.own_rule is None else ""

    @property
    def country(self) -> str:
        return self.region.code.split("-", 1)[0] if self.region.kind != "group" else ""


def region_overview(*, at: datetime) -> list[RegionRow]:
    """Every region with its rule in force at ``at``, walking subdivision → country → groups."""
    regions = list(Region.objects.prefetch_related("groups").order_by("code"))
    in_force = {rule.region_id: rule for rule in JurisdictionRule.objects.filter(rules_in_force(at=at))}
    drafts = dict(
        JurisdictionRule.objects.filter(state=ApprovalState.DRAFT)
        .values("region")
        .annotate(n=Count("pk"))
        .values_list("region", "n")
    )
    groups_of = {region.code: sorted(g.code for g in region.groups.all()) for region in regions}
    rows = []
    for region in regions:
        if region.kind == "group":
            chain = [region.code]
        else:
            country = region.code.split("-", 1)[0]
            chain = list(dict.fromkeys([region.code, country])) + groups_of.get(country, [])
        rule = next((in_force[code] for code in chain if code in in_force), None)
        rows.append(
            RegionRow(region=region, own_rule=in_force.get(region.code), rule=rule, drafts=drafts.get(region.code, 0))
        )
    return rows

"""Reads of consent: where an employee stands, pair by pair, and their receipts.

The per-pair state an employee sees is computed, never stored: the stored
projection says what the employee last chose, and the policy in force decides
whether that choice still counts (a blocked region, a lapsed grant, a material
notice that asks again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import Max, QuerySet

from consent.models import ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause, Receipt
from governance.models import (
    ACKNOWLEDGEMENT_PRECONDITIONS,
    BIOMETRIC_PRECONDITIONS,
    ApprovalState,
    JurisdictionRule,
    Notice,
    NoticeItem,
    PreconditionType,
    RuleStatus,
)
from governance.selectors import current_notice, instruments_covering, region_chain, rule_for_employee
from people.models import Employee

Pair = tuple[str, str]


class PairState(models.TextChoices):
    """The states API.md names for one purpose × category pair (computed, never stored)."""

    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"
    EXPIRED = "expired", "Expired"
    NOT_ASKED = "not_asked", "Not asked yet"
    RECONSENT_REQUIRED = "reconsent_required", "Asked again after a material notice change"
    UNAVAILABLE_IN_REGION = "unavailable_in_region", "Not available where the employee works"


# Region status when no approved rule covers the work location (fail closed).
REGION_UNKNOWN = "unknown"
# Notice states that were published at some point (re-consent asked by them still counts).
_PUBLISHED_STATES = (ApprovalState.APPROVED, ApprovalState.SUPERSEDED)


@dataclass(frozen=True, slots=True)
class PreconditionStanding:
    type: str
    met: bool
    label: str


@dataclass(frozen=True, slots=True)
class RegionStanding:
    """The rule in force for the employee's work location, and whether its conditions are met."""

    code: str
    rule_region: str | None
    status: str
    preconditions: tuple[PreconditionStanding, ...]
    blocked_categories: frozenset[str]

    @property
    def open(self) -> bool:
        return self.status in (RuleStatus.ALLOW, RuleStatus.CONDITIONAL)


@dataclass(frozen=True, slots=True)
class PairStanding:
    purpose: str
    category: str
    state: str
    since: datetime | None
    expires_at: datetime | None
    # The notice version the current choice was made under, if any.
    notice_version: int | None
    # The current notice's plain-language description of the pair, if it declares it.
    description: str


@dataclass(frozen=True, slots=True)
class ConsentOverview:
    employee: Employee
    region: RegionStanding
    notice: Notice | None
    acknowledged: bool
    paused_until: datetime | None
    items: tuple[PairStanding, ...]


def reconsent_versions(*, at: datetime, pairs: Iterable[Pair] | None = None) -> dict[Pair, int]:
    """For each pair, the newest published notice version that asked for re-consent.

    A grant made under an older version than this no longer counts: the
    notice changed materially for that pair after the employee agreed.
    """
    items = NoticeItem.objects.filter(
        requires_reconsent=True, notice__published_at__lte=at, notice__state__in=_PUBLISHED_STATES
    )
    if pairs is not None:
        wanted = set(pairs)
        items = items.filter(purpose__in={p for p, _ in wanted}, category__in={c for _, c in wanted})
    rows = items.values("purpose_id", "category_id").annotate(version=Max("notice__version"))
    return {(row["purpose_id"], row["category_id"]): row["version"] for row in rows}


def region_standing(*, employee: Employee, at: datetime, notice: Notice | None) -> RegionStanding:
    """The rule in force where the employee works, with each precondition met or not."""
    rule = rule_for_employee(employee=employee, at=at)
    if rule is None:
        return RegionStanding(
            code=employee.region_code,
            rule_region=None,
            status=REGION_UNKNOWN,
            preconditions=(),
            blocked_categories=frozenset(),
        )
    return RegionStanding(
        code=employee.region_code,
        rule_region=rule.region_id,
        status=rule.status,
        preconditions=tuple(_preconditions(employee=employee, rule=rule, at=at, notice=notice)),
        blocked_categories=frozenset(rule.blocked_categories),
    )


def _preconditions(
    *, employee: Employee, rule: JurisdictionRule, at: datetime, notice: Notice | None
) -> list[PreconditionStanding]:
    acknowledged = set(NoticeAcknowledgement.objects.filter(employee=employee).values_list("notice_id", flat=True))
    codes = region_chain(country=employee.country, subdivision=employee.subdivision)
    instruments = instruments_covering(employee=employee, codes=codes, at=at)
    standings = []
    for kind in rule.preconditions:
        if kind == PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE:
            met = bool(acknowledged)
        elif kind in ACKNOWLEDGEMENT_PRECONDITIONS:
            met = notice is not None and notice.pk in acknowledged
        elif kind in BIOMETRIC_PRECONDITIONS:
            # A release is personal: only one naming this employee counts.
            met = any(i.kind == kind and i.employee_id == employee.pk for i in instruments)
        else:
            met = any(i.kind == kind for i in instruments)
        label = PreconditionType(kind).label if kind in PreconditionType.values else kind
        standings.append(PreconditionStanding(type=kind, met=met, label=label))
    return standings


def _pair_state(
    *, stored: ConsentState | None, region: RegionStanding, category: str, reconsent_from: int, at: datetime
) -> str:
    if not region.open or category in region.blocked_categories:
        return PairState.UNAVAILABLE_IN_REGION
    if stored is None:
        return PairState.NOT_ASKED
    if stored.state == ConsentEventKind.WITHDRAWN:
        return PairState.WITHDRAWN
    if stored.state == ConsentEventKind.EXPIRED or (stored.expires_at is not None and stored.expires_at <= at):
        return PairState.EXPIRED
    if stored.notice.version < reconsent_from:
        return PairState.RECONSENT_REQUIRED
    return PairState.GRANTED


def consent_overview(*, employee: Employee, at: datetime) -> ConsentOverview:
    """Where the employee stands on every pair the current notice declares or they ever chose.

    Pairs the current notice no longer declares still appear while the
    employee has a choice on record, so they can always withdraw it.
    """
    notice = current_notice(at=at)
    region = region_standing(employee=employee, at=at, notice=notice)
    stored = {
        (s.purpose_id, s.category_id): s
        for s in ConsentState.objects.filter(employee=employee).select_related("notice")
    }
    described = {(i.purpose_id, i.category_id): i.description for i in notice.items.all()} if notice else {}
    pairs = sorted(set(described) | set(stored))
    reconsent = reconsent_versions(at=at, pairs=pairs)
    items = []
    for pair in pairs:
        state = stored.get(pair)
        items.append(
            PairStanding(
                purpose=pair[0],
                category=pair[1],
                state=_pair_state(
                    stored=state, region=region, category=pair[1], reconsent_from=reconsent.get(pair, 0), at=at
                ),
                since=state.since if state else None,
                expires_at=state.expires_at if state and state.state == ConsentEventKind.GRANTED else None,
                notice_version=state.notice.version if state else None,
                description=described.get(pair, ""),
            )
        )
    return ConsentOverview(
        employee=employee,
        region=region,
        notice=notice,
        acknowledged=notice is not None
        and NoticeAcknowledgement.objects.filter(employee=employee, notice=notice).exists(),
        paused_until=pause_running_until(employee=employee, at=at),
        items=tuple(items),
    )


def pause_running_until(*, employee: Employee, at: datetime) -> datetime | None:
    """When the employee's running pause ends, or None when capture is not paused."""
    pause = (
        Pause.objects.filter(employee=employee, resumed_at__isnull=True, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )
    return pause.ends_at if pause else None


def receipts_of(*, employee: Employee) -> QuerySet[Receipt]:
    """The employee's receipts, newest first; never anyone else's."""
    return Receipt.objects.filter(employee=employee).select_related("event").order_by("-issued_at", "-id")


def receipt_of(*, employee: Employee, receipt_id: str) -> Receipt | None:
    """One of the employee's receipts; None for another employee's, so its existence does not leak."""
    return receipts_of(employee=employee).filter(pk=receipt_id).first()

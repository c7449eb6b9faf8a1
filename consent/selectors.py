"""Reads of consent: standing per pair, receipts, the portal's pages and k-anonymous rates.

The portal's landing page is built on the same standing as ``GET /me/consent``.

The per-pair state an employee sees is computed, never stored: the stored
projection says what the employee last chose, and the policy in force decides
whether that choice still counts (a blocked region, a lapsed grant, a material
notice that asks again).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import models
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from audit.proofs import Inclusion, entry_inclusion
from audit.selectors import latest_checkpoint
from consent.models import ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause, Receipt
from governance.models import (
    ACKNOWLEDGEMENT_PRECONDITIONS,
    BIOMETRIC_PRECONDITIONS,
    ApprovalState,
    ContextExclusion,
    DataCategory,
    JurisdictionRule,
    Notice,
    NoticeItem,
    PreconditionType,
    Purpose,
    RuleStatus,
)
from governance.selectors import (
    RetentionLimits,
    current_notice,
    instruments_covering,
    region_chain,
    retention_for,
    rule_for_employee,
)
from people.iso3166 import country_name, subdivision_name
from people.models import Employee, EmployeeStatus

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


def receipt_inclusion(*, receipt: Receipt, at: datetime | None = None) -> Inclusion:
    """The ledger's proof that the receipt's audit entry is under a signed checkpoint, or when it will be.

    The receipt's JWS is signed when consent changes, before any checkpoint
    covers its entry, so the proof travels beside it, never inside it.
    """
    return entry_inclusion(receipt.audit_seq, now=at or timezone.now())


# The employee portal's landing page ---------------------------------------------------
#
# The same standing as ``GET /me/consent`` (``consent_overview``), dressed for
# people: pairs grouped by purpose with the category's name and flags, the
# strictest retention, what is never captured, and which conditions the
# employee can meet themselves.

# Keyed by the stored value: a PairState member is that very string.
STATE_WORDS: dict[str, str] = {
    PairState.GRANTED: "On",
    PairState.WITHDRAWN: "Off (withdrawn)",
    PairState.EXPIRED: "Off (expired)",
    PairState.NOT_ASKED: "Off (not asked yet)",
    PairState.RECONSENT_REQUIRED: "Off until you decide again",
    PairState.UNAVAILABLE_IN_REGION: "Not available where you work",
}


@dataclass(frozen=True, slots=True)
class PortalPrecondition:
    type: str
    label: str
    met: bool
    # The employee can meet it here (by acknowledging the notice); others are the employer's.
    by_employee: bool
    # Applies only to biometric categories (a per-employee written release).
    biometric_only: bool


@dataclass(frozen=True, slots=True)
class PortalRegion:
    standing: RegionStanding
    place: str
    preconditions: tuple[PortalPrecondition, ...]

    @property
    def status(self) -> str:
        return self.standing.status

    @property
    def is_open(self) -> bool:
        return self.standing.open

    @property
    def missing_employer_preconditions(self) -> list[PortalPrecondition]:
        return [p for p in self.preconditions if not p.met and not p.by_employee and not p.biometric_only]

    @property
    def acknowledgement_needed(self) -> bool:
        return any(not p.met and p.by_employee for p in self.preconditions)


@dataclass(frozen=True, slots=True)
class ItemView:
    purpose: str
    category: DataCategory
    description: str
    state: str
    since: datetime | None
    retention: RetentionLimits | None
    retention_cap_days: int | None
    needs_biometric_release: bool

    @property
    def is_on(self) -> bool:
        return self.state == PairState.GRANTED

    @property
    def available(self) -> bool:
        return self.state != PairState.UNAVAILABLE_IN_REGION

    @property
    def state_label(self) -> str:
        return STATE_WORDS[self.state]

    @property
    def key(self) -> str:
        return f"{self.purpose}/{self.category.slug}"

    @property
    def kept_days(self) -> int | None:
        """The shortest of the retention policy and the region's cap."""
        days = [d for d in (self.retention.raw_days if self.retention else None, self.retention_cap_days) if d]
        return min(days) if days else None


@dataclass(frozen=True, slots=True)
class ExclusionGroup:
    """Things never captured, for one reason (password managers, banking…), in words."""

    reason: str
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PurposeView:
    purpose: Purpose
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class PortalOverview:
    employee: Employee
    at: datetime
    region: PortalRegion
    notice: Notice | None
    purposes: tuple[PurposeView, ...]
    acknowledged: bool
    pause: Pause | None
    exclusions: tuple[ExclusionGroup, ...]
    prohibited: tuple[Purpose, ...]
    granted_count: int

    @property
    def items(self) -> list[ItemView]:
        return [item for view in self.purposes for item in view.items]

    @property
    def reconsent(self) -> list[ItemView]:
        return [item for item in self.items if item.state == PairState.RECONSENT_REQUIRED]

    @property
    def can_ask(self) -> bool:
        """Consent is asked for only where capture could lawfully happen at all."""
        return (
            self.employee.status == EmployeeStatus.ACTIVE
            and self.region.is_open
            and self.notice is not None
            and any(item.available for item in self.items)
        )


def place_name(employee: Employee) -> str:
    country = country_name(employee.country) or employee.country
    if employee.subdivision:
        return f"{subdivision_name(employee.subdivision) or employee.subdivision}, {country}"
    return country


def _exclusion_groups() -> tuple[ExclusionGroup, ...]:
    names = dict(DataCategory.objects.values_list("slug", "name"))
    grouped: dict[str, list[str]] = defaultdict(list)
    for exclusion in ContextExclusion.objects.order_by("label"):
        label = exclusion.label
        if exclusion.categories:
            label += " (no " + ", ".join(names.get(slug, slug).lower() for slug in exclusion.categories) + ")"
        grouped[exclusion.get_reason_display()].append(label)
    return tuple(ExclusionGroup(reason=reason, labels=tuple(labels)) for reason, labels in sorted(grouped.items()))


def active_pause(*, employee: Employee, at: datetime) -> Pause | None:
    return (
        Pause.objects.filter(employee=employee, resumed_at__isnull=True, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def portal_overview(*, employee: Employee, at: datetime) -> PortalOverview:
    """Everything the employee's landing page shows, computed at ``at`` from ``consent_overview``."""
    base = consent_overview(employee=employee, at=at)
    standing = base.region
    codes = region_chain(country=employee.country, subdivision=employee.subdivision)
    in_force = rule_for_employee(employee=employee, at=at)
    caps = in_force.max_retention_days if in_force else {}
    preconditions = tuple(
        PortalPrecondition(
            type=p.type,
            label=p.label,
            met=p.met,
            by_employee=p.type in ACKNOWLEDGEMENT_PRECONDITIONS,
            biometric_only=p.type in BIOMETRIC_PRECONDITIONS,
        )
        for p in standing.preconditions
    )
    release_missing = any(p.biometric_only and not p.met for p in preconditions)
    categories = {category.slug: category for category in DataCategory.objects.all()}
    by_purpose: dict[str, list[ItemView]] = defaultdict(list)
    for pair in base.items:
        category = categories.get(pair.category)
        if category is None:
            continue
        by_purpose[pair.purpose].append(
            ItemView(
                purpose=pair.purpose,
                category=category,
                description=pair.description or category.description,
                state=pair.state,
                since=pair.since,
                retention=retention_for(codes=codes, purpose=pair.purpose, category=pair.category),
                retention_cap_days=caps.get(pair.category),
                needs_biometric_release=release_missing and category.biometric,
            )
        )
    purposes = tuple(
        PurposeView(purpose=purpose, items=tuple(by_purpose[purpose.slug]))
        for purpose in Purpose.objects.filter(slug__in=by_purpose).order_by("name")
    )
    return PortalOverview(
        employee=employee,
        at=at,
        region=PortalRegion(standing=standing, place=place_name(employee), preconditions=preconditions),
        notice=base.notice,
        purposes=purposes,
        acknowledged=base.acknowledged,
        pause=active_pause(employee=employee, at=at),
        exclusions=_exclusion_groups(),
        prohibited=tuple(Purpose.objects.filter(prohibited=True).order_by("name")),
        granted_count=ConsentState.objects.filter(employee=employee, state=ConsentEventKind.GRANTED).count(),
    )


# History ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    kind: str  # granted, withdrawn, expired, acknowledged, paused, resumed
    title: str
    detail: str
    receipt_id: str = ""
    # For receipts: whether a signed checkpoint covers its audit entry yet (None: no receipt).
    proven: bool | None = None


def consent_history(*, employee: Employee) -> list[HistoryEntry]:
    """The employee's own consent events, acknowledgements and pauses, newest first."""
    names = dict(DataCategory.objects.values_list("slug", "name"))
    purposes = dict(Purpose.objects.values_list("slug", "name"))
    verbs: dict[str, str] = {
        ConsentEventKind.GRANTED: "You opted in",
        ConsentEventKind.WITHDRAWN: "You withdrew",
        ConsentEventKind.EXPIRED: "Consent expired",
    }
    checkpoint = latest_checkpoint()
    covered = checkpoint.size if checkpoint else 0
    entries = [
        HistoryEntry(
            at=event.at,
            kind=event.kind,
            title=f"{verbs[event.kind]}: {names.get(event.category_id, event.category_id)}",
            detail=f"For {purposes.get(event.purpose_id, event.purpose_id)}, under notice version "
            f"{event.notice.version}, via {event.get_channel_display().lower()}.",
            # Grants and withdrawals carry a signed receipt; an expiry is the system's, not a choice.
            receipt_id=event.receipt_id if event.kind != ConsentEventKind.EXPIRED else "",
            proven=event.receipt.audit_seq <= covered if hasattr(event, "receipt") else None,
        )
        for event in ConsentEvent.objects.filter(employee=employee).select_related("notice", "receipt")
    ]
    entries += [
        HistoryEntry(
            at=ack.at,
            kind="acknowledged",
            title="You acknowledged the monitoring notice",
            detail=f"Notice version {ack.notice.version}.",
        )
        for ack in NoticeAcknowledgement.objects.filter(employee=employee).select_related("notice")
    ]
    for pause in Pause.objects.filter(employee=employee):
        entries.append(
            HistoryEntry(
                at=pause.starts_at,
                kind="paused",
                title="You paused capture",
                detail=f"Until {pause.ends_at:%Y-%m-%d %H:%M} UTC.",
            )
        )
        if pause.resumed_at and pause.resumed_at < pause.ends_at:
            entries.append(HistoryEntry(at=pause.resumed_at, kind="resumed", title="You resumed capture", detail=""))
    return sorted(entries, key=lambda entry: entry.at, reverse=True)


# Aggregates (Principle 4: groups of at least k people, never individuals) -------------


@dataclass(frozen=True, slots=True)
class GroupRate:
    group: str
    # None when the group is smaller than k: its size and rate stay hidden.
    people: int | None
    opted_in: int | None

    @property
    def shown(self) -> bool:
        return self.people is not None

    @property
    def percent(self) -> int | None:
        if not self.people:
            return None
        return round(100 * (self.opted_in or 0) / self.people)


def opt_in_rates(*, purpose: str, k: int, by: str, at: datetime) -> list[GroupRate]:
    """Share of active employees per department or region with any consent in force for ``purpose``.

    Groups of fewer than ``k`` people are reported without their size or rate,
    so nobody can read an individual's choice off a small group.
    """
    if by not in ("department", "region"):
        raise ValueError(f"cannot group by {by!r}")
    in_force = Q(
        consent_states__purpose_id=purpose,
        consent_states__state=ConsentEventKind.GRANTED,
        consent_states__expires_at__gt=at,
    )
    fields = ("department",) if by == "department" else ("country", "subdivision")
    rows = (
        Employee.objects.filter(status=EmployeeStatus.ACTIVE)
        .values(*fields)
        .annotate(people=Count("pk", distinct=True), opted_in=Count("pk", filter=in_force, distinct=True))
        .order_by(*fields)
    )
    rates = []
    for row in rows:
        name = (row["department"] or "(no department)") if by == "department" else row["subdivision"] or row["country"]
        if row["people"] >= k:
            rates.append(GroupRate(group=name, people=row["people"], opted_in=row["opted_in"]))
        else:
            rates.append(GroupRate(group=name, people=None, opted_in=None))
    return sorted(rates, key=lambda rate: rate.group)

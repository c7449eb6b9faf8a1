"""Reads of consent: where an employee stands, their history, and k-anonymous aggregates.

``consent_overview`` is what the employee portal shows: the region status in
plain words, the notice per purpose and category, and each pair's state
(the states of API.md's ``GET /me/consent``). It never decides capture: the
decision engine does; this only explains, and it errs on the side of "not
available" exactly where the engine would deny.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q

from consent.models import ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause
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
    effective_rule,
    instruments_covering,
    region_chain,
    retention_for,
)
from people.iso3166 import country_name, subdivision_name
from people.models import Employee, EmployeeStatus


class ItemState:
    """Where one purpose × category pair stands for the employee (API.md states)."""

    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    NOT_ASKED = "not_asked"
    RECONSENT_REQUIRED = "reconsent_required"
    UNAVAILABLE_IN_REGION = "unavailable_in_region"

    LABELS = {
        GRANTED: "On",
        WITHDRAWN: "Off (withdrawn)",
        EXPIRED: "Off (expired)",
        NOT_ASKED: "Off (not asked yet)",
        RECONSENT_REQUIRED: "Off until you decide again",
        UNAVAILABLE_IN_REGION: "Not available where you work",
    }


REGION_OPEN = (RuleStatus.ALLOW, RuleStatus.CONDITIONAL)
# The monitoring-notice preconditions the employee meets by acknowledging the
# current notice; NOTICE_ACKNOWLEDGEMENT_ONCE is met by any acknowledgement.
_CURRENT_NOTICE_ACKS = ACKNOWLEDGEMENT_PRECONDITIONS - {PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE}


@dataclass(frozen=True, slots=True)
class PreconditionStanding:
    type: str
    label: str
    met: bool
    # The employee can meet it here (by acknowledging the notice); others are the employer's.
    by_employee: bool
    # Applies only to biometric categories (a per-employee written release).
    biometric_only: bool


@dataclass(frozen=True, slots=True)
class RegionStanding:
    code: str
    place: str
    status: str  # allow, conditional, block or unknown
    rule: JurisdictionRule | None
    preconditions: tuple[PreconditionStanding, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in REGION_OPEN

    @property
    def missing_employer_preconditions(self) -> list[PreconditionStanding]:
        return [p for p in self.preconditions if not p.met and not p.by_employee and not p.biometric_only]

    @property
    def acknowledgement_needed(self) -> bool:
        return any(not p.met and p.by_employee for p in self.preconditions)

    @property
    def blocked_categories(self) -> frozenset[str]:
        return frozenset(self.rule.blocked_categories) if self.rule else frozenset()


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
        return self.state == ItemState.GRANTED

    @property
    def available(self) -> bool:
        return self.state != ItemState.UNAVAILABLE_IN_REGION

    @property
    def state_label(self) -> str:
        return ItemState.LABELS[self.state]

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


def _exclusion_groups() -> tuple[ExclusionGroup, ...]:
    names = dict(DataCategory.objects.values_list("slug", "name"))
    grouped: dict[str, list[str]] = defaultdict(list)
    for exclusion in ContextExclusion.objects.order_by("label"):
        label = exclusion.label
        if exclusion.categories:
            label += " (no " + ", ".join(names.get(slug, slug).lower() for slug in exclusion.categories) + ")"
        grouped[exclusion.get_reason_display()].append(label)
    return tuple(ExclusionGroup(reason=reason, labels=tuple(labels)) for reason, labels in sorted(grouped.items()))


@dataclass(frozen=True, slots=True)
class PurposeView:
    purpose: Purpose
    items: tuple[ItemView, ...]


@dataclass(frozen=True, slots=True)
class ConsentOverview:
    employee: Employee
    at: datetime
    region: RegionStanding
    notice: Notice | None
    purposes: tuple[PurposeView, ...]
    acknowledged_at: datetime | None
    pause: Pause | None
    exclusions: tuple[ExclusionGroup, ...]
    prohibited: tuple[Purpose, ...]
    granted_count: int = 0
    reconsent: tuple[ItemView, ...] = field(default=())

    @property
    def items(self) -> list[ItemView]:
        return [item for view in self.purposes for item in view.items]

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


def _acknowledgements(employee: Employee) -> dict[int, datetime]:
    return dict(NoticeAcknowledgement.objects.filter(employee=employee).values_list("notice_id", "at"))


def region_standing(*, employee: Employee, notice: Notice | None, at: datetime) -> RegionStanding:
    """The employee's region status and each precondition, met or not, in the engine's terms."""
    codes = region_chain(country=employee.country, subdivision=employee.subdivision)
    rule = effective_rule(codes=codes, at=at)
    place = place_name(employee)
    if rule is None:
        return RegionStanding(code=employee.region_code, place=place, status="unknown", rule=None)
    acks = _acknowledgements(employee)
    instrument_kinds = {i.kind for i in instruments_covering(employee=employee, codes=codes, at=at)}
    standings = []
    for kind in rule.preconditions:
        if kind in _CURRENT_NOTICE_ACKS:
            met = notice is not None and notice.pk in acks
        elif kind == PreconditionType.NOTICE_ACKNOWLEDGEMENT_ONCE:
            met = bool(acks)
        else:
            met = kind in instrument_kinds
        standings.append(
            PreconditionStanding(
                type=kind,
                label=PreconditionType(kind).label if kind in PreconditionType.values else kind,
                met=met,
                by_employee=kind in ACKNOWLEDGEMENT_PRECONDITIONS,
                biometric_only=kind in BIOMETRIC_PRECONDITIONS,
            )
        )
    return RegionStanding(
        code=employee.region_code, place=place, status=rule.status, rule=rule, preconditions=tuple(standings)
    )


def _reconsent_pairs(*, notice: Notice, states: dict[tuple[str, str], ConsentState]) -> set[tuple[str, str]]:
    """Granted pairs that a material notice newer than their consent has changed."""
    older = {state.notice.version for state in states.values() if state.notice.version < notice.version}
    if not older:
        return set()
    touched = NoticeItem.objects.filter(
        notice__state=ApprovalState.APPROVED,
        notice__material=True,
        notice__version__gt=min(older),
        notice__version__lte=notice.version,
        requires_reconsent=True,
    ).values_list("purpose_id", "category_id", "notice__version")
    result = set()
    for purpose, category, version in touched:
        state = states.get((purpose, category))
        if state is not None and state.notice.version < version:
            result.add((purpose, category))
    return result


def _item_state(
    *, pair: tuple[str, str], state: ConsentState | None, reconsent: set, open_here: bool, blocked: frozenset, at
) -> str:
    if not open_here or pair[1] in blocked:
        return ItemState.UNAVAILABLE_IN_REGION
    if state is None:
        return ItemState.NOT_ASKED
    if state.state == ConsentEventKind.WITHDRAWN:
        return ItemState.WITHDRAWN
    if state.state == ConsentEventKind.EXPIRED or (state.expires_at is not None and state.expires_at <= at):
        return ItemState.EXPIRED
    if pair in reconsent:
        return ItemState.RECONSENT_REQUIRED
    return ItemState.GRANTED


def active_pause(*, employee: Employee, at: datetime) -> Pause | None:
    return (
        Pause.objects.filter(employee=employee, resumed_at__isnull=True, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def consent_overview(*, employee: Employee, at: datetime) -> ConsentOverview:
    """Everything the employee's landing page shows, computed at ``at``."""
    notice = current_notice(at=at)
    region = region_standing(employee=employee, notice=notice, at=at)
    states = {
        (s.purpose_id, s.category_id): s
        for s in ConsentState.objects.filter(employee=employee).select_related("notice")
    }
    reconsent = _reconsent_pairs(notice=notice, states=states) if notice else set()
    codes = region_chain(country=employee.country, subdivision=employee.subdivision)
    caps = region.rule.max_retention_days if region.rule else {}
    biometric_release_missing = any(p.biometric_only and not p.met for p in region.preconditions)
    purposes: list[PurposeView] = []
    if notice is not None:
        by_purpose: dict[str, list[ItemView]] = defaultdict(list)
        for item in notice.items.select_related("category").order_by("purpose_id", "category_id"):
            pair = (item.purpose_id, item.category_id)
            state = states.get(pair)
            by_purpose[item.purpose_id].append(
                ItemView(
                    purpose=item.purpose_id,
                    category=item.category,
                    description=item.description,
                    state=_item_state(
                        pair=pair,
                        state=state,
                        reconsent=reconsent,
                        open_here=region.is_open,
                        blocked=region.blocked_categories,
                        at=at,
                    ),
                    since=state.since if state else None,
                    retention=retention_for(codes=codes, purpose=item.purpose_id, category=item.category_id),
                    retention_cap_days=caps.get(item.category_id),
                    needs_biometric_release=biometric_release_missing and item.category.biometric,
                )
            )
        for purpose in Purpose.objects.filter(slug__in=by_purpose).order_by("name"):
            purposes.append(PurposeView(purpose=purpose, items=tuple(by_purpose[purpose.slug])))
    acks = _acknowledgements(employee)
    granted = [s for s in states.values() if s.state == ConsentEventKind.GRANTED]
    all_items = [item for view in purposes for item in view.items]
    return ConsentOverview(
        employee=employee,
        at=at,
        region=region,
        notice=notice,
        purposes=tuple(purposes),
        acknowledged_at=acks.get(notice.pk) if notice else None,
        pause=active_pause(employee=employee, at=at),
        exclusions=_exclusion_groups(),
        prohibited=tuple(Purpose.objects.filter(prohibited=True).order_by("name")),
        granted_count=len(granted),
        reconsent=tuple(item for item in all_items if item.state == ItemState.RECONSENT_REQUIRED),
    )


# History ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    kind: str  # granted, withdrawn, expired, acknowledged, paused, resumed
    title: str
    detail: str
    receipt_id: str = ""


def consent_history(*, employee: Employee) -> list[HistoryEntry]:
    """The employee's own consent events, acknowledgements and pauses, newest first."""
    names = dict(DataCategory.objects.values_list("slug", "name"))
    purposes = dict(Purpose.objects.values_list("slug", "name"))
    verbs = {
        ConsentEventKind.GRANTED: "You opted in",
        ConsentEventKind.WITHDRAWN: "You withdrew",
        ConsentEventKind.EXPIRED: "Consent expired",
    }
    entries = [
        HistoryEntry(
            at=event.at,
            kind=event.kind,
            title=f"{verbs[event.kind]}: {names.get(event.category_id, event.category_id)}",
            detail=f"For {purposes.get(event.purpose_id, event.purpose_id)}, under notice version "
            f"{event.notice.version}, via {event.get_channel_display().lower()}.",
            receipt_id=event.receipt_id,
        )
        for event in ConsentEvent.objects.filter(employee=employee).select_related("notice")
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


def event_for_receipt(*, employee: Employee, receipt_id: str) -> ConsentEvent | None:
    """The employee's own consent event behind a receipt id; None for anyone else's."""
    return ConsentEvent.objects.filter(employee=employee, receipt_id=receipt_id).select_related("notice").first()


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

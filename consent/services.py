"""State changes of consent: grants, withdrawals, expiry, acknowledgements, pauses.

Every change locks the employee's row first. That one lock makes the
per-employee version counter gapless under concurrent requests, keeps the
``ConsentState`` projection equal to a replay of the events, and orders the
audit entries the same way as the events they record.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.actors import Actor
from audit.models import EventType
from audit.services import record, record_many
from consent.models import Channel, ConsentEvent, ConsentEventKind, ConsentState, NoticeAcknowledgement, Pause
from consent.receipts import RECEIPTED_KINDS, receipt_issue
from consentry.errors import Conflict, DomainError
from consentry.outbox import ConsentRevoked, Paused, Topic, publish
from governance.models import DataCategory, Notice, Purpose, RuleStatus
from governance.selectors import current_notice, rule_for_employee
from people.locks import employee_lock
from people.models import Employee

MAX_PAUSE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Choice:
    """One opt-in or opt-out for a purpose × category pair."""

    purpose: str
    category: str
    granted: bool


def _lock_employee(employee: Employee) -> Employee:
    # The lock every service takes on the employee (people.locks says why FOR NO KEY UPDATE).
    return employee_lock(employee_id=employee.pk)


def _now_locked() -> datetime:
    """The moment of a change, taken once the employee's lock is held.

    Capture decisions take the same lock and their moment the same way, so
    timestamps order as the changes and grants commit: a grant issued before
    a withdrawal committed is dated before it (its data stays unusable after
    a re-consent), and a pause that committed first has started by the time
    a waiting decision looks. A moment taken before waiting for the lock
    could contradict that order.
    """
    return timezone.now()


def _next_version(employee: Employee) -> int:
    return (ConsentEvent.objects.filter(employee=employee).aggregate(top=Max("version"))["top"] or 0) + 1


def _new_receipt_id() -> str:
    return f"rcpt_{secrets.token_urlsafe(18)}"


_REVOKING_KINDS: dict[str, Topic] = {
    ConsentEventKind.WITHDRAWN: Topic.CONSENT_WITHDRAWN,
    ConsentEventKind.EXPIRED: Topic.CONSENT_EXPIRED,
}


def _publish_revocations(*, employee: Employee, events: Iterable[ConsentEvent]) -> None:
    """Queue one revocation per purpose and kind for the withdrawals and expiries just written.

    Same transaction as the events: the feed tells grant holders after commit,
    and a crash in between only delays it until the outbox relay runs again.
    """
    grouped: dict[tuple[str, str], list[ConsentEvent]] = {}
    for event in events:
        if event.kind in _REVOKING_KINDS:
            grouped.setdefault((event.kind, event.purpose_id), []).append(event)
    for (kind, purpose), items in sorted(grouped.items()):
        publish(
            topic=_REVOKING_KINDS[kind],
            payload=ConsentRevoked(
                employee=employee.pk,
                purpose=purpose,
                categories=sorted({item.category_id for item in items}),
                at=max(item.at for item in items),
            ),
        )


def _check_grantable(*, employee: Employee, notice: Notice, choices: list[Choice], at: datetime) -> None:
    """Refuse grants the law or the notice does not allow, listing every problem."""
    if not employee.is_active:
        raise Conflict("Only an active employee can give consent.", code="employee_inactive")
    current = current_notice(at=at)
    if current is None or current.pk != notice.pk:
        raise Conflict(
            f"Notice version {notice.version} is not the current notice"
            + (f"; read version {current.version} and try again." if current else "."),
            code="stale_notice",
        )
    grants = [choice for choice in choices if choice.granted]
    if not grants:
        return
    rule = rule_for_employee(employee=employee, at=at)
    if rule is None or rule.status == RuleStatus.BLOCK:
        raise Conflict(
            "Capture is not available where you work, so consent cannot be given here.",
            code="unavailable_in_region",
        )
    purposes = {p.slug: p for p in Purpose.objects.filter(slug__in={c.purpose for c in grants})}
    allowed = {(item.purpose_id, item.category_id) for item in notice.items.all()}
    errors: dict[str, str] = {}
    for index, choice in enumerate(grants):
        key = f"choices[{index}]"
        purpose = purposes.get(choice.purpose)
        if purpose is None:
            errors[key] = f"Unknown purpose {choice.purpose!r}."
        elif purpose.prohibited:
            errors[key] = f"{choice.purpose!r} is a prohibited purpose and can never be consented to."
        elif (choice.purpose, choice.category) not in allowed:
            errors[key] = f"{choice.category!r} is not a category the notice declares for {choice.purpose!r}."
        elif choice.category in rule.blocked_categories:
            errors[key] = f"{choice.category!r} cannot be captured in your region."
    if errors:
        codes = {"prohibited" in message for message in errors.values()}
        code = "purpose_prohibited" if codes == {True} else "invalid_choice"
        raise DomainError("Some choices cannot be granted.", code=code, errors=errors)


def _append(
    *,
    employee: Employee,
    purpose_id: str,
    category_id: str,
    kind: str,
    notice: Notice,
    channel: str,
    actor: Actor,
    at: datetime,
    expires_at: datetime | None,
    state: ConsentState | None,
) -> ConsentEvent:
    """Append one event and move the projection; the caller holds the lock and audits the events with ``_audit``."""
    event = ConsentEvent.objects.create(
        employee=employee,
        purpose_id=purpose_id,
        category_id=category_id,
        kind=kind,
        notice=notice,
        channel=channel,
        actor=actor.label,
        at=at,
        expires_at=expires_at,
        version=_next_version(employee),
        receipt_id=_new_receipt_id(),
    )
    fields = {
        "state": kind,
        "since": at,
        "notice": notice,
        "expires_at": expires_at,
        "last_event": event,
        "version": event.version,
    }
    if kind == ConsentEventKind.WITHDRAWN:
        fields["withdrawn_at"] = at
    if state is None:
        ConsentState.objects.create(employee=employee, purpose_id=purpose_id, category_id=category_id, **fields)
    else:
        for key, value in fields.items():
            setattr(state, key, value)
        state.save()
    return event


_AUDIT_TYPES = {
    ConsentEventKind.GRANTED: EventType.CONSENT_GRANTED,
    ConsentEventKind.WITHDRAWN: EventType.CONSENT_WITHDRAWN,
    ConsentEventKind.EXPIRED: EventType.CONSENT_EXPIRED,
}


def _audit(*, employee: Employee, events: list[ConsentEvent], actor: Actor) -> None:
    """Audit the events just appended, in their order, then sign their receipts.

    Last in the change on purpose: the entries go in as one batch, so the
    ledger's head lock, which every writer in the system queues on until this
    transaction commits, is taken once and as late as the receipts allow
    (they name their entries' sequence numbers and hashes).
    """
    entries = record_many(
        {
            "event_type": _AUDIT_TYPES[ConsentEventKind(event.kind)],
            "actor": actor,
            "subject": employee.hr_id,
            "object_type": "consent_event",
            "object_id": event.pk,
            "region": employee.region_code,
            "payload": {
                "purpose": event.purpose_id,
                "category": event.category_id,
                "notice_version": event.notice.version,
                "channel": event.channel,
                "version": event.version,
                "receipt_id": event.receipt_id,
                "expires_at": event.expires_at,
            },
        }
        for event in events
    )
    for event, entry in zip(events, entries, strict=True):
        if event.kind in RECEIPTED_KINDS:
            # Same transaction: an event never exists without its signed receipt.
            receipt_issue(event=event, employee=employee, ledger_entry=entry)


def consent_apply_choices(
    *,
    employee: Employee,
    notice: Notice,
    choices: Iterable[Choice],
    actor: Actor,
    channel: str = Channel.PORTAL,
    at: datetime | None = None,
) -> list[ConsentEvent]:
    """Record an employee's opt-ins and opt-outs against the notice they were shown.

    Grants are checked first, all or nothing (prohibited purposes, pairs the
    notice does not declare, blocked regions and stale notices are refused).
    A choice that does not change where a pair stands writes no event; a
    grant under a newer notice version is a new event (re-consent).
    """
    wanted = list(dict.fromkeys(choices))
    with transaction.atomic():
        employee = _lock_employee(employee)
        moment = at or _now_locked()
        _check_grantable(employee=employee, notice=notice, choices=wanted, at=moment)
        states = {
            (s.purpose_id, s.category_id): s
            for s in ConsentState.objects.select_for_update(no_key=True, of=("self",)).filter(employee=employee)
        }
        validity = dict(Purpose.objects.values_list("slug", "consent_validity_days"))
        known_categories = set(DataCategory.objects.values_list("slug", flat=True))
        events = []
        for choice in wanted:
            pair = (choice.purpose, choice.category)
            if choice.purpose not in validity or choice.category not in known_categories:
                raise DomainError(f"Unknown purpose or category {pair}.", code="invalid_choice")
            state = states.get(pair)
            active = (
                state is not None
                and state.state == ConsentEventKind.GRANTED
                and (state.expires_at is None or state.expires_at > moment)
            )
            if choice.granted and active and state is not None and state.notice_id == notice.pk:
                continue
            if not choice.granted and not active:
                continue
            kind = ConsentEventKind.GRANTED if choice.granted else ConsentEventKind.WITHDRAWN
            expires_at = moment + timedelta(days=validity[choice.purpose]) if choice.granted else None
            events.append(
                _append(
                    employee=employee,
                    purpose_id=choice.purpose,
                    category_id=choice.category,
                    kind=kind,
                    notice=notice,
                    channel=channel,
                    actor=actor,
                    at=moment,
                    expires_at=expires_at,
                    state=state,
                )
            )
            states[pair] = ConsentState.objects.get(employee=employee, purpose_id=pair[0], category_id=pair[1])
        _audit(employee=employee, events=events, actor=actor)
        _publish_revocations(employee=employee, events=events)
    return events


def consent_grant(
    *,
    employee: Employee,
    notice: Notice,
    choices: Iterable[tuple[str, str]],
    actor: Actor,
    channel: str = Channel.PORTAL,
    at: datetime | None = None,
) -> list[ConsentEvent]:
    """Opt in to the given (purpose, category) pairs under ``notice``."""
    return consent_apply_choices(
        employee=employee,
        notice=notice,
        choices=[Choice(p, c, True) for p, c in choices],
        actor=actor,
        channel=channel,
        at=at,
    )


def consent_withdraw(
    *,
    employee: Employee,
    purpose: str,
    categories: Iterable[str],
    actor: Actor,
    channel: str = Channel.PORTAL,
    at: datetime | None = None,
) -> list[ConsentEvent]:
    """Withdraw consent for some categories of a purpose; as easy as granting, always allowed."""
    return consent_withdraw_pairs(
        employee=employee, pairs=[(purpose, c) for c in categories], actor=actor, channel=channel, at=at
    )


def consent_withdraw_pairs(
    *,
    employee: Employee,
    pairs: Iterable[tuple[str, str]] | None,
    actor: Actor,
    channel: str = Channel.PORTAL,
    at: datetime | None = None,
) -> list[ConsentEvent]:
    """Withdraw the given pairs (every granted pair when ``pairs`` is None).

    Withdrawal never depends on the notice being current or the region being
    open: it is recorded against the notice the consent was given under.
    """
    wanted = None if pairs is None else set(pairs)
    with transaction.atomic():
        employee = _lock_employee(employee)
        moment = at or _now_locked()
        granted = ConsentState.objects.select_for_update(no_key=True, of=("self",)).filter(
            employee=employee, state=ConsentEventKind.GRANTED
        )
        events = []
        for state in granted.select_related("notice"):
            if wanted is not None and (state.purpose_id, state.category_id) not in wanted:
                continue
            events.append(
                _append(
                    employee=employee,
                    purpose_id=state.purpose_id,
                    category_id=state.category_id,
                    kind=ConsentEventKind.WITHDRAWN,
                    notice=state.notice,
                    channel=channel,
                    actor=actor,
                    at=moment,
                    expires_at=None,
                    state=state,
                )
            )
        _audit(employee=employee, events=events, actor=actor)
        _publish_revocations(employee=employee, events=events)
    return events


def consent_withdraw_all(
    *, employee: Employee, actor: Actor, channel: str = Channel.PORTAL, at: datetime | None = None
) -> list[ConsentEvent]:
    """One click: withdraw every consent the employee has given."""
    return consent_withdraw_pairs(employee=employee, pairs=None, actor=actor, channel=channel, at=at)


def consent_expire_due(*, at: datetime | None = None, limit: int = 1000) -> int:
    """Expire granted consents past their validity; idempotent, safe to rerun."""
    moment = at or timezone.now()
    due = (
        ConsentState.objects.filter(state=ConsentEventKind.GRANTED, expires_at__lte=moment)
        .values_list("employee_id", flat=True)
        .distinct()[:limit]
    )
    count = 0
    actor = Actor.system("expiry")
    for employee_id in list(due):
        with transaction.atomic():
            employee = employee_lock(employee_id=employee_id)
            states = ConsentState.objects.select_for_update(no_key=True, of=("self",)).filter(
                employee=employee, state=ConsentEventKind.GRANTED, expires_at__lte=moment
            )
            expired = [
                _append(
                    employee=employee,
                    purpose_id=state.purpose_id,
                    category_id=state.category_id,
                    kind=ConsentEventKind.EXPIRED,
                    notice=state.notice,
                    channel=Channel.SYSTEM,
                    actor=actor,
                    at=moment,
                    expires_at=None,
                    state=state,
                )
                for state in states.select_related("notice")
            ]
            _audit(employee=employee, events=expired, actor=actor)
            _publish_revocations(employee=employee, events=expired)
            count += len(expired)
    return count


def notice_acknowledge(
    *, employee: Employee, notice: Notice, actor: Actor, channel: str = Channel.PORTAL, at: datetime | None = None
) -> NoticeAcknowledgement:
    """Record that the employee acknowledged the current monitoring notice (idempotent)."""
    with transaction.atomic():
        employee = _lock_employee(employee)
        moment = at or _now_locked()
        current = current_notice(at=moment)
        if current is None or current.pk != notice.pk:
            raise Conflict(f"Notice version {notice.version} is not the current notice.", code="stale_notice")
        existing = NoticeAcknowledgement.objects.filter(employee=employee, notice=notice).first()
        if existing:
            return existing
        ack = NoticeAcknowledgement.objects.create(
            employee=employee, notice=notice, channel=channel, actor=actor.label, at=moment
        )
        record(
            event_type=EventType.NOTICE_ACKNOWLEDGED,
            actor=actor,
            subject=employee.hr_id,
            object_type="notice_acknowledgement",
            object_id=ack.pk,
            region=employee.region_code,
            payload={"notice_version": notice.version, "channel": channel},
        )
    return ack


def pause_start(*, employee: Employee, until: datetime, actor: Actor, at: datetime | None = None) -> Pause:
    """Pause all capture until ``until`` (at most a week); replaces any running pause."""
    asked = at or timezone.now()
    if timezone.is_naive(until):
        raise DomainError("The pause end needs a time zone.", code="invalid", errors={"until": "Naive time."})
    if not asked < until <= asked + MAX_PAUSE:
        raise DomainError(
            "A pause must end in the future and within 7 days.", code="invalid", errors={"until": "Out of range."}
        )
    with transaction.atomic():
        employee = _lock_employee(employee)
        moment = at or _now_locked()
        if not moment < until:
            raise DomainError("A pause must end in the future.", code="invalid", errors={"until": "Out of range."})
        Pause.objects.filter(employee=employee, resumed_at__isnull=True, ends_at__gt=moment).update(resumed_at=moment)
        pause = Pause.objects.create(employee=employee, starts_at=moment, ends_at=until, actor=actor.label)
        record(
            event_type=EventType.CAPTURE_PAUSED,
            actor=actor,
            subject=employee.hr_id,
            object_type="pause",
            object_id=pause.pk,
            region=employee.region_code,
            payload={"until": until},
        )
        # Every purpose and category stops while paused: the feed tells devices after commit.
        publish(topic=Topic.PAUSED, payload=Paused(employee=employee.pk, at=moment, until=until))
    return pause


def pause_end(*, employee: Employee, actor: Actor, at: datetime | None = None) -> Pause | None:
    """Resume capture now; a no-op when nothing is paused."""
    with transaction.atomic():
        employee = _lock_employee(employee)
        moment = at or _now_locked()
        pause = Pause.objects.filter(
            employee=employee, resumed_at__isnull=True, starts_at__lte=moment, ends_at__gt=moment
        ).first()
        if pause is None:
            return None
        pause.resumed_at = moment
        pause.save(update_fields=["resumed_at"])
        record(
            event_type=EventType.CAPTURE_RESUMED,
            actor=actor,
            subject=employee.hr_id,
            object_type="pause",
            object_id=pause.pk,
            region=employee.region_code,
            payload={"paused_until": pause.ends_at},
        )
    return pause

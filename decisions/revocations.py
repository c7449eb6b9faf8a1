"""The revocation feed's store: outbox messages in, per-purpose pseudonymous events out (API.md, Revocations).

Services publish what a change took away (``consentry.outbox.Topic``) in the
change's own transaction. The outbox relay hands each message to
``feed_from_outbox`` below, in commit order and inside the relay's
transaction, which turns it into ``RevocationEvent`` rows:

- one event per purpose concerned, carrying that purpose's pseudonym of the
  employee (records and pipelines never see HR ids);
- a change that names no purpose (pause, termination, token revocation, a
  transfer, a rule) concerns every purpose that is not prohibited;
- a transfer or a rule approval is compared decision by decision: the feed
  evaluates the employee's capture decision under the old and the new
  location or rule and publishes the categories that were allowed before and
  are denied now (``jurisdiction_blocked`` when the region blocks or is
  unknown, ``policy_changed`` otherwise); a rule period approved to begin or
  end later is compared the same way when that moment comes, a microsecond
  before against the moment itself (``governance.services.policy_boundaries_announce``);
- a material notice change, a purpose that drops categories (or becomes
  prohibited), or a new or widened context exclusion names
  "purpose/category" pairs: every active employee whose granted consent on a
  pair predates the change gets ``policy_changed`` for those categories (for
  an exclusion: drop the grant and ask again, in whatever context the
  device is now).

Then it wakes long polls and streams: ``NOTIFY`` on PostgreSQL (delivered at
commit to every web process's listener), and the in-process signal after
commit for SQLite and the relay's own process. Reading is ``events_after``:
the head first, then the caller's events up to that head, so a reader never
skips an event that commits while it reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from consent.models import ConsentEventKind, ConsentState
from consentry.outbox import (
    ConsentRevoked,
    Delivery,
    EmployeeRevoked,
    GrantRevoked,
    KeysDestroyed,
    Location,
    PolicyChanged,
    RetiredRule,
    Topic,
    Transferred,
    consumer,
)
from decisions import engine
from decisions.feedwait import CHANNEL, ensure_listener, feed_signal, poll_interval
from decisions.models import CaptureGrant, RevocationEvent
from decisions.pseudonyms import pseudonym
from decisions.selectors import employee_facts
from decisions.snapshot import RULE_FIELDS, current_policy, engine_rule
from governance.models import JurisdictionRule, Region, RegionKind, RuleStatus
from people.models import ApiToken, Employee, EmployeeStatus, TokenKind

logger = logging.getLogger(__name__)

FEED_TOPICS = (
    Topic.CONSENT_WITHDRAWN,
    Topic.CONSENT_EXPIRED,
    Topic.PAUSED,
    Topic.EMPLOYEE_INACTIVE,
    Topic.JURISDICTION_BLOCKED,
    Topic.POLICY_CHANGED,
    Topic.GRANT_REVOKED,
    Topic.ERASURE,
    Topic.KEYS_DESTROYED,
)
CURSOR_PREFIX = "c_"
# Reason codes that make a lost category a jurisdiction matter rather than a policy change.
# The moment just before a rule period's boundary (times are stored to the microsecond).
_INSTANT = timedelta(microseconds=1)
_JURISDICTION_CODES = frozenset({engine.Code.JURISDICTION_BLOCKED, engine.Code.JURISDICTION_UNKNOWN})


class BadCursor(ValueError):
    """A cursor this feed never handed out (malformed, or ahead of the feed)."""


def format_cursor(position: int) -> str:
    return f"{CURSOR_PREFIX}{position:x}"


def parse_cursor(cursor: str) -> int:
    """The position behind an opaque cursor; ``BadCursor`` for anything else."""
    if not cursor.startswith(CURSOR_PREFIX) or not 2 < len(cursor) <= 18:
        raise BadCursor("A cursor looks like c_… and comes from this feed.")
    try:
        position = int(cursor[len(CURSOR_PREFIX) :], 16)
    except ValueError as exc:
        raise BadCursor("A cursor looks like c_… and comes from this feed.") from exc
    if position < 0 or cursor != format_cursor(position):
        raise BadCursor("A cursor looks like c_… and comes from this feed.")
    return position


def feed_head() -> int:
    """The newest event's position (0 for an empty feed): what a capture decision hands out as its cursor."""
    # Plain SQL: every capture decision reads it, and an aggregate queryset compiles slowly.
    table = connection.ops.quote_name(RevocationEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {table}")  # noqa: S608 - table name from model meta
        return cursor.fetchone()[0] or 0


# Writing: the outbox consumer ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    type: str
    employee: Employee
    purpose: str
    categories: tuple[str, ...]
    at: datetime
    grants: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@consumer(*(topic for topic in FEED_TOPICS if topic != Topic.POLICY_CHANGED))
def feed_from_outbox(message: Delivery) -> None:
    """Turn one outbox message into feed events and wake the feed's readers at commit."""
    specs = _expand(message)
    if not specs:
        return
    now = timezone.now()
    RevocationEvent.objects.bulk_create(
        [
            RevocationEvent(
                outbox_message_id=message.id,
                part=part,
                type=spec.type,
                employee=spec.employee,
                purpose=spec.purpose,
                subject=pseudonym(purpose=spec.purpose, hr_id=spec.employee.hr_id),
                categories=sorted(spec.categories),
                grants=sorted(spec.grants),
                keys=sorted(spec.keys),
                at=spec.at,
                published_at=now,
            )
            for part, spec in enumerate(specs)
        ]
    )
    _announce()


# A rule approval compares the decisions of every consenting employee of the
# region: left to the periodic relay (seconds later), never the approver's request.
consumer(Topic.POLICY_CHANGED, deferred=True)(feed_from_outbox)
# A shredding sweep publishes one message per employee per batch: relayed by the
# periodic relay, so each batch commits and moves on without waiting for the feed
# (the keys are gone at commit; the event only tells holders to drop their copies).
consumer(Topic.KEYS_DESTROYED, deferred=True)(feed_from_outbox)


def _announce() -> None:
    if connection.vendor == "postgresql":
        # Delivered at commit, once per transaction (PostgreSQL folds identical notifications).
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [CHANNEL])
    transaction.on_commit(feed_signal.bump)


def _purposes(policy: engine.Policy, employee: Employee, only: str | None = None) -> list[engine.Purpose]:
    """The purposes a change concerns: the one it names, or every grantable purpose the employee ever consented to.

    A grant needs consent, so a purpose without any consent record has no
    grant to revoke (and no data a pipeline could hold).
    """
    if only:
        known = policy.purposes.get(only)
        return [known] if known else [engine.Purpose(slug=only, categories=frozenset())]
    # consent_state_unique_pair (employee, purpose, category) serves this.
    consented = set(ConsentState.objects.filter(employee=employee).values_list("purpose_id", flat=True).distinct())
    return [
        purpose for slug, purpose in sorted(policy.purposes.items()) if slug in consented and not purpose.prohibited
    ]


def _expand(message: Delivery) -> list[_Spec]:
    payload, topic, at = message.payload, message.topic, message.at
    if isinstance(payload, PolicyChanged):
        if payload.rule is not None:
            return _rule_change(payload.rule, payload.retired, at)
        if payload.boundary is not None:
            return _rule_boundary(payload.boundary, at)
        if payload.pairs is not None:
            return _consent_no_longer_covers(payload.pairs, at, notice=payload.notice)
        return []
    if not isinstance(payload, EmployeeRevoked):
        return []
    employee = Employee.objects.filter(pk=payload.employee).first()
    if employee is None:
        logger.warning("outbox message %s names no known employee; nothing to publish", message.id)
        return []
    if isinstance(payload, GrantRevoked):
        return _token_revoked(employee, payload.token, at)
    if isinstance(payload, Transferred) and payload.to is not None:
        return _transfer(employee, payload, at)
    policy = current_policy()
    # Withdrawals, expiries and shredded keys name a purpose and categories; the rest mean all of them.
    named = payload.categories if isinstance(payload, ConsentRevoked | KeysDestroyed) else None
    only = payload.purpose if isinstance(payload, ConsentRevoked | KeysDestroyed) else None
    # keys_destroyed names the data keys that are gone.
    keys = tuple(payload.keys) if isinstance(payload, KeysDestroyed) else ()
    return [
        _Spec(topic, employee, purpose.slug, tuple(named) if named else tuple(purpose.categories), at, keys=keys)
        for purpose in _purposes(policy, employee, only)
    ]


def _token_revoked(employee: Employee, token_id: int, at: datetime) -> list[_Spec]:
    token = ApiToken.objects.filter(pk=token_id, kind=TokenKind.DEVICE).first()
    if token is None:
        return []
    grants: dict[str, list[tuple[str, list[str]]]] = {}
    # grant_expires serves this: only grants still live when the token was revoked matter.
    for grant_id, purpose, categories in CaptureGrant.objects.filter(token=token, expires_at__gt=at).values_list(
        "id", "purpose_id", "categories"
    ):
        grants.setdefault(purpose, []).append((grant_id, categories))
    return [
        _Spec(
            Topic.GRANT_REVOKED,
            employee,
            purpose,
            tuple(sorted({category for _, categories in items for category in categories})),
            at,
            grants=tuple(grant_id for grant_id, _ in items),
        )
        for purpose, items in sorted(grants.items())
    ]


def _lost(
    before: engine.Policy,
    after: engine.Policy,
    facts_before: engine.EmployeeFacts,
    facts_after: engine.EmployeeFacts,
    employee: Employee,
    at: datetime,
    *,
    was_at: datetime | None = None,
) -> list[_Spec]:
    """Categories allowed under (before, facts_before) at ``was_at`` (default ``at``) and denied under
    (after, facts_after) at ``at``, per purpose."""
    specs = []
    for purpose in _purposes(after, employee):
        request = engine.CaptureRequest(purpose=purpose.slug, categories=tuple(sorted(purpose.categories)))
        was = engine.decide_capture(before, facts_before, request, at=was_at or at)
        now = engine.decide_capture(after, facts_after, request, at=at)
        allowed_before = set(was.allowed_categories)
        lost = [result for result in now.categories if not result.allowed and result.category in allowed_before]
        if not lost:
            continue
        codes = {reason.code for result in lost for reason in result.reasons}
        kind = Topic.JURISDICTION_BLOCKED if codes & _JURISDICTION_CODES else Topic.POLICY_CHANGED
        specs.append(_Spec(kind, employee, purpose.slug, tuple(result.category for result in lost), at))
    return specs


def _transfer(employee: Employee, payload: Transferred, at: datetime) -> list[_Spec]:
    """A move: everything stops in a blocked or unknown region; elsewhere, what the new region takes away."""
    policy = current_policy()
    origin, target = payload.from_ or Location(), payload.to or Location()
    facts = employee_facts(employee=employee, at=at)
    after = replace(facts, country=target.country, subdivision=target.subdivision)
    rule = policy.rule_at(policy.chain(after.country, after.subdivision), at)
    if rule is None or rule.status == RuleStatus.BLOCK:
        return [
            _Spec(Topic.JURISDICTION_BLOCKED, employee, purpose.slug, tuple(purpose.categories), at)
            for purpose in _purposes(policy, employee)
        ]
    before = replace(facts, country=origin.country, subdivision=origin.subdivision)
    return _lost(policy, policy, before, after, employee, at)


def _rule_change(rule_id: int, retired: Iterable[RetiredRule], at: datetime) -> list[_Spec]:
    """A rule approval: compare every affected employee's decisions with and without it."""
    rule = JurisdictionRule.objects.filter(pk=rule_id).values(*RULE_FIELDS).first()
    if rule is None:
        return []
    after = current_policy()
    before = _policy_before(after, rule_id=rule["pk"], retired=retired)
    specs: list[_Spec] = []
    for employee in _employees_in(rule["region_id"]):
        facts = employee_facts(employee=employee, at=at)
        specs.extend(_lost(before, after, facts, facts, employee, at))
    return specs


def _rule_boundary(region_code: str, at: datetime) -> list[_Spec]:
    """A rule period of ``region_code`` began or ended at ``at``: compare decisions a moment before and at it."""
    policy = current_policy()
    specs: list[_Spec] = []
    for employee in _employees_in(region_code):
        facts = employee_facts(employee=employee, at=at)
        specs.extend(_lost(policy, policy, facts, facts, employee, at, was_at=at - _INSTANT))
    return specs


def _consent_no_longer_covers(pairs: Iterable[str], at: datetime, *, notice: int | None) -> list[_Spec]:
    """A material notice change or a narrowed purpose: granted consent on these "purpose/category" pairs stops counting.

    Every active employee holding such a consent, given before the change
    (and, for a notice, under an earlier version), loses those categories of
    that purpose: re-consent is needed, or the purpose no longer covers them.
    Consent given after the change, before this message was relayed, stands.
    """
    by_purpose: dict[str, set[str]] = {}
    for pair in pairs:
        purpose, _, category = pair.partition("/")
        by_purpose.setdefault(purpose, set()).add(category)
    specs: list[_Spec] = []
    for purpose, categories in sorted(by_purpose.items()):
        held: dict[int, list[str]] = {}
        rows = ConsentState.objects.filter(
            purpose_id=purpose,
            category_id__in=categories,
            state=ConsentEventKind.GRANTED,
            since__lte=at,
            employee__status=EmployeeStatus.ACTIVE,
        )
        if notice is not None:
            rows = rows.filter(notice__version__lt=notice)
        pairs_held = rows.values_list("employee_id", "category_id")
        for employee_id, category in pairs_held.order_by("employee_id", "category_id"):
            held.setdefault(employee_id, []).append(category)
        employees = Employee.objects.in_bulk(list(held))
        specs.extend(_Spec(Topic.POLICY_CHANGED, employees[pk], purpose, tuple(lost), at) for pk, lost in held.items())
    return specs


def _policy_before(policy: engine.Policy, *, rule_id: int, retired: Iterable[RetiredRule]) -> engine.Policy:
    """``policy`` as it was before approving ``rule_id``: without it, and with the rules it retired restored."""
    rules = {code: [rule for rule in items if rule.id != rule_id] for code, items in policy.rules.items()}
    previous = {item.id: item.effective_to for item in retired}
    for row in JurisdictionRule.objects.filter(pk__in=previous).values(*RULE_FIELDS):
        row["effective_to"] = previous[row["pk"]]
        kept = [rule for rule in rules.get(row["region_id"], []) if rule.id != row["pk"]]
        rules[row["region_id"]] = [*kept, engine_rule(row)]
    ordered = {
        code: tuple(sorted(items, key=lambda rule: (rule.effective_from, -rule.id), reverse=True))
        for code, items in rules.items()
    }
    return replace(policy, rules=MappingProxyType(ordered), _memo={})


def _employees_in(region_code: str) -> QuerySet[Employee]:
    """Active employees whose region chain contains ``region_code`` and who have consented to anything."""
    region = Region.objects.filter(pk=region_code).values_list("kind", flat=True).first()
    employees = Employee.objects.filter(status=EmployeeStatus.ACTIVE, consent_states__state=ConsentEventKind.GRANTED)
    if region == RegionKind.GROUP:
        members = Region.objects.get(pk=region_code).members.values_list("code", flat=True)
        employees = employees.filter(country__in=list(members))
    elif len(region_code) == 2:
        employees = employees.filter(country=region_code)
    else:
        employees = employees.filter(subdivision=region_code)
    return employees.distinct().order_by("pk")


# Reading ------------------------------------------------------------------------------


Scope = Callable[[QuerySet[RevocationEvent]], QuerySet[RevocationEvent]]


def scope_for(token: ApiToken) -> Scope:
    """What a token may read: a device its own employee's events, a pipeline its purposes' events."""
    if token.kind == TokenKind.DEVICE:
        employee_id = token.employee_id
        # token_device_bound: a device token always has its employee.
        assert employee_id is not None
        return lambda events: events.filter(employee_id=employee_id)
    if token.kind == TokenKind.PIPELINE:
        return lambda events: events.filter(purpose__in=list(token.purposes))
    return lambda events: events.none()


def events_after(*, scope: Scope, after: int, limit: int) -> tuple[list[RevocationEvent], int]:
    """The caller's events after position ``after`` (at most ``limit``) and the position to resume from.

    The head is read first and events only up to it: relays commit one after
    another in id order, so everything up to a head that is visible now is
    visible to the second query too, and resuming from the returned position
    skips nothing, even over other employees' or purposes' events.
    """
    head = feed_head()
    if after > head:
        raise BadCursor("The cursor is ahead of this feed; ask for a new capture decision and start from its cursor.")
    if after == head:
        return [], head
    events = list(scope(RevocationEvent.objects.filter(id__gt=after, id__lte=head)).order_by("id")[:limit])
    return events, events[-1].id if len(events) == limit else head


def wait_for_events(*, scope: Scope, after: int, limit: int, wait: float) -> tuple[list[RevocationEvent], int]:
    """``events_after``, waiting up to ``wait`` seconds for the first event of the caller's.

    The database connection is closed while waiting (outside a transaction),
    so a thousand waiting devices do not hold a thousand connections.
    """
    deadline = time.monotonic() + wait
    if wait > 0:
        ensure_listener()
    while True:
        seen = feed_signal.generation
        events, after = events_after(scope=scope, after=after, limit=limit)
        remaining = deadline - time.monotonic()
        if events or remaining <= 0:
            return events, after
        if not connection.in_atomic_block:
            connection.close()
        feed_signal.wait(seen, min(remaining, poll_interval()))


def event_json(event: RevocationEvent) -> dict:
    body = {
        "cursor": format_cursor(event.id),
        "type": event.type,
        "subject": event.subject,
        "categories": event.categories,
        "purpose": event.purpose,
        "at": event.at.isoformat().replace("+00:00", "Z"),
    }
    if event.grants:
        body["grants"] = event.grants
    if event.keys:
        body["keys"] = event.keys
    return body

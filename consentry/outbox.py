"""The transactional outbox: write side effects with the change, deliver them after commit.

``publish`` must run inside the caller's transaction (it refuses otherwise),
next to the state change and its audit entry. Nothing here talks to a broker,
so a broker outage cannot lose a committed message.

Delivery is the relay's job. Consumers register per topic with ``consumer``
(the revocation feed registers its topics from ``decisions``); ``relay_pending``
hands each pending message of a registered topic to its consumers inside one
transaction per batch and marks it delivered in that same transaction, so a
message is handled exactly once or, after a crash, not at all and again later.
The relay runs twice over:

- right after the publishing transaction commits (a ``transaction.on_commit``
  kick in the same process), which keeps revocations prompt (consumers
  registered ``deferred`` are skipped here: they may fan out over many rows);
- from a Celery beat task every few seconds, which catches up whatever a
  process crash between commit and kick, or a failing consumer, left behind.

Relays are serialised (an advisory lock on PostgreSQL, the write lock on
SQLite), so consumers see messages in commit order and may assign their own
monotonic sequence numbers. Topics without a registered consumer are left
untouched for whichever consumer another component adds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.chain import normalise_payload
from consentry.aftercommit import after_commit
from consentry.models import OutboxMessage

logger = logging.getLogger(__name__)

# Any number unique to this lock within the database; pg_advisory_xact_lock takes a bigint.
RELAY_LOCK_KEY = 0x636F6E736F7574  # "consout"
RELAY_BATCH = 200


class Topic(StrEnum):
    """Outbox topics. Revocation-feed topics mirror the feed's event types (API.md)."""

    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    PAUSED = "paused"
    EMPLOYEE_INACTIVE = "employee_inactive"
    JURISDICTION_BLOCKED = "jurisdiction_blocked"
    POLICY_CHANGED = "policy_changed"
    GRANT_REVOKED = "grant_revoked"
    ERASURE = "erasure"
    KEYS_DESTROYED = "keys_destroyed"


# Payloads ------------------------------------------------------------------------------
#
# Declared here, in the lowest layer, not beside their consumer: the producers
# live in people, governance, consent and decisions, and people may not import
# decisions (README, "Architecture"), so the one place every producer and the
# revocation feed can both import is consentry. Each topic has exactly one type
# (``PAYLOADS``): ``publish`` refuses any other, and the relay decodes every
# stored row into it, so a producer and its consumer cannot drift apart.
#
# Every field a producer may leave out has a default and defaults are not
# stored, so rows keep the shape they had as hand-built dicts, and rows written
# before these types existed decode unchanged (unknown keys are ignored).
# Payloads of feed topics name the employee by primary key and say what the
# change took away; the feed turns them into per-purpose pseudonymous events.


class Payload(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every outbox payload. ``at`` is when the change took effect (default: when it was queued)."""

    at: datetime | None = None


class EmployeeRevoked(Payload, frozen=True, kw_only=True, omit_defaults=True):
    """``employee_inactive``, ``erasure``: every purpose and category of the employee."""

    employee: int


class ConsentRevoked(EmployeeRevoked, frozen=True, kw_only=True, omit_defaults=True):
    """``consent_withdrawn``, ``consent_expired``: these categories of this purpose."""

    purpose: str
    categories: list[str]


class Paused(EmployeeRevoked, frozen=True, kw_only=True, omit_defaults=True):
    """``paused``: every purpose and category, until the pause ends (``None``: until resumed)."""

    until: datetime | None = None


class Location(msgspec.Struct, frozen=True, kw_only=True):
    country: str = ""
    subdivision: str = ""


class Transferred(EmployeeRevoked, frozen=True, kw_only=True, omit_defaults=True):
    """``jurisdiction_blocked``: the employee's work location moved ``from`` one place ``to`` another."""

    from_: Location | None = msgspec.field(default=None, name="from")
    to: Location | None = None


class GrantRevoked(EmployeeRevoked, frozen=True, kw_only=True, omit_defaults=True):
    """``grant_revoked``: the device token revoked, and with it every grant issued to it."""

    token: int


class KeysDestroyed(EmployeeRevoked, frozen=True, kw_only=True, omit_defaults=True):
    """``keys_destroyed``: these data keys are gone (``purpose`` left out: every purpose)."""

    categories: list[str]
    keys: list[str]
    reason: str = ""
    purpose: str | None = None


class RetiredRule(msgspec.Struct, frozen=True, kw_only=True):
    """A rule an approval retired, as it stood before (its ``effective_to`` then)."""

    id: int
    effective_to: datetime | None = None


class PolicyChanged(Payload, frozen=True, kw_only=True, omit_defaults=True):
    """``policy_changed``, one of:

    - a rule approval: ``rule`` (its region ``region``) and the ``retired`` rules;
    - a rule period that began or ended: ``boundary`` (the region) at ``at``;
    - consent on ``pairs`` ("purpose/category") no longer counts: a material
      notice change (``notice``: its version), a narrowed purpose
      (``purpose_changed``) or a new or widened ``exclusion`` ("kind:pattern").
    """

    rule: int | None = None
    region: str | None = None
    retired: list[RetiredRule] = []
    boundary: str | None = None
    pairs: list[str] | None = None
    notice: int | None = None
    purpose_changed: str | None = None
    exclusion: str | None = None


PAYLOADS: dict[str, type[Payload]] = {
    Topic.CONSENT_WITHDRAWN: ConsentRevoked,
    Topic.CONSENT_EXPIRED: ConsentRevoked,
    Topic.PAUSED: Paused,
    Topic.EMPLOYEE_INACTIVE: EmployeeRevoked,
    Topic.JURISDICTION_BLOCKED: Transferred,
    Topic.POLICY_CHANGED: PolicyChanged,
    Topic.GRANT_REVOKED: GrantRevoked,
    Topic.ERASURE: EmployeeRevoked,
    Topic.KEYS_DESTROYED: KeysDestroyed,
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stored message as a consumer receives it: its payload decoded into the topic's type."""

    id: int
    topic: str
    payload: Payload
    created_at: datetime

    @property
    def at(self) -> datetime:
        """When the change took effect: the payload's ``at``, else when the message was queued."""
        return self.payload.at or self.created_at


def decode(message: OutboxMessage) -> Delivery:
    """``message`` with its stored JSON decoded into its topic's payload type; ``ValueError`` if it does not fit."""
    kind = PAYLOADS.get(message.topic)
    if kind is None:
        raise ValueError(f"{message.topic!r} is not an outbox topic")
    try:
        payload = msgspec.convert(message.payload, kind)
    except msgspec.ValidationError as exc:
        raise ValueError(f"outbox message {message.pk} ({message.topic}) does not fit {kind.__name__}: {exc}") from exc
    return Delivery(id=message.pk, topic=message.topic, payload=payload, created_at=message.created_at)


Consumer = Callable[[Delivery], None]
_consumers: dict[str, list[Consumer]] = {}
# Topics whose consumers may take long (they fan out over many rows): left to
# the periodic relay, so the request that published them is not kept waiting.
_deferred: set[str] = set()


def consumer(*topics: str, deferred: bool = False) -> Callable[[Consumer], Consumer]:
    """Register a function that handles messages of ``topics`` inside the relay's transaction.

    A consumer must be deterministic about what it writes for a message: the
    relay may hand it the same message again if the batch rolled back.
    ``deferred`` consumers run only from the periodic relay, never in the
    after-commit kick of the request that published.
    """
    unknown = sorted(set(topics) - PAYLOADS.keys())
    if unknown:
        raise ValueError(f"no payload type is declared for outbox topics {unknown}")

    def register(handler: Consumer) -> Consumer:
        if deferred:
            _deferred.update(topics)
        for topic in topics:
            handlers = _consumers.setdefault(topic, [])
            if handler not in handlers:
                handlers.append(handler)
        return handler

    return register


def publish(*, topic: str, payload: Payload) -> OutboxMessage:
    """Queue a message in the current transaction; it exists only if the change commits.

    ``payload`` must be exactly the type ``PAYLOADS`` declares for ``topic``:
    anything else is refused before a row is written.
    """
    kind = PAYLOADS.get(topic)
    if kind is None:
        raise ValueError(f"{topic!r} is not an outbox topic; declare its payload type in PAYLOADS")
    if type(payload) is not kind:
        raise TypeError(f"a {topic} message carries a {kind.__name__}, not {type(payload).__name__}")
    if not connection.in_atomic_block:
        raise RuntimeError("outbox.publish must run inside the transaction of the change it follows")
    # Datetimes stay objects here so they are written as every stored payload writes them.
    stored = normalise_payload(msgspec.to_builtins(payload, builtin_types=(datetime,)))
    message = OutboxMessage.objects.create(topic=topic, payload=stored)
    # A kick per message: the first relays them all, the others find nothing pending.
    after_commit(_kick, what="outbox relay")
    return message


def _kick() -> None:
    try:
        relay_pending(prompt_only=True)
    except DatabaseError:
        # The beat task delivers it; the change itself is committed and safe.
        logger.exception("outbox relay after commit failed; the periodic relay will deliver")


def _lock_relay() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RELAY_LOCK_KEY])
    # SQLite: the project opens every transaction IMMEDIATE, which takes the write lock.


def relay_pending(*, limit: int = RELAY_BATCH, max_batches: int = 50, prompt_only: bool = False) -> int:
    """Deliver pending messages of registered topics to their consumers; returns how many.

    Each message runs in a savepoint: a consumer that fails leaves its message
    pending (with the error and an attempt count) without holding up the rest.
    Idempotent and safe to run from any number of processes at once.
    ``prompt_only`` leaves deferred topics to the periodic relay.
    """
    topics = sorted(topic for topic in _consumers if not (prompt_only and topic in _deferred))
    if not topics:
        return 0
    delivered = 0
    for _ in range(max_batches):
        with transaction.atomic():
            _lock_relay()
            pending = OutboxMessage.objects.filter(delivered_at__isnull=True, topic__in=topics)
            batch = list(pending.order_by("id")[:limit])
            now = timezone.now()
            for message in batch:
                try:
                    with transaction.atomic():
                        delivery = decode(message)
                        for handler in _consumers.get(message.topic, ()):
                            handler(delivery)
                        OutboxMessage.objects.filter(pk=message.pk).update(
                            delivered_at=now, attempts=message.attempts + 1
                        )
                    delivered += 1
                except Exception as exc:
                    logger.exception("outbox consumer failed for message %s (%s)", message.pk, message.topic)
                    OutboxMessage.objects.filter(pk=message.pk).update(
                        attempts=message.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
                    )
        if len(batch) < limit:
            break
    return delivered

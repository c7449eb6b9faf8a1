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
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.chain import normalise_payload
from consentry.aftercommit import after_commit
from consentry.models import OutboxMessage

logger = logging.getLogger(__name__)

# Any number unique to this lock within the database; pg_advisory_xact_lock takes a bigint.
RELAY_LOCK_KEY = 0x636F6E736F7574  # "consout"
RELAY_BATCH = 200


class Topic:
    """Outbox topics. Revocation-feed topics mirror the feed's event types (API.md).

    Payloads of feed topics name the employee by primary key and say what the
    change took away; the feed turns them into per-purpose pseudonymous events:

    - ``{"employee": pk, "purpose": slug, "categories": [slugs], "at": time}``
      (withdrawal, expiry; ``purpose`` and ``categories`` may be left out to
      mean every purpose and every category, as for a pause or termination);
    - ``jurisdiction_blocked`` from a transfer adds ``"from"`` and ``"to"``
      locations; ``policy_changed`` from a rule approval names ``"rule"`` and
      the ``"retired"`` rules instead of an employee; a material notice
      change (``"notice"``: version) or a narrowed purpose
      (``"purpose_changed"``) names the ``"pairs"`` ("purpose/category")
      whose granted consent no longer counts;
    - ``grant_revoked`` names the revoked device ``"token"``.
    """

    CONSENT_WITHDRAWN = "consent_withdrawn"
    CONSENT_EXPIRED = "consent_expired"
    PAUSED = "paused"
    EMPLOYEE_INACTIVE = "employee_inactive"
    JURISDICTION_BLOCKED = "jurisdiction_blocked"
    POLICY_CHANGED = "policy_changed"
    GRANT_REVOKED = "grant_revoked"
    ERASURE = "erasure"
    KEYS_DESTROYED = "keys_destroyed"


Consumer = Callable[[OutboxMessage], None]
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

    def register(handler: Consumer) -> Consumer:
        if deferred:
            _deferred.update(topics)
        for topic in topics:
            handlers = _consumers.setdefault(topic, [])
            if handler not in handlers:
                handlers.append(handler)
        return handler

    return register


def publish(*, topic: str, payload: dict[str, Any] | None = None) -> OutboxMessage:
    """Queue a message in the current transaction; it exists only if the change commits."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox.publish must run inside the transaction of the change it follows")
    message = OutboxMessage.objects.create(topic=topic, payload=normalise_payload(payload))
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
                        for handler in _consumers.get(message.topic, ()):
                            handler(message)
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

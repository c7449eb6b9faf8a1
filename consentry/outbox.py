"""The transactional outbox: write side effects with the change, deliver them after commit.

``publish`` must run inside the caller's transaction (it refuses otherwise),
next to the state change and its audit entry. Delivery is the relay's job
(see the revocation feed and the Celery tasks that consume topics); nothing
here talks to a broker, so a broker outage cannot lose a committed message.
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from audit.chain import normalise_payload
from consentry.models import OutboxMessage


class Topic:
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


def publish(*, topic: str, payload: dict[str, Any] | None = None) -> OutboxMessage:
    """Queue a message in the current transaction; it exists only if the change commits."""
    if not connection.in_atomic_block:
        raise RuntimeError("outbox.publish must run inside the transaction of the change it follows")
    return OutboxMessage.objects.create(topic=topic, payload=normalise_payload(payload))

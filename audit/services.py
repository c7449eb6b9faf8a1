"""Writing to the ledger. ``record`` is the only way an entry is created."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.chain import GENESIS_HASH, entry_hash, format_time, normalise_payload
from audit.models import AuditEntry, AuditHead, EventType

_VALID_TYPES = frozenset(EventType.values)


def _locked_head() -> AuditHead:
    """Lock the chain head, creating it (race-free) if a table reset removed it."""
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def record(
    *,
    event_type: str,
    actor: Actor,
    subject: str = "",
    object_type: str = "",
    object_id: str | int = "",
    region: str = "",
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Append one entry to the chain, in the caller's transaction.

    Services call this inside their ``transaction.atomic`` block, next to the
    change it records: if the append fails, the change rolls back with it.
    The head row lock makes sequence numbers gapless and the chain unforked
    under concurrent writers (on PostgreSQL; SQLite serialises writers anyway).
    """
    if event_type not in _VALID_TYPES:
        raise ValueError(f"unknown audit event type {event_type!r}")
    body = normalise_payload(payload)
    moment = at or timezone.now()
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        content = {
            "seq": head.seq + 1,
            "at": format_time(moment),
            "event_type": str(event_type),
            "actor": actor.label,
            "subject": subject,
            "object_type": object_type,
            "object_id": str(object_id),
            "region": region,
            "payload": body,
            "prev_hash": head.hash,
        }
        digest = entry_hash(content)
        entry = AuditEntry.objects.create(
            seq=content["seq"],
            at=moment,
            event_type=content["event_type"],
            actor=content["actor"],
            subject=subject,
            object_type=object_type,
            object_id=content["object_id"],
            region=region,
            payload=body,
            prev_hash=head.hash,
            hash=digest,
        )
        AuditHead.objects.filter(pk=1).update(seq=entry.seq, hash=digest)
    return entry

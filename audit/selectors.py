"""Reads of the ledger: auditor search, checkpoints, exports, the last verification run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from audit.access import AuditAccess
from audit.chain import format_time
from audit.models import AuditCheckpoint, AuditEntry, AuditExport, AuditHead, AuditQueuedEntry, EventType
from audit.statements import audit_public_key, signature_valid

# Entries an employee holds a signed receipt for: the next checkpoint tick
# signs over them at once, so the receipt's inclusion proof follows within a
# poll interval. Ticks come at most once per poll, which batches a burst of
# consent changes into one checkpoint.
PROMPTLY_CHECKPOINTED = (EventType.CONSENT_GRANTED, EventType.CONSENT_WITHDRAWN)


@dataclass(frozen=True, slots=True)
class EntryFilters:
    """An auditor's search: half-open time range [since, until), event types, actor label, subject."""

    since: datetime | None = None
    until: datetime | None = None
    event_types: tuple[str, ...] = field(default_factory=tuple)
    actor: str = ""
    subject: str = ""

    @property
    def empty(self) -> bool:
        return not (self.since or self.until or self.event_types or self.actor or self.subject)

    def condition(self) -> Q:
        condition = Q()
        if self.since:
            condition &= Q(at__gte=self.since)
        if self.until:
            condition &= Q(at__lt=self.until)
        if self.event_types:
            condition &= Q(event_type__in=self.event_types)
        if self.actor:
            condition &= Q(actor=self.actor)
        if self.subject:
            condition &= Q(subject=self.subject)
        return condition

    def as_json(self) -> dict[str, Any]:
        return {
            "since": format_time(self.since) if self.since else None,
            "until": format_time(self.until) if self.until else None,
            "event_types": list(self.event_types),
            "actor": self.actor,
            "subject": self.subject,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EntryFilters:
        return cls(
            since=parse_datetime(data["since"]) if data.get("since") else None,
            until=parse_datetime(data["until"]) if data.get("until") else None,
            event_types=tuple(data.get("event_types") or ()),
            actor=data.get("actor") or "",
            subject=data.get("subject") or "",
        )


def entries_visible(*, access: AuditAccess, filters: EntryFilters | None = None) -> QuerySet[AuditEntry]:
    """Entries the access may read that match the filters, in ledger order."""
    entries = AuditEntry.objects.filter(access.entries())
    if filters is not None:
        entries = entries.filter(filters.condition())
    return entries.order_by("seq")


def entry_visible(*, access: AuditAccess, seq: int) -> AuditEntry | None:
    return entries_visible(access=access).filter(seq=seq).first()


def latest_checkpoint() -> AuditCheckpoint | None:
    return AuditCheckpoint.objects.order_by("-number").first()


def checkpoints() -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.order_by("number")


def checkpoint_signature_valid(checkpoint: AuditCheckpoint) -> bool:
    """Whether a stored checkpoint's signature verifies with the audit key its kid names."""
    return signature_valid(checkpoint.record().statement(), checkpoint.signature, audit_public_key(checkpoint.kid))


@dataclass(frozen=True, slots=True)
class VerificationRun:
    """One run of the live ledger verification, as its own audit entry tells it."""

    seq: int
    at: datetime
    actor: str
    ok: bool
    entries: int
    checkpoints: int
    problems: tuple[str, ...]

    @property
    def first_problem(self) -> str:
        return self.problems[0] if self.problems else ""

    @property
    def first_bad_entry(self) -> int | None:
        """The entry number the first problem names, if it names one (``entry #12: ...``)."""
        match = _ENTRY_PROBLEM.match(self.first_problem)
        return int(match.group(1)) if match else None


# How consentry_client.verify.Finding writes a problem located at an entry.
_ENTRY_PROBLEM = re.compile(r"entry #(\d+):")
VERIFICATION_EVENTS = (EventType.AUDIT_VERIFIED, EventType.AUDIT_VERIFICATION_FAILED)


def last_verification() -> VerificationRun | None:
    """The latest live verification, read from the entry ``ledger_verify`` appends after each run.

    The outcome is on the ledger already, so it is not kept anywhere else.
    It names no person or region: every auditor may read it, whatever their scope.
    """
    entry = AuditEntry.objects.filter(event_type__in=VERIFICATION_EVENTS).order_by("-seq").first()
    if entry is None:
        return None
    payload = entry.payload if isinstance(entry.payload, dict) else {}
    problems = payload.get("problems") or []
    return VerificationRun(
        seq=entry.seq,
        at=entry.at,
        actor=entry.actor,
        ok=entry.event_type == EventType.AUDIT_VERIFIED,
        entries=int(payload.get("entries") or 0),
        checkpoints=int(payload.get("checkpoints") or 0),
        problems=tuple(str(problem) for problem in problems if problem),
    )


def exports_of(*, user: Any) -> QuerySet[AuditExport]:
    """An auditor sees only the exports they asked for: each holds their scope's entries."""
    return AuditExport.objects.filter(requested_by=user).order_by("-requested_at")


@dataclass(frozen=True)
class QueueStatus:
    """Entries committed through ``record_queued`` and not yet chained."""

    count: int
    oldest_at: datetime | None
    # Beat seals every second: an entry waiting this long means no worker or no beat.
    stalled: bool


QUEUE_STALLED_AFTER = timedelta(minutes=5)


def queue_status(*, now: datetime) -> QueueStatus:
    """How many queued entries wait for the sealer, and whether it seems to have stopped."""
    count = AuditQueuedEntry.objects.count()
    oldest = AuditQueuedEntry.objects.order_by("pk").values_list("at", flat=True).first() if count else None
    # ``at`` is when the event happened, shortly before it was queued: a safe upper bound on the wait.
    return QueueStatus(count=count, oldest_at=oldest, stalled=oldest is not None and now - oldest > QUEUE_STALLED_AFTER)


def checkpoint_due(*, now: datetime) -> bool:
    """Enough uncovered entries, or an uncovered entry old enough: time to sign a checkpoint."""
    size = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    covered = AuditCheckpoint.objects.order_by("-number").values_list("size", flat=True).first() or 0
    if size <= covered:
        return False
    if size - covered >= settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES:
        return True
    if AuditEntry.objects.filter(seq__gt=covered, event_type__in=PROMPTLY_CHECKPOINTED).exists():
        return True
    oldest = AuditEntry.objects.filter(seq=covered + 1).values_list("at", flat=True).first()
    return oldest is None or now - oldest >= timedelta(minutes=settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES)


def checkpoint_expected_by(*, event_type: str, at: datetime) -> datetime:
    """When the checkpoint tick should have signed over an entry of this type written at ``at``.

    An upper bound while the beat runs: a receipt's entry makes the very next
    tick sign, any other entry waits at most the age limit and one more tick.
    """
    poll = timedelta(seconds=settings.CONSENTRY_CHECKPOINT_POLL_SECONDS)
    if event_type in PROMPTLY_CHECKPOINTED:
        return at + poll
    return at + timedelta(minutes=settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES) + poll

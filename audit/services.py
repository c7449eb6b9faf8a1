"""Writing to the ledger: ``record`` and ``record_queued`` are the only ways an entry is created.

``record`` chains the entry at once, in the caller's transaction, under the
chain head's lock. ``record_queued`` commits it to a queue instead, without
the lock, and ``queue_seal`` chains queued entries in batches through the
same append code: the way in for high-volume events.

Also here: signing checkpoints, the daily verification that audits its own
result, and auditors' export jobs (each request and completion audited).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from contextlib import closing
from datetime import datetime
from functools import partial
from typing import Any, cast

from consentry_client.verify import Result, Walk, not_intact, walk_all
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audit.access import AuditAccess
from audit.actors import Actor
from audit.bundle import write_bundle
from audit.chain import GENESIS_HASH, canonical_json, entry_hash, format_time, normalise_payload
from audit.merkle import Frontier
from audit.models import (
    TREE_NODE_LEVEL,
    AuditCheckpoint,
    AuditEntry,
    AuditExport,
    AuditHead,
    AuditQueuedEntry,
    AuditTreeNode,
    EventType,
    ExportFormat,
    ExportStatus,
)
from audit.selectors import EntryFilters
from audit.statements import Statement, audit_public_keys, current_kid, sign
from audit.verifiers import stored_entries, summary, verify_live
from consentry.aftercommit import after_commit
from consentry.errors import DomainError, Forbidden

logger = logging.getLogger(__name__)
_VALID_TYPES = frozenset(EventType.values)
FINISHED = (ExportStatus.DONE, ExportStatus.FAILED)
EXPORTER = Actor.system("audit-export")


# Appends run under the chain head's row lock, which every writer waits for, so
# each round trip saved there is throughput gained for all of them
# (docs/benchmarks.md). On PostgreSQL an append, or a whole batch, is one call
# to a function (migrations 0005, 0006); elsewhere it is these three plain
# statements, once per batch.
_LOCK_HEAD = "SELECT seq, hash FROM audit_audithead WHERE id = 1"
_INSERT_ENTRY = (
    "INSERT INTO audit_auditentry (seq, at, event_type, actor, subject, object_type, object_id, region, payload,"
    " prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_MOVE_HEAD = "UPDATE audit_audithead SET seq = %s, hash = %s WHERE id = 1"


def _locked_head(cursor: Any) -> tuple[int, str]:
    """Lock the chain head and read it, creating it (race-free) if a table reset removed it."""
    lock = f"{_LOCK_HEAD} FOR UPDATE" if connection.features.has_select_for_update else _LOCK_HEAD
    cursor.execute(lock)
    row = cursor.fetchone()
    if row is None:
        AuditHead.objects.bulk_create([AuditHead(pk=1, seq=0, hash=GENESIS_HASH)], ignore_conflicts=True)
        cursor.execute(lock)
        row = cursor.fetchone()
    return row


def _content_row(entry: AuditEntry) -> tuple[Any, ...]:
    """The entry's ``CONTENT_FIELDS`` as statement parameters."""
    return (
        connection.ops.adapt_datetimefield_value(entry.at),
        entry.event_type,
        entry.actor,
        entry.subject,
        entry.object_type,
        entry.object_id,
        entry.region,
        connection.ops.adapt_json_value(entry.payload, None),
    )


def _insert_row(entry: AuditEntry) -> tuple[Any, ...]:
    return (entry.seq, *_content_row(entry), entry.prev_hash, entry.hash)


def _append_plain(cursor: Any, entries: list[AuditEntry]) -> None:
    """Any database: read the locked head, insert the entries, move the head (three statements for a batch)."""
    seq, previous = _locked_head(cursor)
    for entry in entries:
        seq += 1
        entry.seq, entry.prev_hash = seq, previous
        entry.hash = previous = entry_hash(entry.content())
    cursor.executemany(_INSERT_ENTRY, [_insert_row(entry) for entry in entries])
    cursor.execute(_MOVE_HEAD, (seq, previous))


_SEQ_KEY = ',"seq":'
_PREV_KEY = '"prev_hash":"'


def _text_pieces(entry: AuditEntry) -> tuple[str, str, str]:
    """The entry's canonical text in three pieces around ``prev_hash`` and ``seq``, which only the head knows.

    Keys are sorted, so both follow the payload and only strings follow
    them, and a quote inside a JSON string is always escaped, so the last
    ``"prev_hash":"`` and ``,"seq":`` are the entry's own.
    """
    entry.seq, entry.prev_hash = 0, GENESIS_HASH
    text = canonical_json(entry.content()).decode()
    prev_at = text.rindex(_PREV_KEY) + len(_PREV_KEY)
    seq_at = text.rindex(_SEQ_KEY) + len(_SEQ_KEY)
    return text[:prev_at], text[prev_at + 64 : seq_at], text[seq_at + 1 :]


def _check_database_hash(entry: AuditEntry) -> None:
    if entry_hash(entry.content()) != entry.hash:
        # Never append an entry whose stored hash the verifiers would reject.
        raise RuntimeError(f"the database hashed audit entry #{entry.seq} differently; append refused")


def _append_in_database(cursor: Any, entry: AuditEntry) -> None:
    """One round trip under the head lock (PostgreSQL function ``consentry_audit_append``, migration 0005).

    The database fills in ``prev_hash`` and ``seq`` and hashes; the hash is
    checked here against ``audit.chain``'s.
    """
    cursor.execute(
        "SELECT o_seq, o_prev_hash, o_hash FROM consentry_audit_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            entry.at,
            entry.event_type,
            entry.actor,
            entry.subject,
            entry.object_type,
            entry.object_id,
            entry.region,
            connection.ops.adapt_json_value(entry.payload, None),
            *_text_pieces(entry),
        ),
    )
    entry.seq, entry.prev_hash, entry.hash = cursor.fetchone()
    _check_database_hash(entry)


def _append_many_in_database(cursor: Any, entries: list[AuditEntry]) -> None:
    """A batch in one round trip under the head lock (``consentry_audit_append_many``, migration 0006)."""
    pieces = [_text_pieces(entry) for entry in entries]
    cursor.execute(
        "SELECT o_first_seq, o_prev_hash, o_hashes FROM consentry_audit_append_many("
        "%s::timestamptz[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[],"
        " %s::text[], %s::text[], %s::text[])",
        (
            [entry.at for entry in entries],
            [entry.event_type for entry in entries],
            [entry.actor for entry in entries],
            [entry.subject for entry in entries],
            [entry.object_type for entry in entries],
            [entry.object_id for entry in entries],
            [entry.region for entry in entries],
            [connection.ops.adapt_json_value(entry.payload, None) for entry in entries],
            [piece[0] for piece in pieces],
            [piece[1] for piece in pieces],
            [piece[2] for piece in pieces],
        ),
    )
    seq, previous, hashes = cursor.fetchone()
    for entry, value in zip(entries, hashes, strict=True):
        entry.seq, entry.prev_hash, entry.hash = seq, previous, value
        _check_database_hash(entry)
        seq, previous = seq + 1, value


def _new_entry(
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
    if event_type not in _VALID_TYPES:
        raise ValueError(f"unknown audit event type {event_type!r}")
    if at is not None and timezone.is_naive(at):
        raise ValueError("audit times must be timezone-aware")
    return AuditEntry(
        at=at or timezone.now(),
        event_type=str(event_type),
        actor=actor.label,
        subject=subject,
        object_type=object_type,
        object_id=str(object_id),
        region=region,
        payload=normalise_payload(payload),
    )


def _as_stored(entry: AuditEntry) -> AuditEntry:
    # As if loaded: saving it again is refused like any stored entry.
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


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
    The lock is held until the caller's transaction ends, so record as late
    in the transaction as the change allows.
    """
    entry = _new_entry(
        event_type=event_type,
        actor=actor,
        subject=subject,
        object_type=object_type,
        object_id=object_id,
        region=region,
        payload=payload,
        at=at,
    )
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _append_in_database(cursor, entry)
        else:
            _append_plain(cursor, [entry])
    return _as_stored(entry)


# A batch is one statement; past this size it goes in several (all under the one lock).
RECORD_MANY_CHUNK = 500


def record_many(items: Iterable[Mapping[str, Any]]) -> list[AuditEntry]:
    """Append several entries, in order, in the caller's transaction: ``record`` for a batch.

    Each item holds ``record``'s keyword arguments. For a change audited as
    several entries: the head is locked once and the batch goes in one round
    trip on PostgreSQL, instead of one per entry. The entries get consecutive
    sequence numbers; nothing else can come between them.
    """
    entries = [_new_entry(**item) for item in items]
    if not entries:
        return []
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        _append_chunks(cursor, entries)
    return [_as_stored(entry) for entry in entries]


def _append_chunks(cursor: Any, entries: list[AuditEntry]) -> None:
    for first in range(0, len(entries), RECORD_MANY_CHUNK):
        chunk = entries[first : first + RECORD_MANY_CHUNK]
        if connection.vendor == "postgresql":
            _append_many_in_database(cursor, chunk)
        else:
            _append_plain(cursor, chunk)


_QUEUE_ENTRY = (
    "INSERT INTO audit_auditqueuedentry (at, event_type, actor, subject, object_type, object_id, region, payload,"
    " text_before_prev, text_before_seq, text_after_seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def record_queued(
    *,
    event_type: str,
    actor: Actor,
    subject: str = "",
    object_type: str = "",
    object_id: str | int = "",
    region: str = "",
    payload: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Commit an entry with the caller's change now, and give it its place in the chain within seconds.

    For the ledger's high-volume events (a capture grant per allowed
    decision), where nothing needs the entry's sequence number at once.
    ``record`` holds the chain head's lock until the caller's commit is on
    disk, so single-entry writers can never share a disk flush; a queued
    entry takes no lock, so concurrent writers' commits flush together.
    Validation is ``record``'s: bad input raises before anything is written.
    The entry is durable when the caller commits, and rolls back with it;
    ``queue_seal`` then chains it, so its sequence number reflects when it
    was sealed while its ``at`` keeps when it happened.
    """
    entry = _new_entry(
        event_type=event_type,
        actor=actor,
        subject=subject,
        object_type=object_type,
        object_id=object_id,
        region=region,
        payload=payload,
        at=at,
    )
    # PostgreSQL seals from the canonical text (consentry_audit_seal); elsewhere the sealer rebuilds it.
    pieces = _text_pieces(entry) if connection.vendor == "postgresql" else ("", "", "")
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(_QUEUE_ENTRY, (*_content_row(entry), *pieces))


# Queued entries chained per transaction: a bound on how long one seal holds the head.
SEAL_BATCH = 2000


def queue_seal(*, batch: int = SEAL_BATCH) -> int:
    """Chain every committed queued entry, in queue order; returns how many were sealed.

    Each batch is one transaction under the chain head's lock: the entries
    are chained and their queue rows deleted together, so an entry is
    queued or chained, never both and never lost. Every sealed entry's hash
    is checked against its stored content before the batch commits, as
    ``record`` checks its own. Sealers on several processes take turns on
    the lock; one that finds the queue empty does nothing.
    """
    seal = _seal_in_database if connection.vendor == "postgresql" else _seal_plain
    sealed = 0
    # Most runs find nothing: say so without taking the head's lock (SQLite's write lock).
    while AuditQueuedEntry.objects.exists():
        with transaction.atomic(), connection.cursor() as cursor:
            count = seal(cursor, batch)
        sealed += count
        if count < batch:
            break
    return sealed


def _seal_in_database(cursor: Any, batch: int) -> int:
    """Chain the batch in one call (``consentry_audit_seal``, migration 0008), then check every hash."""
    cursor.execute("SELECT o_count, o_first_seq, o_prev_hash FROM consentry_audit_seal(%s)", (batch,))
    count, first, previous = cursor.fetchone()
    expected = first
    with closing(stored_entries(after=first - 1, upto=first + count - 1)) as entries:
        for seq, prev_hash, hash_, intact, _at in entries:
            if seq != expected or prev_hash != previous or not intact:
                # Never commit a sealed entry the verifiers would reject.
                raise RuntimeError(f"the database sealed audit entry #{seq} differently; sealing refused")
            expected, previous = seq + 1, hash_
    if expected != first + count:
        raise RuntimeError(f"the database sealed {expected - first} of {count} audit entries; sealing refused")
    return count


def _seal_plain(cursor: Any, batch: int) -> int:
    """Any database: append the batch as ``record_many`` does, then delete its queue rows."""
    _locked_head(cursor)
    queued = list(AuditQueuedEntry.objects.order_by("pk")[:batch])
    if queued:
        _append_chunks(cursor, [row.as_entry() for row in queued])
        ids = [row.pk for row in queued]
        cursor.execute(
            f"DELETE FROM audit_auditqueuedentry WHERE id IN ({', '.join(['%s'] * len(ids))})",  # noqa: S608
            ids,
        )
    return len(queued)


def checkpoint_create(*, at: datetime | None = None) -> AuditCheckpoint | None:
    """Sign a checkpoint over every committed entry not yet covered by one, queued ones sealed first.

    Returns None when there is nothing new, or when another process signed the
    same checkpoint number first. Sealing the queue takes short turns on the
    head's lock; after that the head is read without it, so writers never
    wait on the signing: every entry up to a committed head is committed and
    immutable. Before signing, the new entries are rehashed and
    their links followed from the previous checkpoint's frontier, so a
    checkpoint never vouches for a broken chain (``NotIntact`` instead).
    Perfect subtrees of 256 leaves and up are stored for inclusion proofs.
    """
    queue_seal()
    size = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    previous = AuditCheckpoint.objects.order_by("-number").first()
    if size <= (previous.size if previous else 0):
        return None
    walk = Walk(
        [],
        audit_public_keys(),
        previous.record() if previous else None,
        tree=partial(Frontier, keep_level=TREE_NODE_LEVEL),
    )
    frontier = cast(Frontier, walk.tree)
    with closing(stored_entries(after=frontier.size, upto=size)) as entries:
        walk_all(entries, walk, Result(kind="ledger"))
    if frontier.size != size:
        raise not_intact(f"the chain head names entry #{size} but the log ends at entry #{frontier.size}")
    moment = at or timezone.now()
    if previous and moment < previous.issued_at:
        # Clocks of different hosts disagree: checkpoint times never go back.
        moment = previous.issued_at
    statement = Statement(
        number=previous.number + 1 if previous else 1,
        size=size,
        root=frontier.root().hex(),
        head=walk.head,
        prev_signature=previous.signature if previous else "",
        issued_at=format_time(moment),
        kid=current_kid(),
    )
    try:
        with transaction.atomic():
            checkpoint = AuditCheckpoint.objects.create(
                number=statement.number,
                size=statement.size,
                root=statement.root,
                head=statement.head,
                frontier=frontier.hex_nodes(),
                prev_signature=statement.prev_signature,
                issued_at=moment,
                kid=statement.kid,
                signature=sign(statement.message()),
            )
            AuditTreeNode.objects.bulk_create(
                [AuditTreeNode(level=level, index=index, hash=node.hex()) for level, index, node in frontier.completed],
                batch_size=1000,
            )
    except IntegrityError:
        return None
    return checkpoint


def ledger_verify(*, actor: Actor) -> Result:
    """Verify the live ledger and put the outcome on it: the daily proof that nobody edited history."""
    report = verify_live()
    if not report.ok:
        logger.error("audit ledger verification failed: %s", "; ".join(map(str, report.findings)))
    with transaction.atomic():
        record(
            event_type=EventType.AUDIT_VERIFIED if report.ok else EventType.AUDIT_VERIFICATION_FAILED,
            actor=actor,
            object_type="audit_ledger",
            payload=summary(report),
        )
    return report


def export_request(
    *,
    user: Any,
    access: AuditAccess,
    filters: EntryFilters,
    format: str,
    at: datetime | None = None,
) -> AuditExport:
    """Start an auditor's export job; the request itself goes on the ledger.

    The auditor's scope is frozen into the job, so the bundle holds what they
    could read when they asked. The build runs in a Celery task after commit.
    """
    if not access.can_audit:
        raise Forbidden("Only auditors export the audit ledger.", code="not_an_auditor")
    if format not in ExportFormat.values:
        raise DomainError(f"Unknown export format {format!r}.", code="invalid_format")
    moment = at or timezone.now()
    with transaction.atomic():
        export = AuditExport.objects.create(
            requested_by=user,
            requested_at=moment,
            format=format,
            filters=filters.as_json(),
            scope=access.scope_json(),
            updated_at=moment,
        )
        record(
            event_type=EventType.AUDIT_EXPORT_REQUESTED,
            actor=Actor.for_user(user),
            object_type="audit_export",
            object_id=str(export.id),
            payload={"format": format, "filters": export.filters, "scope": export.scope},
            at=moment,
        )
        after_commit(_enqueue_export, export.id, what=f"enqueue audit export {export.id}")
    return export


def _enqueue_export(export_id: uuid.UUID) -> None:
    # Imported here: tasks call services, not the other way round. A broker
    # outage leaves the job pending; export_sweep enqueues it again.
    from audit.tasks import export_build_task

    export_build_task.delay(str(export_id))


def export_build(*, export_id: uuid.UUID, now: datetime | None = None) -> AuditExport:
    """Build (or rebuild) an export's bundle; safe to run again after a crash.

    The first run fixes the signed checkpoint the bundle covers (a fresh one
    over the current head), so every retry writes the same bytes. The bundle
    is written to a temporary file and stored only when complete; the job is
    marked done, and the completion audited with the bundle's SHA-256, once.
    """
    if not AuditExport.objects.filter(pk=export_id).exclude(status__in=FINISHED).exists():
        return AuditExport.objects.get(pk=export_id)
    checkpoint_create()
    moment = now or timezone.now()
    with transaction.atomic():
        export = AuditExport.objects.select_for_update().get(pk=export_id)
        if export.status in FINISHED:
            return export
        if export.checkpoint_id is None:
            export.checkpoint = AuditCheckpoint.objects.order_by("-number").first()
        export.status = ExportStatus.RUNNING
        export.attempts += 1
        export.progress = 0
        export.started_at = export.updated_at = moment
        export.save(update_fields=["checkpoint", "status", "attempts", "progress", "started_at", "updated_at"])

    def on_progress(percent: int) -> None:
        AuditExport.objects.filter(pk=export_id, status=ExportStatus.RUNNING).update(
            progress=percent, updated_at=timezone.now()
        )

    name = f"audit-exports/{export_id}.zip"
    with tempfile.TemporaryFile() as scratch:
        result = write_bundle(export=export, out=scratch, on_progress=on_progress)
        scratch.seek(0)
        digest = hashlib.sha256()
        for block in iter(lambda: scratch.read(1 << 20), b""):
            digest.update(block)
        byte_size = scratch.tell()
        scratch.seek(0)
        # A previous run may have stored the bundle and died before marking the job done.
        default_storage.delete(name)
        stored = default_storage.save(name, File(scratch, name=name))
    with transaction.atomic():
        export = AuditExport.objects.select_for_update().get(pk=export_id)
        if export.status in FINISHED:
            return export
        export.status = ExportStatus.DONE
        export.progress = 100
        export.file.name = stored
        export.sha256 = digest.hexdigest()
        export.byte_size = byte_size
        export.entry_count = result.entries
        export.error = ""
        export.finished_at = export.updated_at = timezone.now()
        export.save()
        record(
            event_type=EventType.AUDIT_EXPORT_COMPLETED,
            actor=EXPORTER,
            object_type="audit_export",
            object_id=str(export.id),
            payload={
                "sha256": export.sha256,
                "entries": result.entries,
                "tree": {"from_size": result.from_size, "to_size": result.to_size},
                "checkpoint": export.checkpoint_id,
                "format": export.format,
            },
        )
    return export


def export_fail(*, export_id: uuid.UUID, error: str) -> AuditExport:
    """Give up on an export: the auditor sees why, and the ledger records it."""
    with transaction.atomic():
        export = AuditExport.objects.select_for_update().get(pk=export_id)
        if export.status in FINISHED:
            return export
        export.status = ExportStatus.FAILED
        export.error = error[:2000]
        export.finished_at = export.updated_at = timezone.now()
        export.save(update_fields=["status", "error", "finished_at", "updated_at"])
        record(
            event_type=EventType.AUDIT_EXPORT_FAILED,
            actor=EXPORTER,
            object_type="audit_export",
            object_id=str(export.id),
            payload={"error": export.error},
        )
    return export

"""Queued entries: committed with their change without the head's lock, chained by the sealer, never lost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from audit import services
from audit.chain import entry_hash
from audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditQueuedEntry, EventType
from audit.services import checkpoint_create, queue_seal, record, record_queued
from audit.tasks import queue_seal as queue_seal_task
from audit.tests.conftest import ACTOR
from audit.verifiers import verify_live

pytestmark = pytest.mark.django_db
AT = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def _queue(n: int, **extra) -> None:
    record_queued(
        event_type=EventType.GRANT_ISSUED,
        actor=ACTOR,
        subject=f"E{n}",
        object_type="capture_grant",
        object_id=f"g_{n}",
        region="US-NY",
        payload={"n": n, "categories": ["keystrokes"], "issued_at": AT, "note": 'é "q" \\ b'},
        **extra,
    )


def _chain() -> list[tuple[str, str]]:
    return list(AuditEntry.objects.order_by("seq").values_list("event_type", "object_id"))


def test_a_queued_entry_is_committed_but_chained_only_when_sealed():
    _queue(1, at=AT)
    assert AuditEntry.objects.count() == 0
    queued = AuditQueuedEntry.objects.get()
    assert (queued.event_type, queued.object_id, queued.at) == (EventType.GRANT_ISSUED, "g_1", AT)

    assert queue_seal() == 1

    assert not AuditQueuedEntry.objects.exists()
    entry = AuditEntry.objects.get()
    assert (entry.seq, entry.at, entry.subject, entry.region) == (1, AT, "E1", "US-NY")
    # The payload as record() would have stored it: dates as RFC 3339 text.
    assert entry.payload == {
        "n": 1,
        "categories": ["keystrokes"],
        "issued_at": "2026-11-02T09:30:15.123456Z",
        "note": 'é "q" \\ b',
    }
    assert entry.hash == entry_hash(entry.content()) == AuditHead.objects.get().hash
    assert verify_live().ok


def test_sealed_entries_take_their_place_after_entries_recorded_meanwhile():
    record(event_type=EventType.REGION_SAVED, actor=ACTOR, object_id="a")
    _queue(1)
    record(event_type=EventType.REGION_SAVED, actor=ACTOR, object_id="b")
    _queue(2)
    queue_seal()
    record(event_type=EventType.REGION_SAVED, actor=ACTOR, object_id="c")
    assert _chain() == [
        (EventType.REGION_SAVED, "a"),
        (EventType.REGION_SAVED, "b"),
        (EventType.GRANT_ISSUED, "g_1"),
        (EventType.GRANT_ISSUED, "g_2"),
        (EventType.REGION_SAVED, "c"),
    ]
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]
    assert verify_live().ok


def test_the_queue_is_sealed_in_order_in_batches():
    for n in range(7):
        _queue(n)
    assert queue_seal(batch=3) == 7
    assert [object_id for _, object_id in _chain()] == [f"g_{n}" for n in range(7)]
    assert queue_seal() == 0
    assert AuditEntry.objects.count() == 7
    assert verify_live().ok


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"event_type": "made.up"}, ValueError),
        ({"payload": {"ratio": 0.5}}, TypeError),
        ({"payload": {"when": object()}}, TypeError),
        ({"at": datetime(2026, 11, 2, 9, 30)}, ValueError),
    ],
)
def test_bad_input_is_refused_and_nothing_is_queued(bad, error):
    arguments = {"event_type": EventType.GRANT_ISSUED, "actor": ACTOR, "payload": {"n": 1}, **bad}
    with pytest.raises(error):
        record_queued(**arguments)
    assert not AuditQueuedEntry.objects.exists()
    assert queue_seal() == 0
    assert AuditEntry.objects.count() == 0


def test_a_queued_entry_rolls_back_with_the_change_it_records():
    with pytest.raises(RuntimeError), transaction.atomic():
        _queue(1)
        raise RuntimeError("the change failed")
    assert not AuditQueuedEntry.objects.exists()


def test_a_seal_that_fails_loses_nothing_and_the_next_one_chains_it(monkeypatch):
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    for n in range(3):
        _queue(n)
    seal = services._seal_in_database if connection.vendor == "postgresql" else services._seal_plain

    def seal_then_fail(cursor, batch):
        assert seal(cursor, batch) == 3
        raise DatabaseError("connection lost")

    monkeypatch.setattr(services, seal.__name__, seal_then_fail)
    with pytest.raises(DatabaseError):
        queue_seal()
    assert AuditEntry.objects.count() == 1
    assert AuditQueuedEntry.objects.count() == 3
    assert AuditHead.objects.get().seq == 1

    monkeypatch.setattr(services, seal.__name__, seal)
    assert queue_seal() == 3
    assert AuditEntry.objects.count() == 4
    assert not AuditQueuedEntry.objects.exists()
    assert verify_live().ok


def test_a_checkpoint_covers_what_was_queued_before_it():
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    _queue(1)
    _queue(2)
    checkpoint = checkpoint_create()
    assert checkpoint is not None
    assert checkpoint.size == 3
    assert not AuditQueuedEntry.objects.exists()
    assert AuditCheckpoint.objects.count() == 1


def test_the_beat_task_seals_the_queue():
    _queue(1)
    _queue(2)
    assert queue_seal_task() == 2
    assert AuditEntry.objects.count() == 2
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-seal"]
    assert schedule["task"] == "audit.queue_seal"
    assert schedule["schedule"] == float(settings.CONSENTRY_AUDIT_SEAL_SECONDS)


def test_the_orm_refuses_to_change_or_delete_a_queued_entry():
    _queue(1)
    queued = AuditQueuedEntry.objects.get()
    queued.actor = "user:mallory"
    with pytest.raises(PermissionError):
        queued.save()
    with pytest.raises(PermissionError):
        queued.delete()
    with pytest.raises(PermissionError):
        AuditQueuedEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditQueuedEntry.objects.update(actor="user:mallory")
    assert AuditQueuedEntry.objects.get().actor == ACTOR.label


@pytest.mark.postgres
def test_postgres_refuses_changing_or_truncating_queued_entries():
    _queue(1)
    for sql in (
        "UPDATE audit_auditqueuedentry SET actor = 'user:mallory'",
        "SET LOCAL consentry.allow_ledger_reset = 'off'; TRUNCATE audit_auditqueuedentry",
    ):
        with pytest.raises(DatabaseError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditQueuedEntry.objects.get().actor == ACTOR.label


@pytest.mark.postgres
def test_postgres_refuses_to_seal_an_entry_whose_text_disagrees_with_its_content():
    _queue(1)
    # A queue row whose canonical text says one payload while its column holds another.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditqueuedentry (at, event_type, actor, subject, object_type, object_id, region,"
            " payload, text_before_prev, text_before_seq, text_after_seq)"
            " SELECT at, event_type, actor, subject, object_type, object_id, region, '{\"n\": 2}'::jsonb,"
            " text_before_prev, text_before_seq, text_after_seq FROM audit_auditqueuedentry"
        )
    with pytest.raises(RuntimeError, match="entry #2 differently; sealing refused"):
        queue_seal()
    assert AuditEntry.objects.count() == 0
    assert AuditQueuedEntry.objects.count() == 2
    assert AuditHead.objects.get().seq == 0

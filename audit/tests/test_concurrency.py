"""Eight writers on PostgreSQL at once, with checkpoints signed while they write.

Each writer appends in transactions of a few entries, as services do (a
consent change for several categories is several entries in one
transaction), with ``synchronous_commit`` off for its session: locking,
ordering and visibility are exactly as in production, only the wait for the
disk flush at each commit is skipped, which keeps thousands of entries per
writer within seconds. Durability is PostgreSQL's business, not this test's.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction

from audit.actors import Actor
from audit.models import AuditCheckpoint, AuditEntry, AuditHead, AuditQueuedEntry, EventType
from audit.services import checkpoint_create, queue_seal, record, record_many, record_queued
from audit.verifiers import verify_live

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
WRITERS = 8
EACH = 2000
BATCH = 25


def test_eight_concurrent_writers_leave_one_gapless_unforked_chain():
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS + 1)
    done = threading.Event()

    def writer(index: int) -> None:
        actor = Actor(kind="system", ref=f"writer{index}")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
            start.wait()
            for first in range(0, EACH, BATCH):
                items: list[dict[str, Any]] = [
                    {
                        "event_type": EventType.REGION_SAVED,
                        "actor": actor,
                        "object_id": n,
                        "payload": {"writer": index, "n": n},
                    }
                    for n in range(first, first + BATCH)
                ]
                with transaction.atomic():
                    # Half the writers append one by one, half in batches: both take the same lock.
                    if index % 2:
                        record_many(items)
                    else:
                        for item in items:
                            record(**item)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    def checkpointer() -> None:
        # Signs while the writers append: it reads committed entries and never blocks them.
        try:
            start.wait()
            while not done.is_set():
                checkpoint_create()
                time.sleep(0.2)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    signer = threading.Thread(target=checkpointer)
    for thread in [*threads, signer]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    signer.join()

    assert not errors, errors
    assert AuditEntry.objects.count() == WRITERS * EACH
    per_writer = Counter(AuditEntry.objects.values_list("payload__writer", flat=True))
    assert per_writer == dict.fromkeys(range(WRITERS), EACH)
    # A batch is contiguous: nothing comes between the entries of one record_many call.
    rows = [(p["writer"], p["n"]) for p in AuditEntry.objects.order_by("seq").values_list("payload", flat=True)]
    for position, (author, n) in enumerate(rows):
        if author % 2 and n % BATCH == 0:
            assert rows[position : position + BATCH] == [(author, n + i) for i in range(BATCH)]
    checkpoint_create()
    assert AuditCheckpoint.objects.count() > 1
    report = verify_live()
    assert report.ok, report.findings
    assert report.size == WRITERS * EACH and report.checkpoints == AuditCheckpoint.objects.count()


QUEUED_EACH = 1000


def test_queued_writers_and_concurrent_sealers_lose_nothing_and_fork_nothing():
    """Eight writers queue one entry per transaction while two sealers and a chained writer run."""
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS + 4)
    done = threading.Event()

    def queuer(index: int) -> None:
        actor = Actor(kind="system", ref=f"queuer{index}")
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit = off")
            start.wait()
            for n in range(QUEUED_EACH):
                with transaction.atomic():
                    record_queued(
                        event_type=EventType.GRANT_ISSUED, actor=actor, object_id=n, payload={"writer": index, "n": n}
                    )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    def chained() -> None:
        # Entries recorded at once take their turns on the head between the sealers' batches.
        try:
            start.wait()
            n = 0
            while not done.is_set():
                record(event_type=EventType.REGION_SAVED, actor=Actor.system("chained"), payload={"writer": -1, "n": n})
                n += 1
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    def sealer(pause: float) -> None:
        try:
            start.wait()
            while not done.is_set():
                queue_seal(batch=300)
                time.sleep(pause)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=queuer, args=(i,)) for i in range(WRITERS)]
    others = [
        threading.Thread(target=chained),
        threading.Thread(target=sealer, args=(0.0,)),
        threading.Thread(target=sealer, args=(0.05,)),
    ]
    for thread in [*workers, *others]:
        thread.start()
    start.wait()
    for thread in workers:
        thread.join()
    done.set()
    for thread in others:
        thread.join()
    queue_seal()

    assert not errors, errors
    assert not AuditQueuedEntry.objects.exists()
    sealed = Counter(
        (payload["writer"], payload["n"])
        for payload in AuditEntry.objects.filter(event_type=EventType.GRANT_ISSUED).values_list("payload", flat=True)
    )
    # Every queued entry chained exactly once.
    assert sealed == {(writer, n): 1 for writer in range(WRITERS) for n in range(QUEUED_EACH)}
    # Each writer's entries keep its commit order in the chain.
    for writer in range(WRITERS):
        order = [
            payload["n"]
            for payload in AuditEntry.objects.filter(event_type=EventType.GRANT_ISSUED, actor=f"system:queuer{writer}")
            .order_by("seq")
            .values_list("payload", flat=True)
        ]
        assert order == list(range(QUEUED_EACH))
    assert AuditEntry.objects.filter(event_type=EventType.REGION_SAVED).exists()
    report = verify_live()
    assert report.ok, report.findings
    assert report.size == AuditEntry.objects.count() == AuditHead.objects.get().seq

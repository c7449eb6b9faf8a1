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

import pytest
from django.db import connection, transaction

from audit.actors import Actor
from audit.models import AuditCheckpoint, AuditEntry, EventType
from audit.services import checkpoint_create, record, record_many
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
                items = [
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
    for position, (writer, n) in enumerate(rows):
        if writer % 2 and n % BATCH == 0:
            assert rows[position : position + BATCH] == [(writer, n + i) for i in range(BATCH)]
    checkpoint_create()
    assert AuditCheckpoint.objects.count() > 1
    report = verify_live()
    assert report.ok, report.findings
    assert report.size == WRITERS * EACH and report.checkpoints == AuditCheckpoint.objects.count()

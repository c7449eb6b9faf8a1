"""Append throughput of the audit ledger on PostgreSQL, beside a bare INSERT measured in the same run.

    python bench/audit_append.py [--entries 2000] [--writers 1 8]

Every scenario runs ``record()`` (lock the chain head, hash, insert, move
the head), ``record_queued()`` (commit the entry to the queue, no lock; a
sealer process chains the queue in batches meanwhile, and the clock stops
only once the queue is empty, so its figure is entries chained per second)
and, as the baseline, a bare INSERT of the same row into a plain table with
no lock, no hash and no chain. Rows are written one per
transaction (each a durable commit: what a state change costs), then in
transactions of 25 (how services that change several things at once write),
where ``record_many()`` (the 25 entries in one call) runs too, then one per
transaction with ``synchronous_commit = off`` (no wait for the disk flush:
the ledger's own cost). Writers are processes, each with its own
database connection. The benchmark database is dropped and recreated.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import TYPE_CHECKING

# Run as a script (python bench/audit_append.py), which puts bench/ on the path; mypy reads bench as a package.
if TYPE_CHECKING:
    from bench.ledger_db import django_setup, fresh_database, load_note
else:
    from ledger_db import django_setup, fresh_database, load_note

PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS bench_plain_entry (
    seq bigserial PRIMARY KEY, at timestamptz NOT NULL, event_type varchar(64) NOT NULL, actor varchar(200) NOT NULL,
    subject varchar(200) NOT NULL, object_type varchar(64) NOT NULL, object_id varchar(200) NOT NULL,
    region varchar(16) NOT NULL, payload jsonb NOT NULL, prev_hash varchar(64) NOT NULL, hash varchar(64) NOT NULL
)
"""
PLAIN_INSERT = (
    "INSERT INTO bench_plain_entry (at, event_type, actor, subject, object_type, object_id, region, payload,"
    " prev_hash, hash) VALUES (now(), 'consent.granted', %s, 'E1001', 'consent_event', %s, 'US-NY', %s, %s, %s)"
)


def _writer(kind: str, index: int, per_writer: int, batch: int, synchronous: bool, barrier, errors) -> None:
    from django.db import connection, transaction

    from audit.actors import Actor
    from audit.models import EventType
    from audit.services import record, record_many, record_queued

    actor = Actor(kind="system", ref=f"bench{index}")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SET synchronous_commit = {'on' if synchronous else 'off'}")
        barrier.wait()
        for first in range(0, per_writer, batch):
            with transaction.atomic(), connection.cursor() as cursor:
                if kind == "batch":
                    record_many(
                        {
                            "event_type": EventType.CONSENT_GRANTED,
                            "actor": actor,
                            "subject": "E1001",
                            "object_type": "consent_event",
                            "object_id": n,
                            "region": "US-NY",
                            "payload": {"purpose": "ai_agent_training", "categories": ["keystrokes"], "n": n},
                        }
                        for n in range(first, min(first + batch, per_writer))
                    )
                    continue
                for n in range(first, min(first + batch, per_writer)):
                    payload = {"purpose": "ai_agent_training", "categories": ["keystrokes"], "n": n}
                    if kind in ("ledger", "queued"):
                        (record if kind == "ledger" else record_queued)(
                            event_type=EventType.CONSENT_GRANTED,
                            actor=actor,
                            subject="E1001",
                            object_type="consent_event",
                            object_id=n,
                            region="US-NY",
                            payload=payload,
                        )
                    else:
                        cursor.execute(PLAIN_INSERT, (actor.label, str(n), _json(payload), "0" * 64, "1" * 64))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        errors.put(repr(exc))
    finally:
        connection.close()


def _sealer(writers_done, errors) -> None:
    """Chain the queue while the writers write, as beat's sealing task does; return once done and empty."""
    from django.db import connection

    from audit.services import queue_seal

    try:
        while True:
            finished = writers_done.is_set()
            if not queue_seal() and finished:
                return
            time.sleep(0.05)
    except BaseException as exc:  # noqa: BLE001 - reported by the parent
        errors.put(repr(exc))
    finally:
        connection.close()


def run(kind: str, *, writers: int, per_writer: int, batch: int, synchronous: bool) -> float:
    """Entries per second for ``writers`` processes each appending ``per_writer`` entries.

    Processes, like gunicorn and Celery workers, so Python's GIL does not
    serialise the writers; each opens its own database connection.
    """
    from django.db import connections

    connections.close_all()
    context = multiprocessing.get_context("fork")
    barrier, errors = context.Barrier(writers + 1), context.Queue()
    processes = [
        context.Process(target=_writer, args=(kind, i, per_writer, batch, synchronous, barrier, errors))
        for i in range(writers)
    ]
    writers_done = context.Event()
    sealer = context.Process(target=_sealer, args=(writers_done, errors)) if kind == "queued" else None
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    if sealer:
        sealer.start()
    for process in processes:
        process.join()
    writers_done.set()
    if sealer:
        sealer.join()
    elapsed = time.perf_counter() - started
    if not errors.empty():
        raise SystemExit(f"a writer failed: {errors.get()}")
    return writers * per_writer / elapsed


def _json(value) -> str:
    import json

    return json.dumps(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=2000, help="entries per scenario (split among the writers)")
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    fresh_database()
    django_setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(PLAIN_TABLE)
    print(load_note())
    print(
        f"{'scenario':<36}{'bare INSERT':>14}{'record()':>14}{'ratio':>7}{'record_queued()':>18}{'ratio':>7}"
        f"{'record_many()':>16}{'ratio':>7}"
    )
    scenarios = ((True, 1, "durable, 1/tx"), (True, 25, "durable, 25/tx"), (False, 1, "async commit, 1/tx"))
    for synchronous, batch, label in scenarios:
        for writers in args.writers:
            per_writer = max(args.entries // writers, batch)
            baseline = run("plain", writers=writers, per_writer=per_writer, batch=batch, synchronous=synchronous)
            ledger = run("ledger", writers=writers, per_writer=per_writer, batch=batch, synchronous=synchronous)
            queued = run("queued", writers=writers, per_writer=per_writer, batch=batch, synchronous=synchronous)
            name = f"{label}, {writers} writer{'s' if writers > 1 else ''}"
            line = (
                f"{name:<36}{baseline:>12,.0f}/s{ledger:>12,.0f}/s{ledger / baseline:>7.2f}"
                f"{queued:>16,.0f}/s{queued / baseline:>7.2f}"
            )
            if batch > 1:
                many = run("batch", writers=writers, per_writer=per_writer, batch=batch, synchronous=synchronous)
                line += f"{many:>14,.0f}/s{many / baseline:>7.2f}"
            print(line, flush=True)
    from audit.models import AuditQueuedEntry
    from audit.verifiers import verify_live

    report = verify_live()
    left = AuditQueuedEntry.objects.count()
    print(f"afterwards: {report.size:,} entries, chain verified: {report.ok}, left in the queue: {left}")


if __name__ == "__main__":
    main()

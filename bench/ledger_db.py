"""Shared set-up for the audit ledger benchmarks: a scratch PostgreSQL database, Django, seeded entries.

The ledger benchmarks own one database (``BENCH_AUDIT_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432/consentry_bench_audit``, apart
from the other benchmarks'); ``fresh_database`` drops and recreates it.
Seeding writes valid chained entries with COPY (the benchmarks measure
reading, verifying and exporting, not this) and signs a checkpoint every
``checkpoint_every`` entries through the real service.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_AUDIT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/consentry_bench_audit")
START = datetime(2026, 1, 1, tzinfo=UTC)


def _dsn(url: str, *, database: str | None = None) -> str:
    base, _, name = url.rpartition("/")
    return f"{base.replace('postgres://', 'postgresql://', 1)}/{database or name}"


def fresh_database() -> None:
    """Drop and recreate the benchmark database, then migrate it."""
    import psycopg

    name = DATABASE_URL.rpartition("/")[2]
    with psycopg.connect(_dsn(DATABASE_URL, database="postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    django_setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def django_setup() -> None:
    os.environ["DATABASE_URL"] = DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "consentry.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(count: int, *, checkpoint_every: int = 10_000, chunk: int = 10_000) -> float:
    """Append ``count`` valid entries with COPY, signing checkpoints as it goes; returns seconds taken."""
    from django.db import connection

    from audit.chain import GENESIS_HASH, entry_hash, format_time
    from audit.models import AuditHead
    from audit.services import checkpoint_create

    started = time.perf_counter()
    head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, GENESIS_HASH)
    seq, previous = head
    target = seq + count
    columns = "seq, at, event_type, actor, subject, object_type, object_id, region, payload, prev_hash, hash"
    regions = ("US-NY", "US-CA", "DE-BE", "US", "FR", "")
    types = ("consent.granted", "consent.withdrawn", "notice.acknowledged", "capture.paused")
    while seq < target:
        upto = min(seq + chunk, target)
        connection.ensure_connection()
        # Autocommit: each COPY of a chunk is its own transaction.
        raw = connection.connection
        with raw.cursor() as cursor, cursor.copy(f"COPY audit_auditentry ({columns}) FROM STDIN") as copy:
            for n in range(seq + 1, upto + 1):
                moment = START + timedelta(milliseconds=n * 37)
                content = {
                    "seq": n,
                    "at": format_time(moment),
                    "event_type": types[n % len(types)],
                    "actor": f"user:u{n % 97}",
                    "subject": f"E{10000 + n % 5000}",
                    "object_type": "consent_event",
                    "object_id": str(n),
                    "region": regions[n % len(regions)],
                    "payload": {"purpose": "ai_agent_training", "categories": ["keystrokes", "screenshots"], "n": n},
                    "prev_hash": previous,
                }
                previous = entry_hash(content)
                fields = list(content.values())[2:8]
                copy.write_row((n, moment, *fields, json.dumps(content["payload"]), content["prev_hash"], previous))
        AuditHead.objects.filter(pk=1).update(seq=upto, hash=previous)
        seq = upto
        if seq % checkpoint_every == 0 or seq == target:
            # Signed when the last entry was written, as beat would: verification holds checkpoints to that.
            checkpoint_create(at=START + timedelta(milliseconds=seq * 37))
    return time.perf_counter() - started


def ledger_size() -> int:
    from audit.models import AuditHead

    return AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>12,.0f} /s"


def load_note() -> str:
    """The machine's load when the run starts: figures from a busy machine are not comparable."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.1f} (1 min), {five:.1f} (5 min)"

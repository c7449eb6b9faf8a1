"""Ledger test helpers: chains of entries, and tampering the way an attacker would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from audit.access import AuditAccess
from audit.actors import Actor
from audit.chain import GENESIS_HASH, entry_hash, format_time
from audit.models import AuditEntry, AuditHead, EventType
from audit.selectors import EntryFilters
from audit.services import export_build, export_request, record
from consentry.localstate import ed25519_pem
from consentry.signing import keyring

ACTOR = Actor.system("tests")
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
REGIONS = ("US-NY", "DE-BE", "US", "FR", "", "US-CA")
TYPES = (EventType.CONSENT_GRANTED, EventType.CONSENT_WITHDRAWN, EventType.REGION_SAVED)


# Entries here are written at fixed past times and signed at the real clock's now, months later:
# every such checkpoint comes far past the allowance. The tests of the allowance itself
# (test_verify_coverage.py) set a realistic grace instead.
LATE_CHECKPOINTS_ALLOWED = {
    "CONSENTRY_CHECKPOINT_GRACE_MINUTES": 100 * 365 * 24 * 60,
    "CONSENTRY_CHECKPOINT_GRACE_ENTRIES": 10**9,
}


@pytest.fixture(autouse=True)
def _checkpoints_may_come_late(settings):
    for name, value in LATE_CHECKPOINTS_ALLOWED.items():
        setattr(settings, name, value)


def write_entries(count: int) -> list[AuditEntry]:
    """``count`` entries through record(), varied in type, region, subject and time.

    Entry #n gets index n - 1: region ``REGIONS[index % 6]``, subject
    ``E{1000 + index % 4}``, time ``START`` + index minutes, payload ``n=index``.
    """
    base = AuditHead.objects.filter(pk=1).values_list("seq", flat=True).first() or 0
    return [
        record(
            event_type=TYPES[index % len(TYPES)],
            actor=Actor(kind="user", ref=f"user{index % 3}"),
            subject=f"E{1000 + index % 4}",
            object_type="consent_event",
            object_id=index,
            region=REGIONS[index % len(REGIONS)],
            payload={"n": index, "purpose": "ai_agent_training", "categories": ["keystrokes", "é"]},
            at=START + timedelta(minutes=index),
        )
        for index in range(base, base + count)
    ]


def write_at(count: int, *, start: datetime, step: timedelta = timedelta(seconds=10)) -> datetime:
    """``count`` entries ``step`` apart from ``start``; returns the last one's time."""
    moment = start
    for index in range(count):
        moment = start + index * step
        record(
            event_type="consent.granted",
            actor=ACTOR,
            subject=f"E{1000 + index % 4}",
            object_type="consent_event",
            object_id=index,
            region="US-NY",
            payload={"n": index},
            at=moment,
        )
    return moment


def seed_chain(count: int, *, batch: int = 5000) -> int:
    """Append ``count`` valid entries in bulk (fast test and benchmark data); returns the new size."""
    head = AuditHead.objects.filter(pk=1).first()
    seq, previous = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head is None:
        AuditHead.objects.create(pk=1, seq=0, hash=GENESIS_HASH)
    rows = []
    for _ in range(count):
        seq += 1
        content = {
            "seq": seq,
            "at": format_time(START + timedelta(seconds=seq)),
            "event_type": str(TYPES[seq % len(TYPES)]),
            "actor": f"user:user{seq % 3}",
            "subject": f"E{1000 + seq % 4}",
            "object_type": "consent_event",
            "object_id": str(seq),
            "region": REGIONS[seq % len(REGIONS)],
            "payload": {"n": seq, "purpose": "ai_agent_training"},
            "prev_hash": previous,
        }
        previous = entry_hash(content)
        rows.append(
            AuditEntry(
                **{**content, "at": START + timedelta(seconds=seq), "hash": previous},
            )
        )
        if len(rows) >= batch:
            AuditEntry.objects.bulk_create(rows)
            rows = []
    AuditEntry.objects.bulk_create(rows)
    AuditHead.objects.filter(pk=1).update(seq=seq, hash=previous)
    return seq


def tamper(sql: str, params: tuple = ()) -> None:
    """Run SQL on the ledger as a superuser who has switched the protecting triggers off."""
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")


def rechain(from_seq: int) -> None:
    """Recompute every hash from ``from_seq`` on, as an attacker without the signing key can."""
    previous = AuditEntry.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first() or GENESIS_HASH
    for entry in AuditEntry.objects.filter(seq__gte=from_seq).order_by("seq"):
        content = {**entry.content(), "prev_hash": previous}
        digest = entry_hash(content)
        tamper(
            "UPDATE audit_auditentry SET prev_hash = %s, hash = %s WHERE seq = %s",
            (previous, digest, entry.seq),
        )
        previous = digest
    last = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    tamper("UPDATE audit_audithead SET seq = %s, hash = %s WHERE id = 1", (last, previous))


@pytest.fixture
def fresh_audit_keys(settings, tmp_path):
    """A throwaway audit key in a throwaway state folder, so rotation touches nothing real."""
    settings.STATE_DIR = tmp_path
    (tmp_path / "secrets").mkdir()
    settings.CONSENTRY_AUDIT_SIGNING_KEY = ed25519_pem()
    (tmp_path / "secrets" / "consentry_audit_signing_key").write_text(settings.CONSENTRY_AUDIT_SIGNING_KEY)
    keyring.cache_clear()
    yield
    keyring.cache_clear()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


ALL_REGIONS = AuditAccess(can_audit=True, all_regions=True)


def build_export(user, *, filters: EntryFilters | None = None, format: str = "jsonl", access=ALL_REGIONS):
    """Request and build an export in-process, as the Celery task would."""
    export = export_request(user=user, access=access, filters=filters or EntryFilters(), format=format)
    return export_build(export_id=export.id)

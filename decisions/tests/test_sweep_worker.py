"""The shredding sweep under a real Celery worker on Redis and PostgreSQL: kills and broker outages.

The worker runs as a separate process against the test database. Killed with
SIGKILL at random points, its sweep (acknowledged late) is delivered again
after Redis's visibility timeout and finishes: no overdue key is left, none
is destroyed twice, each destroyed key has exactly one audit entry, and no
key within retention is touched. With the broker down, a committed
withdrawal still waits in the outbox and reaches the feed and the sweep once
the broker is back.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db.models import Count
from django.utils import timezone
from kombu.exceptions import OperationalError

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw
from consentry import outbox
from consentry.celery import app
from consentry.models import OutboxMessage
from consentry.outbox import Topic
from consentry.tests.workers import require_redis, start_worker, stop_worker, wait_for
from decisions.datakeys import data_keys_for_grant, new_key_id
from decisions.kms import key_encryption_key
from decisions.models import DataKey, DestroyedKey, RevocationEvent
from decisions.tests.conftest import PURPOSE, build_decision_policy, grant_consent
from governance import services as gov
from governance.models import DataCategory, Region

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REDIS_URL = os.environ.get("CONSENTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
UNREACHABLE_BROKER = "redis://127.0.0.1:9/7"
VISIBILITY_TIMEOUT = 3
EMPLOYEES = 100
DAYS = 100  # EMPLOYEES × DAYS keys


def _start_worker(*, queue: str, log: Path):
    env = {
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        # Small batches: a kill lands mid-sweep, between or inside transactions.
        "CONSENTRY_KEY_SWEEP_BATCH": "25",
    }
    return start_worker(queue=queue, broker_url=REDIS_URL, log=log, env=env)


def _send(task: str, queue: str, broker_url: str = REDIS_URL) -> None:
    with app.connection_for_write(broker_url) as broker:
        app.send_task(task, queue=queue, connection=broker, retry=False)


def _seed(today) -> tuple[set[str], set[str]]:
    """EMPLOYEES × DAYS keys: half the employees in California (10-day retention), half in Washington (30)."""
    build_decision_policy()
    gov.retention_save(
        category=DataCategory.objects.get(pk="keystrokes"),
        region=Region.objects.get(pk="US-CA"),
        raw_retention_days=10,
        delete_on_withdrawal_days=7,
        delete_on_termination_days=30,
        actor=SYSTEM,
    )
    kek = key_encryption_key()
    overdue: set[str] = set()
    kept: set[str] = set()
    rows: list[DataKey] = []
    for index in range(EMPLOYEES):
        subdivision, raw = ("US-CA", 10) if index % 2 else ("US-WA", 30)
        employee = make_employee(country="US", subdivision=subdivision)
        for offset in range(DAYS):
            day = today - timedelta(days=offset)
            key_id = new_key_id()
            rows.append(
                DataKey(
                    id=key_id,
                    employee=employee,
                    category="keystrokes",
                    day=day,
                    purposes=[PURPOSE],
                    country="US",
                    subdivision=subdivision,
                    wrapped=kek.wrap(secrets.token_bytes(32), key_id=key_id),
                    master_version=kek.version,
                    created_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                )
            )
            # Due once the day's end plus the limit has passed.
            (overdue if offset >= raw + 1 else kept).add(key_id)
    DataKey.objects.bulk_create(rows, batch_size=2000)
    return overdue, kept


def test_a_sweep_killed_at_random_points_finishes_without_losing_or_repeating_anything(tmp_path):
    require_redis(REDIS_URL)
    # Not right before midnight: the expected sets are computed for today.
    now = timezone.now()
    if now.hour == 23 and now.minute >= 55:
        pytest.skip("too close to midnight UTC")
    overdue, kept = _seed(now.date())
    assert len(overdue) + len(kept) == EMPLOYEES * DAYS
    queue = f"keys-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    rng = random.Random(os.environ.get("CONSENTRY_TEST_SEED", "7keys"))

    worker = _start_worker(queue=queue, log=log)
    try:
        _send("decisions.data_key_sweep", queue)
        for kill in range(3):
            target = rng.randint(len(overdue) * (kill + 1) // 5, len(overdue) * (kill + 2) // 5)

            def reached(target: int = target) -> bool:
                return DestroyedKey.objects.count() >= target

            wait_for(
                reached,
                timeout=240,
                what=f"{target} destroyed keys",
                log=log,
            )
            # A random moment: mid-batch as often as between batches.
            time.sleep(rng.random() * 0.2)
            stop_worker(worker, signal.SIGKILL)
            assert DestroyedKey.objects.count() < len(overdue), "the sweep finished before the kill"
            time.sleep(VISIBILITY_TIMEOUT + 1)
            worker = _start_worker(queue=queue, log=log)
        wait_for(
            lambda: not DataKey.objects.filter(pk__in=overdue).exists(),
            timeout=300,
            what="the sweep to finish",
            log=log,
        )
    finally:
        stop_worker(worker)

    destroyed = set(DestroyedKey.objects.values_list("key_id", flat=True))
    assert destroyed == overdue
    assert set(DataKey.objects.values_list("id", flat=True)) == kept
    entries = AuditEntry.objects.filter(event_type=EventType.DATA_KEY_DESTROYED)
    per_key = entries.values("object_id").annotate(n=Count("seq"))
    assert entries.count() == len(overdue)
    assert {row["object_id"] for row in per_key} == overdue and {row["n"] for row in per_key} == {1}
    # Every revocation the batches published went out with them.
    assert OutboxMessage.objects.filter(topic=Topic.KEYS_DESTROYED).count() >= EMPLOYEES


def test_a_withdrawal_during_a_broker_outage_reaches_the_feed_and_the_sweep_once_it_is_back(tmp_path, monkeypatch):
    require_redis(REDIS_URL)
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA")
    now = timezone.now()
    grant_consent(employee, "keystrokes", at=now - timedelta(days=10))
    key = data_keys_for_grant(employee=employee, categories=["keystrokes"], purpose=PURPOSE, at=now - timedelta(days=9))
    queue = f"keys-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    # As if this process crashed right after the commit: only the periodic relay (a Celery task) delivers.
    monkeypatch.setattr(outbox, "_kick", lambda: None)

    # The broker is down: the withdrawal commits anyway and waits in the outbox.
    with pytest.raises(OperationalError):
        _send("consentry.outbox_relay", queue, broker_url=UNREACHABLE_BROKER)
    consent_withdraw(
        employee=employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM, at=now - timedelta(days=8)
    )
    with pytest.raises(OperationalError):
        _send("decisions.data_key_sweep", queue, broker_url=UNREACHABLE_BROKER)
    message = OutboxMessage.objects.get(topic=Topic.CONSENT_WITHDRAWN)
    assert message.delivered_at is None and not RevocationEvent.objects.exists()
    assert DataKey.objects.filter(pk=key["keystrokes"].key_id).exists()

    # The broker is back: beat's next relay and sweep get through to a worker.
    worker = _start_worker(queue=queue, log=log)
    try:
        _send("consentry.outbox_relay", queue)
        wait_for(
            lambda: RevocationEvent.objects.filter(type="consent_withdrawn").exists(),
            timeout=60,
            what="the withdrawal on the feed",
            log=log,
        )
        _send("decisions.data_key_sweep", queue)
        wait_for(lambda: DestroyedKey.objects.exists(), timeout=60, what="the sweep", log=log)
        # The sweep's revocations go out with beat's next periodic relay.
        _send("consentry.outbox_relay", queue)
        wait_for(
            lambda: RevocationEvent.objects.filter(type="keys_destroyed").exists(),
            timeout=60,
            what="keys_destroyed on the feed",
            log=log,
        )
    finally:
        stop_worker(worker)
    assert DestroyedKey.objects.get().reason == "withdrawal"
    event = RevocationEvent.objects.get(type="keys_destroyed")
    assert event.keys == [key["keystrokes"].key_id]

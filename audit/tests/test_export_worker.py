"""An export job survives its Celery worker being killed mid-way (real worker, Redis, PostgreSQL).

The worker runs as a separate process against the test database and a Redis
broker. Once the job reports progress, the worker is killed with SIGKILL:
the task was acknowledged late, so Redis still holds it; after the broker's
visibility timeout a new worker gets it again, rebuilds the bundle from
scratch and completes. The bundle then verifies with both verifiers.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from consentry_client import verify as standalone
from django.conf import settings

from audit import services
from audit.models import AuditEntry, AuditExport, EventType, ExportStatus
from audit.selectors import EntryFilters
from audit.services import checkpoint_create, export_request
from audit.tests.conftest import ALL_REGIONS, LATE_CHECKPOINTS_ALLOWED, seed_chain
from audit.verifiers import verify_bundle
from conftest import make_user
from consentry.celery import app
from consentry.signing import jwks
from consentry.tests.workers import require_redis, start_worker, stop_worker, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REDIS_URL = os.environ.get("CONSENTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/4")
VISIBILITY_TIMEOUT = 3
ENTRIES = 30_000


def _start_worker(*, queue: str, media: Path, log: Path):
    env = {
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
        "CONSENTRY_MEDIA_DIR": str(media),
        "CONSENTRY_AUDIT_SIGNING_KEY": settings.CONSENTRY_AUDIT_SIGNING_KEY,
        # The worker states its allowance in the bundle: as wide as the tests' own, for entries months old.
        **{name: str(value) for name, value in LATE_CHECKPOINTS_ALLOWED.items()},
    }
    return start_worker(queue=queue, broker_url=REDIS_URL, log=log, env=env)


def test_an_export_whose_worker_is_killed_mid_way_is_redelivered_and_completes(settings, tmp_path, monkeypatch):
    require_redis(REDIS_URL)
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    queue = f"audit-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    seed_chain(ENTRIES)
    checkpoint_create()

    def send_to_redis(export_id) -> None:
        # The same hop as in production (on commit, to the broker), pointed at this test's queue.
        with app.connection_for_write(REDIS_URL) as broker:
            app.send_task("audit.export_build", args=[str(export_id)], queue=queue, connection=broker)

    monkeypatch.setattr(services, "_enqueue_export", send_to_redis)
    export = export_request(user=make_user("ada"), access=ALL_REGIONS, filters=EntryFilters(), format="jsonl")

    def job():
        return AuditExport.objects.values("status", "progress", "attempts").get(pk=export.pk)

    worker = _start_worker(queue=queue, media=media, log=log)
    try:
        wait_for(lambda: 5 <= job()["progress"] < 80, timeout=120, what="the export to get going", log=log)
        stop_worker(worker, signal.SIGKILL)
        killed = job()
        assert killed["status"] == ExportStatus.RUNNING and killed["progress"] < 100, killed
        time.sleep(VISIBILITY_TIMEOUT + 1)
        worker = _start_worker(queue=queue, media=media, log=log)
        wait_for(lambda: job()["status"] == ExportStatus.DONE, timeout=180, what="the retried export", log=log)
    finally:
        stop_worker(worker)

    done = AuditExport.objects.get(pk=export.pk)
    assert done.attempts == 2 and done.progress == 100 and done.entry_count == ENTRIES + 1
    assert AuditEntry.objects.filter(event_type=EventType.AUDIT_EXPORT_COMPLETED, object_id=str(export.pk)).count() == 1
    bundle = Path(done.file.path)
    assert verify_bundle(bundle).ok
    result = standalone.verify_bundle(bundle, jwks=jwks())
    assert result.ok, result.findings
    assert result.entries == ENTRIES + 1

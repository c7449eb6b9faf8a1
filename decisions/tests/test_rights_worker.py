"""Rights requests through a real Celery worker (separate process, Redis broker, PostgreSQL).

The request commits, the after-commit hop sends the job to Redis, and a
worker process, the way production runs it, builds the copy and carries out
the erasure against the same database.
"""

from __future__ import annotations

import io
import json
import os
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import make_employee, make_user
from consentry.celery import app
from consentry.tests.workers import require_redis, start_worker, stop_worker, wait_for
from decisions import rights
from decisions.models import RightsRequest, RightsStatus
from decisions.tests.conftest import build_decision_policy, grant_consent

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
REDIS_URL = os.environ.get("CONSENTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TASKS = {"access": "decisions.rights_access_build", "erasure": "decisions.rights_erasure"}


def _start_worker(*, queue: str, media: Path, log: Path):
    env = {"CONSENTRY_MEDIA_DIR": str(media), "CONSENTRY_AUDIT_SIGNING_KEY": settings.CONSENTRY_AUDIT_SIGNING_KEY}
    return start_worker(queue=queue, broker_url=REDIS_URL, log=log, env=env)


def test_a_worker_builds_the_copy_and_carries_out_the_erasure(settings, tmp_path, monkeypatch):
    require_redis(REDIS_URL)
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    queue = f"rights-test-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"

    def send_to_redis(kind: str, request_id) -> None:
        # The same hop as in production (on commit, to the broker), pointed at this test's queue.
        with app.connection_for_write(REDIS_URL) as broker:
            app.send_task(TASKS[kind], args=[str(request_id)], queue=queue, connection=broker)

    monkeypatch.setattr(rights, "_enqueue", send_to_redis)
    build_decision_policy()
    employee = make_employee(country="US", subdivision="US-WA", user=make_user("wanda"))
    grant_consent(employee, "keystrokes")
    actor = Actor.for_user(employee.user)

    def status(pk) -> str:
        return RightsRequest.objects.values_list("status", flat=True).get(pk=pk)

    worker = _start_worker(queue=queue, media=media, log=log)
    try:
        copy, _ = rights.rights_request_access(employee=employee, user=employee.user, actor=actor)
        wait_for(lambda: status(copy.pk) == RightsStatus.COMPLETED, timeout=120, what="the copy", log=log)
        copy.refresh_from_db()
        archive = zipfile.ZipFile(io.BytesIO((media / copy.file.name).read_bytes()))
        assert json.loads(archive.read("data.json"))["employee"]["hr_id"] == employee.hr_id
        erasure, _ = rights.rights_request_erasure(employee=employee, user=employee.user, actor=actor)
        wait_for(lambda: status(erasure.pk) == RightsStatus.COMPLETED, timeout=120, what="the erasure", log=log)
    finally:
        stop_worker(worker)

    copy.refresh_from_db()
    assert copy.progress == 100 and copy.attempts == 1
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ACCESS_COMPLETED, object_id=str(copy.pk)).count() == 1
    # The erasure deleted the copy after commit, in the worker.
    assert copy.file.name == "" and not (media / rights.export_name(copy.pk)).exists()
    done = RightsRequest.objects.get(pk=erasure.pk)
    assert done.result["stopped"]["consent"] == 1 and done.result["deleted"]["access_exports"] == 1
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ERASURE_COMPLETED).count() == 1

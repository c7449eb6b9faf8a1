"""Work enqueued after commit: a broker outage never turns a committed request into a 500.

An audit export or a rights request commits its job row, then hands the job
to the broker. With the broker down the request still answers 202 and the
row waits; once the broker is back, the periodic sweep enqueues the job and a
real worker runs it. The broker here is really down (a closed port) and then
really up (Redis), and the tests are transactional so after-commit work runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditExport, ExportStatus
from audit.tasks import export_sweep
from conftest import build_small_policy, make_employee, make_user
from consentry.aftercommit import after_commit
from consentry.celery import app
from consentry.tests.dependencies import require
from consentry.tests.workers import start_worker, stop_worker, wait_for
from decisions.models import RightsRequest, RightsStatus
from decisions.tasks import rights_sweep

BROKER_DOWN = "redis://127.0.0.1:1/0"
# A database of its own: the worker below consumes the default queue, which other tests leave alone.
REDIS_URL = os.environ.get("CONSENTRY_TEST_OUTAGE_REDIS_URL", "redis://127.0.0.1:6379/12")


@contextlib.contextmanager
def celery_broker(url: str, monkeypatch):
    """Send this process's tasks to ``url`` for a while, as if CELERY_BROKER_URL said so."""
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    keys = ("broker_url", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}

    def fresh_connections() -> None:
        # Celery keeps its connection pools per app; they were opened for the previous URL.
        # Private to Celery, so absent from its stubs.
        app._pool = None  # type: ignore[attr-defined]
        app.amqp._producer_pool = None  # type: ignore[attr-defined]

    app.conf.update(broker_url=url, broker_transport_options={})
    fresh_connections()
    try:
        yield
    finally:
        app.conf.update(saved)
        fresh_connections()


@pytest.fixture
def callers(db):
    build_small_policy()
    auditor = APIClient()
    auditor.force_authenticate(make_user("root", is_superuser=True, is_staff=True))
    employee = APIClient()
    employee.force_authenticate(make_employee(country="US", subdivision="US-NY", user=make_user("nina")).user)
    return auditor, employee


def request_both(auditor: APIClient, employee: APIClient):
    export = auditor.post("/api/v1/audit/exports", {"format": "jsonl"}, format="json")
    rights = employee.post("/api/v1/me/rights-requests", {"kind": "access"}, format="json")
    return export, rights


@pytest.mark.django_db(transaction=True)
def test_requests_that_committed_answer_202_while_the_broker_is_down(callers, monkeypatch, caplog):
    caplog.set_level(logging.WARNING)
    with celery_broker(BROKER_DOWN, monkeypatch):
        export, rights = request_both(*callers)
    assert export.status_code == 202, export.content[:500]
    assert rights.status_code == 202, rights.content[:500]
    assert AuditExport.objects.get(pk=export.json()["id"]).status == ExportStatus.PENDING
    assert RightsRequest.objects.get(pk=rights.json()["id"]).status == RightsStatus.RECEIVED
    failures = [r.getMessage() for r in caplog.records if r.name == "consentry.aftercommit"]
    assert len(failures) == 2 and all("failed after commit" in line for line in failures), failures
    assert not any(r.exc_info for r in caplog.records if r.name == "consentry.aftercommit")


@pytest.mark.django_db(transaction=True)
def test_an_unexpected_failure_after_commit_is_logged_with_its_traceback_and_the_change_stands(db, caplog):
    def broken() -> None:
        raise ValueError("a bug in the side effect")

    with transaction.atomic():
        make_user("grace")
        after_commit(broken, what="notify something")
    assert get_user_model().objects.filter(username="grace").exists()
    (line,) = [r for r in caplog.records if r.name == "consentry.aftercommit"]
    assert "notify something failed after commit" in line.getMessage() and line.exc_info


@pytest.mark.django_db(transaction=True)
def test_after_commit_runs_nothing_when_the_transaction_rolls_back(db):
    ran: list[int] = []
    with contextlib.suppress(RuntimeError), transaction.atomic():
        after_commit(ran.append, 1, what="append")
        raise RuntimeError("roll back")
    assert ran == []


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_jobs_the_broker_outage_missed_run_once_it_returns(callers, monkeypatch, tmp_path):
    import redis

    try:
        broker = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        broker.ping()
    except redis.RedisError:
        broker = None
    require(broker is not None, f"needs Redis at {REDIS_URL}")
    assert broker is not None  # require() has skipped or failed the test otherwise
    media = tmp_path / "media"
    monkeypatch.setattr(settings, "MEDIA_ROOT", media)
    with celery_broker(BROKER_DOWN, monkeypatch):
        export, rights = request_both(*callers)
    assert (export.status_code, rights.status_code) == (202, 202)
    export_id, rights_id = export.json()["id"], rights.json()["id"]

    # Messages left in the default queue by an earlier, interrupted run of this test.
    broker.delete(app.conf.task_default_queue)
    log = tmp_path / "worker.log"
    env = {"CONSENTRY_MEDIA_DIR": str(media), "CONSENTRY_AUDIT_SIGNING_KEY": settings.CONSENTRY_AUDIT_SIGNING_KEY}
    # The sweeps send to the app's default queue, as in production.
    worker = start_worker(queue=app.conf.task_default_queue, broker_url=REDIS_URL, log=log, env=env)
    try:
        # Beat runs the sweeps every few minutes; they pick up jobs idle for two.
        later = time_machine.travel(timezone.now() + timedelta(minutes=3), tick=False)
        with celery_broker(REDIS_URL, monkeypatch), later:
            assert export_sweep() == 1
            assert rights_sweep() == 1

        def finished():
            export_status = AuditExport.objects.values_list("status", flat=True).get(pk=export_id)
            rights_status = RightsRequest.objects.values_list("status", flat=True).get(pk=rights_id)
            return export_status == ExportStatus.DONE and rights_status == RightsStatus.COMPLETED

        wait_for(finished, timeout=120, what="both jobs to run", log=log)
    finally:
        stop_worker(worker)
        broker.delete(app.conf.task_default_queue)
    assert AuditExport.objects.get(pk=export_id).attempts == 1
    assert RightsRequest.objects.get(pk=rights_id).attempts == 1

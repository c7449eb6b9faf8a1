from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditCheckpoint, AuditEntry, AuditExport, EventType, ExportStatus
from audit.selectors import EntryFilters
from audit.services import checkpoint_create, export_build, export_request
from audit.tasks import checkpoint_tick, export_build_task, export_sweep, verify_daily
from audit.tests.conftest import ALL_REGIONS, tamper, write_entries
from conftest import make_user
from consentry.celery import app

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    """Run enqueued tasks inline, as a worker would, without a broker."""
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def test_the_daily_verification_puts_a_clean_result_on_the_ledger():
    write_entries(5)
    checkpoint_create()
    assert verify_daily() is True
    entry = AuditEntry.objects.get(event_type=EventType.AUDIT_VERIFIED)
    assert entry.actor == "system:audit-verify"
    assert entry.payload == {"ok": True, "entries": 5, "size": 5, "checkpoints": 1, "problems": [], "notes": []}


def test_the_daily_verification_records_the_first_problem_when_the_ledger_was_altered():
    write_entries(5)
    checkpoint_create()
    tamper("UPDATE audit_auditentry SET subject = 'E9' WHERE seq = 3")
    assert verify_daily() is False
    entry = AuditEntry.objects.get(event_type=EventType.AUDIT_VERIFICATION_FAILED)
    assert entry.payload["problems"][0].startswith("entry #3: its content does not match")


def test_the_checkpoint_tick_refuses_a_broken_chain_and_says_so_on_the_ledger(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1
    write_entries(3)
    tamper("UPDATE audit_auditentry SET actor = 'user:x' WHERE seq = 2")
    assert checkpoint_tick() is None
    assert not AuditCheckpoint.objects.exists()
    assert AuditEntry.objects.filter(event_type=EventType.AUDIT_VERIFICATION_FAILED).exists()


@pytest.fixture
def job(media):
    write_entries(8)
    return export_request(user=make_user("ada"), access=ALL_REGIONS, filters=EntryFilters(), format="jsonl")


def test_the_export_task_builds_the_bundle(job):
    export_build_task.run(str(job.id))
    job.refresh_from_db()
    assert job.status == ExportStatus.DONE and job.entry_count == 9


def test_running_an_export_twice_completes_it_once(job):
    export_build(export_id=job.id)
    first = AuditExport.objects.get(pk=job.id)
    export_build(export_id=job.id)
    again = AuditExport.objects.get(pk=job.id)
    assert again.sha256 == first.sha256 and again.attempts == 1
    assert AuditEntry.objects.filter(event_type=EventType.AUDIT_EXPORT_COMPLETED).count() == 1


def test_a_job_whose_worker_died_mid_way_is_rebuilt_from_scratch_when_redelivered(job):
    # What a killed worker leaves behind: the job claimed, running, half done.
    export_build(export_id=job.id)
    finished = AuditExport.objects.get(pk=job.id)
    AuditExport.objects.filter(pk=job.id).update(status=ExportStatus.RUNNING, progress=40, file="")
    export_build(export_id=job.id)
    rebuilt = AuditExport.objects.get(pk=job.id)
    assert (rebuilt.status, rebuilt.progress, rebuilt.attempts) == (ExportStatus.DONE, 100, 2)
    # Same checkpoint, same bytes: the retry reproduces the bundle exactly.
    assert rebuilt.sha256 == finished.sha256 and rebuilt.checkpoint_id == finished.checkpoint_id


def test_an_export_over_an_altered_ledger_fails_and_the_failure_is_audited(job):
    tamper("UPDATE audit_auditentry SET subject = 'E9' WHERE seq = 4")
    export_build_task.run(str(job.id))
    job.refresh_from_db()
    assert job.status == ExportStatus.FAILED and "entry #4" in job.error
    assert AuditEntry.objects.filter(event_type=EventType.AUDIT_EXPORT_FAILED, object_id=str(job.id)).exists()


def test_the_sweep_enqueues_jobs_a_broker_outage_lost(job, eager):
    AuditExport.objects.filter(pk=job.id).update(updated_at=timezone.now() - timedelta(minutes=10))
    assert export_sweep() == 1
    assert AuditExport.objects.get(pk=job.id).status == ExportStatus.DONE
    assert export_sweep() == 0


def test_a_fresh_pending_job_is_left_to_its_own_task(job, eager):
    assert export_sweep() == 0
    assert AuditExport.objects.get(pk=job.id).status == ExportStatus.PENDING


def test_beat_schedules_the_ledger_tasks_under_their_registered_names(settings):
    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    ledger = {"audit.checkpoint_tick", "audit.verify_daily", "audit.export_sweep"}
    assert ledger <= scheduled
    assert ledger | {"audit.export_build"} <= set(app.tasks)

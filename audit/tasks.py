"""Celery tasks of the ledger: sealing queued entries, checkpoints, the daily verification, export jobs.

Tasks take ids, call a service, and are safe to run twice: a checkpoint of a
number that exists is skipped, an export rebuilds the same bundle. Export
jobs are acknowledged late, so a worker killed mid-export leaves the message
to be redelivered and the job starts again from scratch.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from consentry_client.verify import NotIntact
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from audit import services
from audit.actors import Actor
from audit.models import AuditExport, ExportStatus
from audit.selectors import checkpoint_due

logger = logging.getLogger(__name__)
EXPORT_RETRIES = 3


@shared_task(name="audit.checkpoint_tick", ignore_result=True, soft_time_limit=600, time_limit=660)
def checkpoint_tick() -> int | None:
    """Sign a checkpoint when enough entries, or old enough ones, are uncovered.

    Its routine runs are not logged (``consentry.log_filters.QUIET_TASKS``); a signed checkpoint is.
    """
    if not checkpoint_due(now=timezone.now()):
        return None
    try:
        checkpoint = services.checkpoint_create()
    except NotIntact as exc:
        # Never sign over a broken chain; the failure goes on the ledger as evidence.
        logger.error("refusing to sign an audit checkpoint: %s", exc)
        services.ledger_verify(actor=Actor.system("audit-checkpoint"))
        return None
    if checkpoint is None:
        return None
    logger.info("signed audit checkpoint %d over %d entries", checkpoint.number, checkpoint.size)
    return checkpoint.number


@shared_task(name="audit.queue_seal", ignore_result=True, soft_time_limit=120, time_limit=150)
def queue_seal() -> int:
    """Chain the entries queued since the last run (``record_queued``).

    Beat runs this every second, so the worker and beat do not log its routine
    runs (``consentry.log_filters.QUIET_TASKS``): it says itself when it sealed something.
    """
    sealed = services.queue_seal()
    if sealed:
        logger.info("sealed %d queued audit entries into the chain", sealed)
    return sealed


@shared_task(name="audit.verify_daily", ignore_result=True, soft_time_limit=3000, time_limit=3600)
def verify_daily() -> bool:
    return services.ledger_verify(actor=Actor.system("audit-verify")).ok


@shared_task(
    bind=True,
    name="audit.export_build",
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=EXPORT_RETRIES,
    soft_time_limit=settings.CONSENTRY_AUDIT_EXPORT_TIME_LIMIT,
    time_limit=settings.CONSENTRY_AUDIT_EXPORT_TIME_LIMIT + 60,
)
def export_build_task(self, export_id: str) -> None:
    job = uuid.UUID(export_id)
    try:
        services.export_build(export_id=job)
    except SoftTimeLimitExceeded:
        services.export_fail(export_id=job, error="The export took longer than its time limit.")
    except NotIntact as exc:
        services.export_fail(export_id=job, error=f"The ledger failed verification: {exc}")
    except (DatabaseError, OSError) as exc:
        if self.request.retries >= EXPORT_RETRIES:
            services.export_fail(export_id=job, error=f"The export failed: {exc}")
            return
        raise self.retry(exc=exc, countdown=10 * 2**self.request.retries) from exc


@shared_task(name="audit.export_sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def export_sweep() -> int:
    """Enqueue again jobs a broker outage lost, or a worker died on past every redelivery."""
    now = timezone.now()
    stale = AuditExport.objects.filter(
        status=ExportStatus.PENDING, updated_at__lt=now - timedelta(minutes=2)
    ) | AuditExport.objects.filter(
        status=ExportStatus.RUNNING,
        updated_at__lt=now - timedelta(seconds=settings.CONSENTRY_AUDIT_EXPORT_TIME_LIMIT + 120),
    )
    ids = list(stale.values_list("id", flat=True)[:100])
    for export_id in ids:
        export_build_task.delay(str(export_id))
    return len(ids)

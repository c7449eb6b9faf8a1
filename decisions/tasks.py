"""Celery tasks of decisions: the data-key shredding sweep, and rights-request jobs.

Tasks take ids (or nothing), call a service, and are safe to run twice.

- ``data_key_sweep`` destroys the data keys that are due (retention,
  withdrawal and termination windows).
- Rights requests: build an access export, carry out an erasure, and a
  sweep. A finished request is left alone, an export is rebuilt from
  scratch, an erasure runs in one transaction. Both jobs are acknowledged
  late, so a worker killed mid-way leaves the message to be redelivered; the
  sweep enqueues again whatever a broker outage lost.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Literal, TypedDict

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from decisions import rights
from decisions.datakeys import sweep_overdue_keys
from decisions.models import RightsKind, RightsRequest, RightsStatus

logger = logging.getLogger(__name__)
RETRIES = 3
LIMIT = settings.CONSENTRY_RIGHTS_TIME_LIMIT


class _JobOptions(TypedDict):
    bind: Literal[True]
    ignore_result: bool
    acks_late: bool
    reject_on_worker_lost: bool
    max_retries: int
    soft_time_limit: int
    time_limit: int


# Both rights jobs: redelivered if a worker dies, bounded in time, retried on transient faults.
RIGHTS_JOB: _JobOptions = {
    "bind": True,
    "ignore_result": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "max_retries": RETRIES,
    "soft_time_limit": LIMIT,
    "time_limit": LIMIT + 60,
}


def _carry_out(task, request_id: str, work, *, what: str, transient: tuple[type[Exception], ...]) -> None:
    """Run one rights job; past its time limit or its last retry, the request fails saying why."""
    job = uuid.UUID(request_id)
    try:
        work(request_id=job)
    except SoftTimeLimitExceeded:
        rights.rights_request_fail(request_id=job, error=f"{what} took longer than its time limit.")
    except transient as exc:
        if task.request.retries >= RETRIES:
            rights.rights_request_fail(request_id=job, error=f"{what} failed: {exc}")
            return
        raise task.retry(exc=exc, countdown=10 * 2**task.request.retries) from exc


@shared_task(name="decisions.rights_access_build", **RIGHTS_JOB)
def rights_access_build_task(self, request_id: str) -> None:
    _carry_out(
        self, request_id, rights.rights_access_build, what="Preparing the copy", transient=(DatabaseError, OSError)
    )


@shared_task(name="decisions.rights_erasure", **RIGHTS_JOB)
def rights_erasure_task(self, request_id: str) -> None:
    _carry_out(self, request_id, rights.rights_erasure_carry_out, what="The erasure", transient=(DatabaseError,))


@shared_task(name="decisions.rights_sweep", ignore_result=True, soft_time_limit=60, time_limit=90)
def rights_sweep() -> int:
    """Enqueue again requests a broker outage lost, or a worker died on past every redelivery."""
    now = timezone.now()
    stale = RightsRequest.objects.filter(
        status=RightsStatus.RECEIVED, updated_at__lt=now - timedelta(minutes=2)
    ) | RightsRequest.objects.filter(status=RightsStatus.RUNNING, updated_at__lt=now - timedelta(seconds=LIMIT + 120))
    found = list(stale.values_list("id", "kind")[:100])
    for request_id, kind in found:
        task = rights_access_build_task if kind == RightsKind.ACCESS else rights_erasure_task
        task.delay(str(request_id))
    return len(found)


@shared_task(
    name="decisions.data_key_sweep",
    ignore_result=True,
    # Acknowledged only after it ran: a killed worker's sweep is delivered again.
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CONSENTRY_KEY_SWEEP_TIME_LIMIT,
    time_limit=settings.CONSENTRY_KEY_SWEEP_TIME_LIMIT + 60,
)
def data_key_sweep() -> int:
    """Destroy the data keys that are due; idempotent, safe to kill and rerun at any point.

    Each batch is its own transaction, so a kill or the soft time limit loses
    at most the batch in flight, which the next run (or the redelivery) redoes.
    It stops on its own a little before the soft limit; beat starts the next run.
    """
    deadline = time.monotonic() + max(settings.CONSENTRY_KEY_SWEEP_TIME_LIMIT - 30, 10)
    try:
        return sweep_overdue_keys(deadline=deadline).total
    except SoftTimeLimitExceeded:
        # The batch in flight rolled back; everything committed before it stays done.
        return 0

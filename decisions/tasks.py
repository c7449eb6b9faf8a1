"""Periodic work on data keys: the shredding sweep (retention, withdrawal and termination windows)."""

from __future__ import annotations

import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from decisions.datakeys import sweep_overdue_keys


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

"""Project-wide periodic tasks."""

from __future__ import annotations

from celery import shared_task

from consentry.idempotency import idempotency_purge


@shared_task(name="consentry.idempotency_purge", ignore_result=True, soft_time_limit=120, time_limit=150)
def purge_idempotency_keys() -> int:
    """Forget Idempotency-Key responses past their retention; idempotent, safe to rerun."""
    return idempotency_purge()

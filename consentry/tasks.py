"""Project-wide periodic tasks."""

from __future__ import annotations

import logging

from celery import shared_task

from consentry.idempotency import idempotency_purge
from consentry.outbox import relay_pending

logger = logging.getLogger(__name__)


@shared_task(name="consentry.idempotency_purge", ignore_result=True, soft_time_limit=120, time_limit=150)
def purge_idempotency_keys() -> int:
    """Forget Idempotency-Key responses past their retention; idempotent, safe to rerun."""
    return idempotency_purge()


@shared_task(name="consentry.outbox_relay", ignore_result=True, soft_time_limit=60, time_limit=90)
def relay_outbox() -> int:
    """Deliver outbox messages the after-commit relay missed (a crash, a failing consumer); idempotent.

    Beat runs this every few seconds, so its routine runs are not logged
    (``consentry.log_filters.QUIET_TASKS``): it says itself when it delivered something.
    """
    delivered = relay_pending()
    if delivered:
        logger.info("relayed %d outbox messages the after-commit relay had missed", delivered)
    return delivered

"""Periodic governance work."""

from __future__ import annotations

import logging

from celery import shared_task

from governance.services import policy_boundaries_announce

logger = logging.getLogger(__name__)


@shared_task(name="governance.policy_boundaries_announce", ignore_result=True, soft_time_limit=60, time_limit=90)
def policy_boundaries_announce_task() -> int:
    """Tell the revocation feed what rules and notices approved earlier have just brought into force.

    Beat runs this every few seconds and it mostly finds nothing, so its routine
    runs are not logged (``consentry.log_filters.QUIET_TASKS``); it says what it announced.
    """
    announced = policy_boundaries_announce()
    if announced:
        logger.info("announced %d rule or notice boundaries on the revocation feed", announced)
    return announced

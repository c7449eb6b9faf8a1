"""Periodic governance work."""

from __future__ import annotations

from celery import shared_task

from governance.services import policy_boundaries_announce


@shared_task(name="governance.policy_boundaries_announce", ignore_result=True, soft_time_limit=60, time_limit=90)
def policy_boundaries_announce_task() -> int:
    """Tell the revocation feed what rules and notices approved earlier have just brought into force."""
    return policy_boundaries_announce()

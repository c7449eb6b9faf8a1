"""Periodic governance work."""

from __future__ import annotations

from celery import shared_task

from governance.services import rule_boundaries_announce


@shared_task(name="governance.rule_boundaries_announce", ignore_result=True, soft_time_limit=60, time_limit=90)
def rule_boundaries_announce_task() -> int:
    """Tell the revocation feed about rule periods that began or ended since the last run."""
    return rule_boundaries_announce()

"""Periodic consent jobs. Tasks take ids or nothing, call a service, and are idempotent."""

from __future__ import annotations

from celery import shared_task

from consent.services import consent_expire_due


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def expire_consents() -> int:
    """Expire consents past their purpose's validity; safe to kill and rerun."""
    total = 0
    while True:
        done = consent_expire_due(limit=500)
        total += done
        if done == 0:
            return total

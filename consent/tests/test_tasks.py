"""The expiry sweep, run in-process and by a real Celery worker on the embedded broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.actors import Actor
from conftest import build_small_policy, make_employee
from consent.models import ConsentState
from consent.services import consent_grant
from consent.tasks import expire_consents

ACTOR = Actor.system("tests")


def _grant_one():
    policy = build_small_policy()
    employee = make_employee(country="US", subdivision="US-CA")
    consent_grant(
        employee=employee, notice=policy["notice"], choices=[("ai_agent_training", "keystrokes")], actor=ACTOR
    )
    return employee


@pytest.mark.django_db
def test_the_sweep_expires_each_lapsed_consent_once():
    employee = _grant_one()
    with time_machine.travel(timezone.now() + timedelta(days=366)):
        assert expire_consents() == 1
        assert expire_consents() == 0
    assert ConsentState.objects.get(employee=employee).state == "expired"


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_on_the_embedded_broker_runs_the_sweep(tmp_path):
    """Not eager mode: the task goes through the filesystem broker to a worker process."""
    employee = _grant_one()
    ConsentState.objects.filter(employee=employee).update(expires_at=timezone.now() - timedelta(seconds=1))
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": "filesystem://",
        "CONSENTRY_STATE_DIR": str(settings.STATE_DIR),
    }
    root = Path(settings.BASE_DIR)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "consentry", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        expire_consents.delay()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ConsentState.objects.get(employee=employee).state == "expired":
                break
            time.sleep(0.5)
        assert ConsentState.objects.get(employee=employee).state == "expired"
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _database_url() -> str:
    params = connection.settings_dict
    return f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"

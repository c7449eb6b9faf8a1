"""Real Celery workers for tests: a separate worker process on a Redis broker and this test run's database.

The tests that use them check what only a real worker shows: late
acknowledgement and redelivery after a SIGKILL, time limits, and the
after-commit hop to the broker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from consentry.tests.dependencies import require


def require_redis(url: str) -> None:
    """Redis answers at ``url``, or the test skips (fails under CI)."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        require(False, f"no Redis at {url}")


def shared_database_url() -> str:
    """A DATABASE_URL that points another process at this test run's database."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    host = params.get("HOST") or "127.0.0.1"
    port = params.get("PORT") or 5432
    user = params.get("USER") or "postgres"
    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"


def start_worker(*, queue: str, broker_url: str, log: Path, env: Mapping[str, str] = {}) -> subprocess.Popen:
    """A solo-pool worker consuming ``queue``, in its own process group, writing to ``log``."""
    environment = {
        **os.environ,
        "DATABASE_URL": shared_database_url(),
        "CELERY_BROKER_URL": broker_url,
        "CONSENTRY_STATE_DIR": str(settings.STATE_DIR),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-m", "celery", "-A", "consentry", "worker", "--pool", "solo", "-Q", queue]
    command += ["--without-heartbeat", "--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=settings.BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_worker(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=30)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, log: Path) -> Any:
    """Poll ``condition`` until it gives something truthy (returned); past ``timeout``, fail with the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; worker log:\n{log.read_text()[-3000:]}")

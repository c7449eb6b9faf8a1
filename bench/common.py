"""Shared set-up for the decision benchmarks: a throwaway database, a gunicorn server, measurements.

Benchmarks are not tests: they print figures beside a baseline measured in
the same run and never fail on a time. Everything runs on loopback, with
bounded loops and a fixed duration.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/consentry_bench"


def bench_environment(database_url: str | None = None) -> dict[str, str]:
    """Environment for the bench process and its server: own state folder and database, production flags."""
    state = ROOT / ".state" / "bench"
    return {
        **os.environ,
        "DATABASE_URL": database_url or os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        "CONSENTRY_STATE_DIR": str(state),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "ERROR",
        "PYTHONPATH": str(ROOT),
    }


def setup_django(database_url: str | None = None, *, fresh: bool = True) -> None:
    """Point this process at the bench database (recreated when ``fresh``), migrate, and load the default pack."""
    env = bench_environment(database_url)
    os.environ.update({key: env[key] for key in ("DATABASE_URL", "CONSENTRY_STATE_DIR", "DJANGO_SETTINGS_MODULE")})
    os.environ.update({"DJANGO_DEBUG": "false", "DJANGO_SECURE_SSL_REDIRECT": "false", "LOG_LEVEL": "ERROR"})
    sys.path.insert(0, str(ROOT))
    if fresh:
        _recreate_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if fresh:
        call_command("load_policy_pack", verbosity=0)


def _recreate_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres".replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(*, workers: int, threads: int = 1, timeout: int = 300) -> Iterator[tuple[int, subprocess.Popen]]:
    """A gunicorn server for the bench settings on a free loopback port; stopped on exit."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "consentry.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        str(timeout),
        "--log-level",
        "warning",
    ]
    env = {**bench_environment(os.environ.get("DATABASE_URL")), "DATABASE_CONN_MAX_AGE": "600"}
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield port, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int | None = None) -> float:
    for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(fraction * len(sorted_values)))
    return sorted_values[index]

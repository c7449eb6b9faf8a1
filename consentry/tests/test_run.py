"""run.py, the one command that sets up and runs the platform: its ``manage`` subcommand and start-up helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import run

ROOT = Path(__file__).resolve().parents[2]


def run_py(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSENTRY_STATE_DIR": str(state_dir), "DJANGO_DEBUG": "false"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "run.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_run_py_manage_runs_a_management_command_in_the_virtualenv(tmp_path):
    result = run_py("manage", "check", state_dir=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_run_py_manage_passes_the_commands_exit_status_through(tmp_path):
    result = run_py("manage", "load_policy_pack", "--check", str(tmp_path / "missing.yaml"), state_dir=tmp_path)

    assert result.returncode == 1
    assert "missing.yaml: cannot be read" in result.stderr


def test_wait_for_port_returns_once_the_port_accepts_connections():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        started = time.monotonic()

        run.wait_for_port(server.getsockname()[1], timeout=5)

        assert time.monotonic() - started < 2


def test_wait_for_port_gives_up_after_its_timeout_on_a_closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there

    with pytest.raises(run.StartupFailed, match=f"did not answer on 127.0.0.1:{port} within 0.5 seconds"):
        run.wait_for_port(port, timeout=0.5, interval=0.1)


def test_wait_for_port_stops_waiting_when_the_web_process_dies():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dying = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    started = time.monotonic()

    with pytest.raises(run.StartupFailed, match="exited with status 3 before it answered"):
        run.wait_for_port(port, process=dying, timeout=30)

    assert time.monotonic() - started < 10

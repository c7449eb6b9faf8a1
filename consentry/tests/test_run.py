"""run.py, the one command that sets up and runs the platform: its ``manage`` subcommand and start-up helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

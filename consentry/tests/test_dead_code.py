"""No dead code: vulture finds nothing unused that vulture_whitelist.py does not explain."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The server's apps and the client package; tests and migrations are not product code.
SCANNED = ["audit", "consent", "consentry", "decisions", "governance", "people", "client/consentry_client"]
# 60 is vulture's lowest confidence: it also reports unused functions, classes and attributes, not only
# the unused imports and unreachable code that it is sure of.
MIN_CONFIDENCE = "60"


def test_vulture_finds_no_unused_code_outside_the_whitelist():
    found = subprocess.run(
        [
            sys.executable,
            "-m",
            "vulture",
            *SCANNED,
            "vulture_whitelist.py",
            "--exclude",
            "*/tests/*,*/migrations/*",
            "--min-confidence",
            MIN_CONFIDENCE,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Exit 3 is "dead code found"; anything else but 0 is a usage error, shown by stderr.
    assert found.returncode == 0, (
        "Delete the unused code, or add the name to vulture_whitelist.py with the reason it is used:\n"
        + found.stdout
        + found.stderr
    )

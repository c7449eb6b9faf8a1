"""Tests that need a real component (Redis, PostgreSQL tools, Chromium, Xvfb) ask for it here.

A missing component skips the test on a developer's machine, so the rest of
the suite still runs there, and fails it under ``CI=true``: in CI a skipped
test of a fault or a browser proves nothing, and the component must be set up.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(available: bool, reason: str) -> None:
    """Go on when ``available``; otherwise skip, or fail under CI, saying what is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: this test must run, so install or start what it needs)")
    pytest.skip(reason)

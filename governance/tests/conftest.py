"""Fixtures for the policy administration API tests."""

from __future__ import annotations

import pytest

from governance.tests.personas import build_cast


@pytest.fixture
def cast(small_policy):
    return build_cast(small_policy["regions"])

"""Fixtures for the policy administration API tests."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from governance.tests.personas import build_cast


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Throttle counters live in the cache; ids repeat between tests on SQLite.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def cast(small_policy):
    return build_cast(small_policy["regions"])

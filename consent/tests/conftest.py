"""Fixtures for the self-service API tests: API clients signed in as the personas."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Throttle counters live in the cache; ids repeat between tests on SQLite.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def nina_api(ny_employee):
    client = APIClient()
    client.force_authenticate(user=ny_employee.user)
    return client

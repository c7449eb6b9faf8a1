"""Fixtures for the self-service API tests: the same ten personas as the policy API's."""

from __future__ import annotations

from governance.tests.conftest import cast  # noqa: F401 - re-exported fixture

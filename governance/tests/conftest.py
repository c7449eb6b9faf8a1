"""Fixtures for governance tests: the API's ten personas (``cast``) and the legal console's.

The console personas: a US legal user, an EU legal user, and approvers.
"""

from __future__ import annotations

import pytest

from conftest import make_user
from consentry.tests.roles import make_approver, make_legal
from governance.tests.personas import build_cast


@pytest.fixture
def cast(small_policy):
    return build_cast(small_policy["regions"])


@pytest.fixture
def us_legal(small_policy):
    regions = small_policy["regions"]
    return make_legal(make_user("lena"), regions["US"], regions["US-NY"], regions["US-CA"])


@pytest.fixture
def eu_legal(small_policy):
    regions = small_policy["regions"]
    return make_legal(make_user("elias"), regions["EU"], regions["DE"], regions["FR"])


@pytest.fixture
def us_approver(small_policy):
    """A second legal user who may also approve US rules."""
    regions = small_policy["regions"]
    return make_approver(make_legal(make_user("ada"), regions["US"]), regions["US"], regions["US-NY"])


@pytest.fixture
def global_approver(small_policy):
    return make_approver(make_user("otto"))

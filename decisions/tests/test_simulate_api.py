from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from conftest import POLICY_START, SYSTEM, make_employee, make_user
from consent.services import consent_withdraw, pause_start
from decisions.models import CaptureGrant
from decisions.tests.conftest import PURPOSE, bearer, capture, codes, device_client, grant_consent, pipeline_client
from governance.models import Region
from people.tokens import token_issue

pytestmark = pytest.mark.django_db
SIMULATE = "/api/v1/simulate"


def simulate(api: APIClient, employee, *categories, **extra):
    body = {"employee": employee.hr_id, "purpose": PURPOSE, "categories": list(categories) or ["keystrokes"]}
    return api.post(SIMULATE, {**body, **extra}, format="json")


def session(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def legal_us(policy, legal):
    assign_perm("governance.manage_region_policy", legal, Region.objects.get(code="US"))
    return legal


def test_legal_simulates_for_an_employee_in_their_region_without_a_grant(legal_us, us_employee):
    response = simulate(session(legal_us), us_employee, "keystrokes", "screenshots")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["simulated"] is True and body["grant"] is None
    assert body["categories"]["keystrokes"]["allowed"] and body["employee"] == us_employee.hr_id
    assert not CaptureGrant.objects.exists()


def test_a_simulation_never_reveals_the_employee_s_own_choices(legal_us, us_employee):
    grant_consent(us_employee, "keystrokes")
    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    body = simulate(session(legal_us), us_employee, "keystrokes", "screenshots").json()

    # Withdrawn and never asked look the same: both are assumed consented.
    assert body["categories"]["keystrokes"] == body["categories"]["screenshots"] == {"allowed": True, "reasons": []}
    assert "consent_version" not in body
    assert "consent_granted_under_current_notice" in body["assumptions"]


def test_a_simulation_says_it_assumes_consent_and_no_pause(legal_us, us_employee):
    grant_consent(us_employee, "keystrokes")
    pause_start(employee=us_employee, until=timezone.now() + timedelta(hours=1), actor=SYSTEM)
    real = capture(device_client(us_employee), "keystrokes")

    body = simulate(session(legal_us), us_employee, "keystrokes").json()

    assert codes(real, "keystrokes") == ["paused_by_employee"]
    assert body["categories"]["keystrokes"]["allowed"] is True
    assert body["assumptions"] == ["consent_granted_under_current_notice", "not_paused"]


def test_a_simulation_evaluates_the_policy_at_the_given_time(legal_us, us_employee):
    before = POLICY_START.replace(year=2025).isoformat()
    body = simulate(session(legal_us), us_employee, at=before).json()
    assert body["categories"]["keystrokes"]["reasons"][0]["code"] == "jurisdiction_unknown"
    assert body["evaluated_at"].startswith("2025-01-01")


def test_legal_is_refused_for_employees_outside_their_regions(legal_us, de_employee):
    response = simulate(session(legal_us), de_employee)
    assert response.status_code == 403 and response.json()["code"] == "out_of_scope"


def test_a_group_permission_covers_its_member_countries(policy, legal, de_employee):
    assign_perm("governance.approve_region_policy", legal, Region.objects.get(code="EU"))
    body = simulate(session(legal), de_employee).json()
    assert body["categories"]["keystrokes"]["reasons"][0]["code"] == "jurisdiction_blocked"


def test_a_global_permission_covers_everyone(policy, legal, de_employee):
    legal.user_permissions.add(Permission.objects.get(codename="manage_region_policy"))
    assert simulate(session(legal), de_employee).status_code == 200


def test_an_unknown_employee_is_not_found_for_legal(legal_us):
    response = session(legal_us).post(
        SIMULATE, {"employee": "E404", "purpose": PURPOSE, "categories": ["keystrokes"]}, format="json"
    )
    assert response.status_code == 404


def test_simulation_permission_matrix(policy, legal_us, us_employee):
    assert simulate(APIClient(), us_employee).status_code in (401, 403)
    # Someone with no policy role cannot even learn whether an employee exists.
    outsider = make_user("nosy")
    assert simulate(session(outsider), us_employee).status_code == 403
    assert simulate(session(outsider), make_employee(hr_id="E777")).json()["code"] == "not_legal"
    # The employee themself is not legal either.
    employee_user = make_user("emp")
    assert simulate(session(employee_user), us_employee).status_code == 403
    # Machine tokens cannot simulate.
    assert simulate(device_client(us_employee).api, us_employee).status_code == 403
    assert simulate(pipeline_client().api, us_employee).status_code == 403
    # A user token acts as its person.
    _, raw = token_issue(kind="user", name="legal", user=legal_us, actor=SYSTEM)
    assert simulate(bearer(raw), us_employee).status_code == 200


def test_an_unknown_category_is_invalid_input(legal_us, us_employee):
    response = simulate(session(legal_us), us_employee, "brainwaves")
    assert response.status_code == 422 and "categories" in response.json()["errors"]


@pytest.mark.parametrize("at", ["2026-11-21T09:30:00", "yesterday", "9999-01-01T00:00:00Z", 1700000000])
def test_a_naive_or_absurd_time_is_invalid_input(legal_us, us_employee, at):
    response = simulate(session(legal_us), us_employee, at=at)
    assert response.status_code == 422 and "at" in response.json()["errors"]


def simulate_once(api: APIClient, employee, key: str, *categories):
    """A simulation sent with an Idempotency-Key."""
    body = {"employee": employee.hr_id, "purpose": PURPOSE, "categories": list(categories) or ["keystrokes"]}
    return api.post(SIMULATE, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_simulation_retried_with_the_same_key_and_body_replays_the_first_answer(legal_us, us_employee):
    api = session(legal_us)

    first = simulate_once(api, us_employee, "sim-1")
    again = simulate_once(api, us_employee, "sim-1")

    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in first and again["Idempotent-Replayed"] == "true"
    # A fresh run would have its own decision id and evaluation time: this is the first answer.
    assert again.json() == first.json()
    assert simulate(api, us_employee).json()["decision_id"] != first.json()["decision_id"]


def test_a_simulation_key_reused_for_another_body_is_refused(legal_us, us_employee):
    api = session(legal_us)
    simulate_once(api, us_employee, "sim-1", "keystrokes")

    response = simulate_once(api, us_employee, "sim-1", "screenshots")

    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"


def test_a_refused_simulation_is_replayed_as_refused(legal_us, de_employee):
    api = session(legal_us)
    first = simulate_once(api, de_employee, "sim-1")

    again = simulate_once(api, de_employee, "sim-1")

    assert first.status_code == again.status_code == 403 and again["Idempotent-Replayed"] == "true"

"""The simulator page and "what was captured about me": permissions, answers, bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from conftest import make_employee, make_user
from consentry.tests.roles import make_approver, make_auditor, make_legal, sign_in
from decisions.models import CaptureGrant
from decisions.tests.conftest import capture, device_client, grant_consent
from governance import services as gov

pytestmark = pytest.mark.django_db


@pytest.fixture
def us_legal(policy):
    regions = policy["regions"]
    return make_legal(make_user("lena"), regions["US"], regions["US-NY"], regions["US-CA"])


@pytest.fixture
def eu_legal(policy):
    regions = policy["regions"]
    return make_legal(make_user("elias"), regions["EU"], regions["DE"], regions["FR"])


@pytest.fixture
def texan(policy):
    return make_employee(hr_id="E7001", country="US", subdivision="US-TX", user=make_user("tess"))


def _ask(client, **params):
    query = {"who": "employee", "purpose": "ai_agent_training", "categories": ["keystrokes", "screenshots"]}
    query.update(params)
    return client.get(reverse("legal:simulate"), query)


def _decisions(response) -> dict[str, list[str]]:
    result = response.context["result"]
    assert result is not None, response.content.decode()[:2000]
    return {row["category"]: [reason.code for reason in row["reasons"]] for row in result["rows"]}


# Simulator ---------------------------------------------------------------------------------


def test_the_simulator_is_for_legal_and_approvers_only(client, policy, texan, us_legal):
    url = reverse("legal:simulate")
    assert client.get(url).status_code == 302
    for outsider in (texan.user, make_auditor(make_user("aurelio"))):
        sign_in(client, outsider)
        assert client.get(url).status_code == 403
    for insider in (us_legal, make_approver(make_user("ada"))):
        sign_in(client, insider)
        assert client.get(url).status_code == 200


def test_legal_sees_the_decision_with_its_reasons(client, policy, texan, us_legal):
    sign_in(client, us_legal)
    response = _ask(client, employee="E7001")
    assert _decisions(response) == {"Keystrokes": [], "Screenshots": []}
    html = response.content.decode()
    assert "Allowed" in html and "has opted in to every chosen category" in html


def test_a_prohibited_purpose_is_denied_with_its_code(client, policy, texan, us_legal):
    sign_in(client, us_legal)
    decided = _decisions(_ask(client, employee="E7001", purpose="performance_evaluation", categories=["keystrokes"]))
    assert "purpose_prohibited" in decided["Keystrokes"]


def test_a_new_hire_in_new_york_still_lacks_the_acknowledgement(client, policy, us_legal):
    sign_in(client, us_legal)
    response = _ask(client, who="region", region="US-NY", categories=["mouse_movement"])
    assert _decisions(response) == {"Mouse Movement": ["precondition_missing"]}
    assert "no acknowledgement and no personal release" in response.content.decode()


def test_an_approved_change_shows_at_once_in_the_simulator(client, policy, texan, us_legal):
    sign_in(client, us_legal)
    assert _decisions(_ask(client, employee="E7001"))["Screenshots"] == []
    draft = gov.rule_draft(
        region=policy["regions"]["US"],
        status="allow",
        blocked_categories=["screenshots"],
        effective_from=timezone.now() - timedelta(seconds=1),
        supersedes=policy["rules"]["US"],
        actor=Actor.for_user(us_legal),
    )
    gov.rule_approve(rule=draft, actor=Actor.for_user(make_approver(make_user("ada"))))
    assert _decisions(_ask(client, employee="E7001"))["Screenshots"] == ["category_blocked_in_jurisdiction"]


def test_an_eu_legal_user_cannot_simulate_a_us_employee_nor_learn_that_one_exists(client, policy, texan, eu_legal):
    sign_in(client, eu_legal)
    for hr_id in ("E7001", "E-NOBODY"):
        response = _ask(client, employee=hr_id)
        assert response.context["result"] is None
        assert "No employee with that HR id works in the regions you cover." in response.content.decode()
    us_region = _ask(client, who="region", region="US-TX")
    assert "Select a valid choice" in us_region.content.decode()
    de = make_employee(hr_id="E7002", country="DE", subdivision="DE-BE")
    assert _decisions(_ask(client, employee=de.hr_id))["Keystrokes"][0] == "jurisdiction_blocked"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"categories": []}, "This field is required"),
        ({"categories": ["brainwaves"]}, "Select a valid choice"),
        ({"purpose": "world_domination"}, "Select a valid choice"),
        ({"at": "next tuesday"}, "Enter a valid date/time"),
        ({"employee": ""}, "Give the HR id of the employee"),
        ({"who": "region", "region": ""}, "Choose the region"),
        ({"who": "martian"}, "Select a valid choice"),
        ({"app": "x" * 300}, "Ensure this value has at most 255 characters"),
    ],
)
def test_bad_questions_are_explained_not_crashed_on(client, policy, texan, us_legal, params, message):
    sign_in(client, us_legal)
    response = _ask(client, **{"employee": "E7001", **params})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert response.context["result"] is None


def test_an_excluded_app_is_denied_in_the_simulator_too(client, policy, texan, us_legal):
    sign_in(client, us_legal)
    decided = _decisions(_ask(client, employee="E7001", app="com.1password.mac", categories=["keystrokes"]))
    assert decided == {"Keystrokes": ["excluded_context"]}


# What was captured about me ---------------------------------------------------------------


def test_captured_is_the_employee_s_own_and_nobody_else_s(client, policy, texan, us_legal):
    url = reverse("portal:captured")
    assert client.get(url).status_code == 302
    sign_in(client, us_legal)
    assert client.get(url).status_code == 403


def test_an_employee_sees_grants_per_day_and_category_and_never_another_s(client, policy, texan):
    grant_consent(texan, "keystrokes", "mouse_movement")
    agent = device_client(texan)
    for _ in range(3):
        capture(agent, "keystrokes", "mouse_movement")
    capture(agent, "keystrokes")
    other = make_employee(country="US", subdivision="US-TX", user=make_user("otto"))
    grant_consent(other, "screenshots")
    capture(device_client(other, "desk-2"), "screenshots")
    assert CaptureGrant.objects.count() == 5

    sign_in(client, texan.user)
    response = client.get(reverse("portal:captured"))
    days = response.context["days"]
    assert len(days) == 1
    assert days[0]["items"] == [("AI agent training", "Keystrokes", 4), ("AI agent training", "Mouse Movement", 3)]
    assert "Screenshots" not in response.content.decode()


def test_nothing_captured_is_said_in_words(client, policy, texan):
    sign_in(client, texan.user)
    assert "Nothing: no capture agent was allowed" in client.get(reverse("portal:captured")).content.decode()

"""A material notice change asks again only for the pairs it changed (issue 9's acceptance, end to end)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from conftest import SYSTEM, make_employee, make_user
from decisions.tests.conftest import acknowledge, capture, codes, device_client, grant_consent, published_notice
from governance import services as gov

pytestmark = pytest.mark.django_db


def _publish_screenshot_change() -> None:
    notice = published_notice()
    items = [
        (
            i.purpose_id,
            i.category_id,
            i.description + (" Now every 5 seconds." if i.category_id == "screenshots" else ""),
        )
        for i in notice.items.all()
    ]
    draft = gov.notice_draft(
        title=notice.title,
        summary=notice.summary,
        body=notice.body,
        retention_statement=notice.retention_statement,
        access_statement=notice.access_statement,
        no_evaluation_statement=notice.no_evaluation_statement,
        items=items,
        material=True,
        actor=SYSTEM,
    )
    gov.notice_approve(notice=draft, actor=SYSTEM, via="tests")


def test_after_a_screenshot_only_change_keystrokes_still_allow_and_screenshots_ask_again(default_pack):
    user = make_user("nora")
    employee = make_employee(hr_id="E9001", country="US", subdivision="US-NY", user=user)
    grant_consent(employee, "keystrokes", "screenshots")
    acknowledge(employee)
    _publish_screenshot_change()
    acknowledge(employee)  # New York asks for acknowledgement of the current notice

    decision = capture(device_client(employee), "keystrokes", "screenshots")
    assert decision["categories"]["keystrokes"] == {"allowed": True, "reasons": []}
    assert codes(decision, "screenshots") == ["reconsent_required"]

    me = APIClient()
    me.force_authenticate(user)
    items = {(i["purpose"], i["category"]): i["state"] for i in me.get("/api/v1/me/consent").json()["items"]}
    assert items[("ai_agent_training", "keystrokes")] == "granted"
    assert items[("ai_agent_training", "screenshots")] == "reconsent_required"

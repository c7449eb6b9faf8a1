"""The employee self-service API: the caller's own consent, receipts, acknowledgements, pauses."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import SYSTEM, make_employee, make_user
from consent.models import Channel, ConsentEvent, ConsentState, NoticeAcknowledgement, Pause, Receipt
from consent.services import consent_grant
from governance import services as gov

pytestmark = pytest.mark.django_db
PURPOSE = "ai_agent_training"
CONSENT = "/api/v1/me/consent"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def nina(ny_employee):
    return client_for(ny_employee.user)


def put_choices(client, version, *choices, **extra):
    body = {"notice_version": version, "choices": [{"purpose": p, "category": c, "granted": g} for p, c, g in choices]}
    return client.put(CONSENT, body, format="json", **extra)


def states(response) -> dict[str, str]:
    return {item["category"]: item["state"] for item in response.json()["items"]}


def assert_problem(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail", "code"} <= set(body)
    assert body["status"] == status
    if code:
        assert body["code"] == code
    return body


def material_screenshots_change(legal, approver):
    """A new material notice that rewrites only the screenshots description, approved by a second person."""
    from audit.actors import Actor

    items = [(PURPOSE, c, f"We capture your {c}.") for c in ("keystrokes", "keystroke_timing", "mouse_movement")]
    items.append((PURPOSE, "screenshots", "We now capture full-resolution screenshots every 10 seconds."))
    draft = gov.notice_draft(
        title="v2",
        summary="Screenshots change.",
        body="Full text.",
        retention_statement="Kept 90 days.",
        access_statement="Research pipelines.",
        no_evaluation_statement="Never used to evaluate you.",
        items=items,
        material=True,
        actor=Actor.for_user(legal),
    )
    return gov.notice_approve(notice=draft, actor=Actor.for_user(approver))


# Reading where one stands -----------------------------------------------------------------


def test_a_new_employee_sees_every_pair_as_not_asked_with_the_current_notice(small_policy, nina):
    response = nina.get(CONSENT)
    assert response.status_code == 200
    body = response.json()
    assert body["employee"].startswith("E")
    assert body["region"]["code"] == "US-NY" and body["region"]["status"] == "conditional"
    assert body["region"]["preconditions"] == [
        {"type": "notice_acknowledgement", "met": False, "label": "Employee acknowledged the current notice"}
    ]
    assert body["notice"]["version"] == 1 and body["notice"]["material"] is True
    assert body["notice"]["published_at"] == "2026-01-01T00:00:00Z"
    assert set(states(response).values()) == {"not_asked"}
    assert all(item["since"] is None for item in body["items"])


def test_an_employee_in_a_blocked_region_sees_every_pair_unavailable(small_policy, de_employee):
    response = client_for(de_employee.user).get(CONSENT)
    assert response.json()["region"] == {
        "code": "DE-BE",
        "status": "block",
        "rule_region": "EU",
        "preconditions": [],
        "blocked_categories": [],
    }
    assert set(states(response).values()) == {"unavailable_in_region"}


def test_an_employee_where_no_rule_exists_sees_an_unknown_region_and_nothing_available(small_policy):
    employee = make_employee(country="BR", user=make_user())
    body = client_for(employee.user).get(CONSENT).json()
    assert body["region"]["status"] == "unknown" and body["region"]["rule_region"] is None
    assert {item["state"] for item in body["items"]} == {"unavailable_in_region"}


def test_a_person_without_an_employee_record_gets_a_clear_404(small_policy, legal):
    assert_problem(client_for(legal).get(CONSENT), 404, "no_employee_record")


def test_the_caller_always_gets_their_own_record_whatever_the_request_names(small_policy, nina, ny_employee):
    other = make_employee(country="US", subdivision="US-NY", user=make_user())
    response = nina.get(CONSENT, {"employee": other.hr_id})
    assert response.json()["employee"] == ny_employee.hr_id
    response = nina.put(
        CONSENT,
        {
            "employee": other.hr_id,
            "notice_version": 1,
            "choices": [{"purpose": PURPOSE, "category": "mouse_movement", "granted": True}],
        },
        format="json",
    )
    assert response.status_code == 200 and response.json()["employee"] == ny_employee.hr_id
    assert not ConsentEvent.objects.filter(employee=other).exists()
    assert ConsentEvent.objects.filter(employee=ny_employee).count() == 1


# Granting and withdrawing --------------------------------------------------------------------


def test_granting_answers_the_new_state_and_a_receipt_id(small_policy, nina, ny_employee):
    response = put_choices(nina, 1, (PURPOSE, "keystrokes", True), (PURPOSE, "screenshots", False))
    assert response.status_code == 200
    body = response.json()
    assert states(response)["keystrokes"] == "granted" and states(response)["screenshots"] == "not_asked"
    [receipt_id] = body["receipts"]
    event = ConsentEvent.objects.get(employee=ny_employee)
    assert event.receipt_id == receipt_id and event.channel == Channel.API
    assert event.actor == "user:nina"
    item = next(i for i in body["items"] if i["category"] == "keystrokes")
    assert item["notice_version"] == 1 and item["since"] is not None and item["expires_at"] is not None


def test_withdrawing_one_pair_leaves_the_others_granted(small_policy, nina):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True), (PURPOSE, "screenshots", True))
    response = put_choices(nina, 1, (PURPOSE, "screenshots", False))
    assert states(response)["screenshots"] == "withdrawn" and states(response)["keystrokes"] == "granted"
    assert len(response.json()["receipts"]) == 1


def test_a_grant_against_a_stale_notice_version_is_a_409(small_policy, nina, legal, approver):
    material_screenshots_change(legal, approver)
    body = assert_problem(put_choices(nina, 1, (PURPOSE, "keystrokes", True)), 409, "stale_notice")
    assert "version 2" in body["detail"]
    assert not ConsentEvent.objects.exists()


def test_a_grant_against_an_unpublished_notice_version_is_a_409(small_policy, nina):
    assert_problem(put_choices(nina, 7, (PURPOSE, "keystrokes", True)), 409, "stale_notice")


def test_a_withdrawal_is_accepted_whatever_notice_version_it_names(small_policy, nina, legal, approver):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True))
    material_screenshots_change(legal, approver)
    response = put_choices(nina, 1, (PURPOSE, "keystrokes", False))
    assert response.status_code == 200 and states(response)["keystrokes"] == "withdrawn"


def test_a_grant_in_a_blocked_region_is_refused_with_a_clear_problem(small_policy, de_employee):
    client = client_for(de_employee.user)
    body = assert_problem(put_choices(client, 1, (PURPOSE, "keystrokes", True)), 409, "unavailable_in_region")
    assert "not available where you work" in body["detail"]
    assert not ConsentEvent.objects.exists()


def test_a_prohibited_purpose_can_never_be_granted(small_policy, nina):
    body = assert_problem(put_choices(nina, 1, ("performance_evaluation", "keystrokes", True)), 422)
    assert body["code"] == "purpose_prohibited"
    assert not ConsentEvent.objects.exists()


def test_withdraw_all_withdraws_every_grant_with_a_receipt_each(small_policy, nina):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True), (PURPOSE, "screenshots", True))
    response = nina.post(f"{CONSENT}/withdraw-all")
    assert response.status_code == 200
    assert set(states(response).values()) == {"withdrawn", "not_asked"}
    assert len(response.json()["receipts"]) == 2
    again = nina.post(f"{CONSENT}/withdraw-all")
    assert again.status_code == 200 and again.json()["receipts"] == []


def test_a_material_notice_change_to_screenshots_asks_again_for_screenshots_only(small_policy, nina, legal, approver):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True), (PURPOSE, "screenshots", True))
    material_screenshots_change(legal, approver)
    response = nina.get(CONSENT)
    assert states(response)["keystrokes"] == "granted"
    assert states(response)["screenshots"] == "reconsent_required"
    assert response.json()["notice"]["version"] == 2
    regrant = put_choices(nina, 2, (PURPOSE, "screenshots", True))
    assert states(regrant)["screenshots"] == "granted" and states(regrant)["keystrokes"] == "granted"


def test_a_non_material_notice_carries_consent_over(small_policy, nina, legal, approver):
    from audit.actors import Actor

    put_choices(nina, 1, (PURPOSE, "screenshots", True))
    draft = gov.notice_draft(
        title="v2 typo fix",
        summary="s",
        body="b",
        retention_statement="r",
        access_statement="a",
        no_evaluation_statement="n",
        items=[(PURPOSE, "screenshots", "Completely reworded.")],
        material=False,
        actor=Actor.for_user(legal),
    )
    gov.notice_approve(notice=draft, actor=Actor.for_user(approver))
    assert states(nina.get(CONSENT))["screenshots"] == "granted"


def test_a_grant_past_its_validity_reads_as_expired(small_policy, nina, ny_employee):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True))
    with time_machine.travel(timezone.now() + timedelta(days=366)):
        # A year on, the old session has lapsed too: sign in again.
        assert states(client_for(ny_employee.user).get(CONSENT))["keystrokes"] == "expired"


# Acknowledgements and pauses -------------------------------------------------------------------


def test_acknowledging_the_notice_meets_the_new_york_precondition(small_policy, nina, ny_employee):
    response = nina.post("/api/v1/me/acknowledgements", {"notice_version": 1}, format="json")
    assert response.status_code == 201
    assert response.json()["notice_version"] == 1 and response.json()["acknowledged_at"]
    assert NoticeAcknowledgement.objects.filter(employee=ny_employee).count() == 1
    body = nina.get(CONSENT).json()
    assert body["acknowledged"] is True
    assert body["region"]["preconditions"][0]["met"] is True


def test_acknowledging_a_stale_notice_is_a_409(small_policy, nina, legal, approver):
    material_screenshots_change(legal, approver)
    assert_problem(nina.post("/api/v1/me/acknowledgements", {"notice_version": 1}, format="json"), 409, "stale_notice")


def test_pausing_for_thirty_minutes_and_resuming(small_policy, nina, ny_employee):
    response = nina.post("/api/v1/me/pause", {"minutes": 30}, format="json")
    assert response.status_code == 201
    pause = Pause.objects.get(employee=ny_employee)
    assert pause.ends_at - pause.starts_at == timedelta(minutes=30)
    assert nina.get(CONSENT).json()["paused_until"] is not None
    assert nina.delete("/api/v1/me/pause").status_code == 204
    assert nina.get(CONSENT).json()["paused_until"] is None
    assert nina.delete("/api/v1/me/pause").status_code == 204


def test_pausing_until_a_time(small_policy, nina):
    until = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    response = nina.post("/api/v1/me/pause", {"until": until.isoformat()}, format="json")
    assert response.status_code == 201
    assert response.json()["paused_until"] == until.strftime("%Y-%m-%dT%H:%M:%SZ")


# Receipts --------------------------------------------------------------------------------------


def test_receipts_list_newest_first_and_open_one_by_one(small_policy, nina):
    put_choices(nina, 1, (PURPOSE, "keystrokes", True))
    put_choices(nina, 1, (PURPOSE, "keystrokes", False))
    listing = nina.get("/api/v1/me/receipts/").json()
    assert len(listing) == 2
    kinds = [row["kind"] for row in listing]
    assert kinds == ["withdrawn", "granted"]
    first = listing[1]
    assert set(first) == {"id", "issued_at", "kind", "purpose", "category", "notice_version"}
    detail = nina.get(f"/api/v1/me/receipts/{first['id']}").json()
    assert detail["id"] == first["id"] and detail["jws"].count(".") == 2
    assert detail["receipt"]["consentReceiptID"] == first["id"]


def test_another_employees_receipt_is_not_found(small_policy, nina):
    other = make_employee(country="US", subdivision="US-NY", user=make_user())
    [event] = consent_grant(
        employee=other, notice=small_policy["notice"], choices=[(PURPOSE, "keystrokes")], actor=SYSTEM
    )
    assert_problem(nina.get(f"/api/v1/me/receipts/{event.receipt_id}"), 404, "not_found")
    assert nina.get("/api/v1/me/receipts/").json() == []
    assert client_for(other.user).get(f"/api/v1/me/receipts/{event.receipt_id}").status_code == 200


def test_every_grant_and_withdrawal_has_exactly_one_receipt(small_policy, nina):
    put_choices(nina, 1, *[(PURPOSE, c, True) for c in ("keystrokes", "screenshots", "mouse_movement")])
    nina.post(f"{CONSENT}/withdraw-all")
    events = ConsentEvent.objects.all()
    assert events.count() == 6
    assert set(Receipt.objects.values_list("id", flat=True)) == set(events.values_list("receipt_id", flat=True))
    assert ConsentState.objects.filter(state="withdrawn").count() == 3

"""The permission matrix of employee self-service: every endpoint × every persona.

Self-service is always the caller's own record: another employee reaches only
their own (and gets 404 for someone else's receipt), staff without an
employee record get 404 no_employee_record, machine tokens 403, anonymous 401.
"""

from __future__ import annotations

import pytest

from conftest import SYSTEM
from consent.services import consent_grant
from governance.tests.personas import PERSONAS, matrix

pytestmark = pytest.mark.django_db


def cells(mine: int, *, other: int | None = None) -> dict[str, int]:
    expected = dict.fromkeys(PERSONAS, 404)  # staff: no employee record
    expected.update(anonymous=401, device=403, pipeline=403, hr=403)
    expected.update(employee=mine, other_employee=mine if other is None else other)
    return expected


GRANT = {
    "notice_version": 1,
    "choices": [{"purpose": "ai_agent_training", "category": "mouse_movement", "granted": True}],
}

MATRIX = [
    ("get", "/api/v1/me/consent", None, cells(200)),
    ("put", "/api/v1/me/consent", GRANT, cells(200)),
    ("post", "/api/v1/me/consent/withdraw-all", None, cells(200)),
    ("post", "/api/v1/me/acknowledgements", {"notice_version": 1}, cells(201)),
    ("post", "/api/v1/me/pause", {"minutes": 30}, cells(201)),
    ("delete", "/api/v1/me/pause", None, cells(204)),
    ("get", "/api/v1/me/receipts/", None, cells(200)),
    ("get", "/api/v1/me/receipts/{receipt}", None, cells(200, other=404)),
]


@pytest.fixture
def receipt(cast, small_policy):
    """A receipt of the employee persona's own."""
    [event] = consent_grant(
        employee=cast.employee,
        notice=small_policy["notice"],
        choices=[("ai_agent_training", "keystrokes")],
        actor=SYSTEM,
    )
    return event.receipt_id


def test_every_persona_gets_exactly_its_answer_on_every_endpoint(cast, receipt):
    answers = {
        (method, path): matrix(cast, method, path.format(receipt=receipt), body) for method, path, body, _ in MATRIX
    }
    assert answers == {(method, path): expected for method, path, _, expected in MATRIX}


def test_each_employee_sees_only_their_own_record_and_receipts(cast, receipt):
    mine = cast.client("employee").get("/api/v1/me/consent").json()
    theirs = cast.client("other_employee").get("/api/v1/me/consent").json()
    assert mine["employee"] == cast.employee.hr_id and theirs["employee"] == cast.other_employee.hr_id
    assert [r["id"] for r in cast.client("employee").get("/api/v1/me/receipts/").json()] == [receipt]
    assert cast.client("other_employee").get("/api/v1/me/receipts/").json() == []


def test_the_matrix_covers_every_self_service_endpoint_and_method():
    from django.urls import resolve

    from consent import urls

    served = {
        (method, pattern.name)
        for pattern in urls.urlpatterns
        for method in ("get", "post", "put", "patch", "delete")
        # as_view() marks the view function with its class; the stubs type it as a plain callable.
        if hasattr(pattern.callback.view_class, method)  # type: ignore[attr-defined]
    }
    covered = {(method, resolve(path.format(receipt="r")).url_name) for method, path, _, _ in MATRIX}
    assert covered == served

"""Bad input on every self-service write is a 4xx problem+json, never a 500, and changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db
PURPOSE = "ai_agent_training"


def choice(**overrides):
    return {"purpose": PURPOSE, "category": "keystrokes", "granted": True, **overrides}


BAD_WRITES = [
    # (method, path, body, status, code)
    ("put", "/api/v1/me/consent", {"notice_version": "three", "choices": [choice()]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 0, "choices": [choice()]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": None, "choices": [choice()]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"choices": [choice()]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": "all"}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": []}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice()] * 501}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(granted="yes")]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(granted=1)]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(granted=None)]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(purpose="marketing")]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(category="dreams")]}, 422, "invalid"),
    (
        "put",
        "/api/v1/me/consent",
        {"notice_version": 1, "choices": [choice(category="dreams", granted=False)]},
        422,
        "invalid",
    ),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [choice(purpose=["x"])]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", {"notice_version": 1, "choices": [["ai_agent_training"]]}, 422, "invalid"),
    ("put", "/api/v1/me/consent", [1, 2, 3], 422, "invalid"),
    (
        "put",
        "/api/v1/me/consent",
        {"notice_version": 1, "choices": [choice(purpose="performance_evaluation")]},
        422,
        "purpose_prohibited",
    ),
    ("put", "/api/v1/me/consent", {"notice_version": 2, "choices": [choice()]}, 409, "stale_notice"),
    ("post", "/api/v1/me/acknowledgements", {}, 422, "invalid"),
    ("post", "/api/v1/me/acknowledgements", {"notice_version": "latest"}, 422, "invalid"),
    ("post", "/api/v1/me/acknowledgements", {"notice_version": -1}, 422, "invalid"),
    ("post", "/api/v1/me/acknowledgements", {"notice_version": 9}, 409, "stale_notice"),
    ("post", "/api/v1/me/pause", {}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"minutes": 0}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"minutes": -30}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"minutes": 7 * 24 * 60 + 1}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"minutes": "half an hour"}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"minutes": 30, "until": "2030-01-01T00:00:00Z"}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"until": "tomorrow"}, 422, "invalid"),
    ("post", "/api/v1/me/pause", {"until": "2020-01-01T00:00:00Z"}, 422, "invalid"),
]


@pytest.fixture
def nina(ny_employee):
    client = APIClient()
    client.force_login(ny_employee.user)
    return client


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == code


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_WRITES)
def test_bad_input_is_refused_with_a_problem_and_changes_nothing(small_policy, nina, method, path, body, status, code):
    before = AuditEntry.objects.count()
    response = getattr(nina, method)(path, body, format="json")
    assert_problem(response, status, code)
    assert AuditEntry.objects.count() == before


def test_invalid_fields_are_named_in_errors(small_policy, nina):
    response = nina.put(
        "/api/v1/me/consent",
        {"notice_version": "three", "choices": [choice(), choice(category="dreams", granted="yes")]},
        format="json",
    )
    errors = response.json()["errors"]
    assert errors["notice_version"]
    assert set(errors["choices"]) == {"1"} and "granted" in errors["choices"]["1"]


def test_unknown_slugs_are_named_per_choice(small_policy, nina):
    response = nina.put(
        "/api/v1/me/consent",
        {"notice_version": 1, "choices": [choice(), choice(purpose="marketing", category="dreams")]},
        format="json",
    )
    assert response.json()["errors"]["choices"] == {
        "1": {"purpose": ["Unknown purpose 'marketing'."], "category": ["Unknown data category 'dreams'."]}
    }


def test_a_pause_longer_than_a_week_by_time_is_refused(small_policy, nina):
    until = timezone.now() + timedelta(days=8)
    assert_problem(nina.post("/api/v1/me/pause", {"until": until.isoformat()}, format="json"), 422, "invalid")


WRITES = [
    ("put", "/api/v1/me/consent"),
    ("post", "/api/v1/me/consent/withdraw-all"),
    ("post", "/api/v1/me/acknowledgements"),
    ("post", "/api/v1/me/pause"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_malformed_json_is_a_400(small_policy, nina, method, path):
    response = getattr(nina, method)(path, data="{not json", content_type="application/json")
    assert_problem(response, 400, "parse_error")


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_body_over_the_limit_is_a_413(small_policy, nina, settings, method, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    body = json.dumps({"notice_version": 1, "padding": "x" * 5000})
    response = getattr(nina, method)(path, data=body, content_type="application/json")
    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_a_body_that_is_not_json_is_a_415(small_policy, nina, method, path):
    response = getattr(nina, method)(path, data="notice_version=1", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")

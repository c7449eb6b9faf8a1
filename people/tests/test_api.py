"""POST /api/v1/people/import: CSV provisioning over the API, for HR tokens."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry, EventType
from people.models import Employee, EmployeeStatus

pytestmark = pytest.mark.django_db

URL = "/api/v1/people/import"
GOOD = b"hr_id,user_name,country,region,email\nE4001,ana,US,NY,ana@example.com\nE4002,ben,DE,,\n"


def _post(client, content: bytes, content_type: str = "text/csv", **headers):
    return client.generic("POST", URL, content, content_type=content_type, **headers)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("anonymous", 401),
        ("employee", 403),
        ("hr_admin", 403),
        ("device_token", 403),
        ("pipeline_token", 403),
        ("user_token", 403),
        ("hr_token", 200),
    ],
)
def test_only_hr_tokens_may_import(clients, caller, status):
    response = _post(clients[caller], GOOD)
    assert response.status_code == status, response.content
    assert Employee.objects.filter(hr_id__startswith="E400").exists() == (status == 200)
    if status != 200:
        assert response["Content-Type"] == "application/problem+json"


def test_a_valid_file_is_imported_and_summarised(hr_client):
    response = _post(hr_client, GOOD)
    assert response.status_code == 200, response.content
    assert response.json() == {"rows": 2, "created": 2, "updated": 0, "unchanged": 0, "terminated": 0}
    login = Employee.objects.get(hr_id="E4001").user
    assert login is not None and login.get_username() == "ana"
    entry = AuditEntry.objects.get(event_type=EventType.EMPLOYEES_IMPORTED)
    assert entry.actor == "hr:workday" and entry.payload["source"] == "api:workday"
    again = _post(hr_client, b"hr_id,user_name,country,region,status\nE4001,ana,US,NY,terminated\nE4002,ben,DE,,\n")
    assert again.json() == {"rows": 2, "created": 0, "updated": 1, "unchanged": 1, "terminated": 1}
    assert Employee.objects.get(hr_id="E4001").status == EmployeeStatus.TERMINATED


def test_every_invalid_row_is_listed_and_nothing_is_applied(hr_client):
    content = b"hr_id,country,region,email\nE4101,US,NY,\nE4102,XX,,\nE4103,US,ZZ,not-mail\nE4101,DE,,\n"
    response = _post(hr_client, content)
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_csv"
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (3, "country"),
        (4, "email"),
        (4, "region"),
        (5, "hr_id"),
    ]
    assert all(e["message"] for e in body["errors"])
    assert not Employee.objects.filter(hr_id__startswith="E41").exists()


@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x", "text/plain"])
def test_other_media_types_are_refused_with_415(hr_client, content_type):
    response = _post(hr_client, GOOD, content_type=content_type)
    assert response.status_code == 415 and response["Content-Type"] == "application/problem+json"
    assert not Employee.objects.exists()


def test_files_over_the_byte_or_row_limit_are_413(hr_client, settings):
    settings.CONSENTRY_CSV_MAX_BYTES = 1024
    big = b"hr_id,country\n" + b"".join(b"E%05d,US\n" % n for n in range(200))
    response = _post(hr_client, big)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    settings.CONSENTRY_CSV_MAX_BYTES = 10 * 1024 * 1024
    settings.CONSENTRY_CSV_MAX_ROWS = 3
    response = _post(hr_client, b"hr_id,country\nE1,US\nE2,US\nE3,US\nE4,US\n")
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert not Employee.objects.exists()


def test_a_retry_with_the_same_key_replays_and_another_file_under_it_is_422(hr_client):
    first = _post(hr_client, GOOD, HTTP_IDEMPOTENCY_KEY="nightly-1")
    retry = _post(hr_client, GOOD, HTTP_IDEMPOTENCY_KEY="nightly-1")
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEES_IMPORTED).count() == 1
    other = _post(hr_client, b"hr_id,country\nE4201,US\n", HTTP_IDEMPOTENCY_KEY="nightly-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert not Employee.objects.filter(hr_id="E4201").exists()


def test_the_openapi_schema_documents_the_csv_body_and_its_answers(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/people/import"]["post"]
    assert "text/csv" in operation["requestBody"]["content"]
    assert {"200", "413", "415", "422"} <= set(operation["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])

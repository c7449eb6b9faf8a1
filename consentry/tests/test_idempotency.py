"""Idempotency-Key: one state change per caller and key, the first answer replayed, misuse refused."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, build_small_policy, make_employee, make_user
from consent.models import ConsentEvent, Pause
from consent.services import consent_grant
from consentry.idempotency import idempotency_purge
from consentry.models import IdempotencyRecord
from consentry.tasks import purge_idempotency_keys

PURPOSE = "ai_agent_training"
GRANT = {"notice_version": 1, "choices": [{"purpose": PURPOSE, "category": "keystrokes", "granted": True}]}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def nina(small_policy, ny_employee):
    return client_for(ny_employee.user)


def put(client, body, key="k-1"):
    return client.put("/api/v1/me/consent", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_retry_with_the_same_key_and_body_replays_the_first_response(nina, ny_employee, small_policy):
    first = put(nina, GRANT)
    assert first.status_code == 200 and "Idempotent-Replayed" not in first
    # The state moves on meanwhile; the retry still gets the first answer.
    consent_grant(
        employee=ny_employee, notice=small_policy["notice"], choices=[(PURPOSE, "mouse_movement")], actor=SYSTEM
    )
    again = put(nina, GRANT)
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json(), "the stored answer, not the state as it is now"
    assert ConsentEvent.objects.filter(category="keystrokes").count() == 1


@pytest.mark.django_db
def test_key_order_and_spacing_do_not_make_a_different_body(nina):
    put(nina, GRANT)
    reordered = (
        '{"choices":[{"granted":true,"category":"keystrokes","purpose":"ai_agent_training"}],"notice_version":1}'
    )
    again = nina.put("/api/v1/me/consent", reordered, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422(nina):
    put(nina, GRANT)
    other = {"notice_version": 1, "choices": [{"purpose": PURPOSE, "category": "screenshots", "granted": True}]}
    response = put(nina, other)
    assert response.status_code == 422 and response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "idempotency_key_reused"
    assert not ConsentEvent.objects.filter(category="screenshots").exists()


@pytest.mark.django_db
def test_the_same_key_on_another_endpoint_is_a_422(nina):
    put(nina, GRANT)
    response = nina.post("/api/v1/me/pause", {"minutes": 5}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert not Pause.objects.exists()


@pytest.mark.django_db
def test_keys_belong_to_their_caller(nina, ny_employee):
    other = make_employee(country="US", subdivision="US-NY", user=make_user())
    put(nina, GRANT)
    response = put(client_for(other.user), GRANT)
    assert "Idempotent-Replayed" not in response and response.json()["employee"] == other.hr_id
    assert ConsentEvent.objects.filter(employee=other).count() == 1


@pytest.mark.django_db
def test_a_person_shares_keys_across_session_and_user_token(nina, ny_employee):
    from people.tokens import token_issue

    put(nina, GRANT)
    _, raw = token_issue(kind="user", name="cli", user=ny_employee.user, actor=SYSTEM)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert put(client, GRANT)["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_refusal_is_replayed_too(nina, ny_employee):
    stale = {**GRANT, "notice_version": 2}
    first = put(nina, stale, key="stale")
    assert first.status_code == 409
    again = put(nina, stale, key="stale")
    assert again.status_code == 409 and again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"].startswith("application/problem+json")
    assert again.json() == first.json()


@pytest.mark.django_db
def test_an_unexpected_failure_forgets_the_key_so_a_retry_runs(nina, monkeypatch):
    import consent.api

    real = consent.api.consent_withdraw_all

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(consent.api, "consent_withdraw_all", broken)
    with pytest.raises(RuntimeError):
        nina.post("/api/v1/me/consent/withdraw-all", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert not IdempotencyRecord.objects.exists()
    monkeypatch.setattr(consent.api, "consent_withdraw_all", real)
    response = nina.post("/api/v1/me/consent/withdraw-all", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert response.status_code == 200 and "Idempotent-Replayed" not in response


@pytest.mark.django_db
def test_a_no_content_answer_is_replayed(nina):
    assert nina.delete("/api/v1/me/pause", HTTP_IDEMPOTENCY_KEY="resume").status_code == 204
    again = nina.delete("/api/v1/me/pause", HTTP_IDEMPOTENCY_KEY="resume")
    assert again.status_code == 204 and again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "naïve"])
def test_a_malformed_key_is_a_422(nina, key):
    response = put(nina, GRANT, key=key)
    assert response.status_code == 422 and response.json()["code"] == "invalid_idempotency_key"
    assert not ConsentEvent.objects.exists()


@pytest.mark.django_db
def test_policy_writes_honour_the_key_too(cast_for_policy):
    cast = cast_for_policy
    body = {"kind": "app", "pattern": "com.bank.*", "label": "Bank", "reason": "banking"}
    client = cast.client("legal_in_scope")
    first = client.post("/api/v1/exclusions/", body, format="json", HTTP_IDEMPOTENCY_KEY="ex-1")
    again = client.post("/api/v1/exclusions/", body, format="json", HTTP_IDEMPOTENCY_KEY="ex-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"


@pytest.fixture
def cast_for_policy(small_policy):
    from governance.tests.personas import build_cast

    return build_cast(small_policy["regions"])


@pytest.mark.django_db
def test_keys_are_kept_a_day_at_least_then_purged(nina, settings):
    put(nina, GRANT)
    record = IdempotencyRecord.objects.get()
    assert settings.CONSENTRY_IDEMPOTENCY_TTL_HOURS >= 24
    assert idempotency_purge(now=record.created_at + timedelta(hours=24)) == 0
    assert IdempotencyRecord.objects.exists()
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=49))
    assert purge_idempotency_keys() == 1
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", ["same-key", None])
def test_ten_concurrent_retries_of_one_key_make_exactly_one_state_change(key):
    """Starting a pause is not idempotent by itself (each call replaces the pause): the key must make it so."""
    build_small_policy()
    employee = make_employee(country="US", subdivision="US-NY", user=make_user())
    clients = [client_for(employee.user) for _ in range(10)]
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    start = threading.Barrier(len(clients))
    responses, errors = [], []
    lock = threading.Lock()

    def retry(client):
        try:
            start.wait()
            response = client.post("/api/v1/me/pause", {"minutes": 30}, format="json", **headers)
            with lock:
                responses.append(response)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    close_old_connections()

    assert not errors, errors
    assert [r.status_code for r in responses] == [201] * 10
    paused = AuditEntry.objects.filter(event_type=EventType.CAPTURE_PAUSED, subject=employee.hr_id).count()
    if key is None:
        # The control: without a key every request is a new pause.
        assert Pause.objects.filter(employee=employee).count() == paused == 10
        return
    assert sum(1 for r in responses if r.get("Idempotent-Replayed") == "true") == 9
    assert len({r.content for r in responses}) == 1, "every retry gets the first answer"
    assert Pause.objects.filter(employee=employee).count() == paused == 1
    assert IdempotencyRecord.objects.count() == 1

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_user
from decisions.tests.conftest import PURPOSE, bearer, capture, device_client, pipeline_client
from people.models import ApiToken
from people.tokens import token_issue

pytestmark = pytest.mark.django_db
TOKENS = "/api/v1/tokens/"


def session(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def staff(db):
    user = make_user("tokenadmin")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_apitoken", "change_apitoken"]))
    return user


def test_staff_see_every_token_but_never_a_secret(policy, staff, us_employee):
    device = device_client(us_employee)
    pipeline_client()
    body = session(staff).get(TOKENS).json()
    assert body["count"] == 2
    listed = {item["kind"]: item for item in body["results"]}
    assert listed["device"]["employee"] == us_employee.hr_id and listed["device"]["state"] == "active"
    assert listed["pipeline"]["purposes"] == [PURPOSE]
    assert device.raw not in str(body) and "token_hash" not in listed["device"]


def test_the_list_filters_by_kind_and_state(policy, staff, us_employee):
    device = device_client(us_employee)
    pipeline_client()
    device.token.revoked_at = device.token.created_at
    device.token.save()
    api = session(staff)
    assert [t["kind"] for t in api.get(TOKENS, {"kind": "pipeline"}).json()["results"]] == ["pipeline"]
    assert [t["kind"] for t in api.get(TOKENS, {"state": "revoked"}).json()["results"]] == ["device"]
    assert [t["kind"] for t in api.get(TOKENS, {"state": "active"}).json()["results"]] == ["pipeline"]


def test_staff_revoke_a_device_token_and_it_gets_401_at_once(policy, staff, us_employee):
    device = device_client(us_employee)
    capture(device, "keystrokes")

    response = session(staff).delete(f"{TOKENS}{device.token.pk}")

    assert response.status_code == 204
    assert (
        device.post("/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}).status_code == 401
    )
    assert AuditEntry.objects.filter(event_type=EventType.TOKEN_REVOKED, object_id=str(device.token.pk)).exists()
    # Revoking again is harmless.
    assert session(staff).delete(f"{TOKENS}{device.token.pk}").status_code == 204


def test_an_expired_token_gets_401(policy, us_employee):
    token, raw = token_issue(
        kind="device", name="old", employee=us_employee, device_id="old", lifetime=timedelta(seconds=1), actor=SYSTEM
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=token.created_at)
    response = bearer(raw).post(
        "/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes"]}, format="json"
    )
    assert response.status_code == 401 and response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "authentication_failed"


def test_a_person_sees_and_revokes_only_their_own_user_tokens(policy, us_employee):
    alice, bob = make_user("alice"), make_user("bob")
    own, own_raw = token_issue(kind="user", name="cli", user=alice, actor=SYSTEM)
    other, _ = token_issue(kind="user", name="cli", user=bob, actor=SYSTEM)
    device = device_client(us_employee)
    api = bearer(own_raw)

    listed = api.get(TOKENS).json()["results"]
    assert [item["id"] for item in listed] == [own.pk]
    assert api.get(f"{TOKENS}{other.pk}").status_code == 404
    assert api.delete(f"{TOKENS}{device.token.pk}").status_code == 404
    assert api.delete(f"{TOKENS}{own.pk}").status_code == 204
    # The revoked token no longer authenticates, not even to list itself.
    assert api.get(TOKENS).status_code == 401


def test_a_viewer_without_change_permission_cannot_revoke_others_tokens(policy, us_employee):
    viewer = make_user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    device = device_client(us_employee)
    response = session(viewer).delete(f"{TOKENS}{device.token.pk}")
    assert response.status_code == 403
    device.token.refresh_from_db()
    assert device.token.revoked_at is None


def test_token_api_permission_matrix(policy, us_employee):
    assert APIClient().get(TOKENS).status_code in (401, 403)
    assert device_client(us_employee).api.get(TOKENS).status_code == 403
    assert pipeline_client().api.get(TOKENS).status_code == 403
    assert session(make_user("nobody")).get(TOKENS).json()["results"] == []


def test_machine_tokens_are_scoped_to_their_own_endpoint(policy, us_employee):
    device, pipeline = device_client(us_employee), pipeline_client()
    use_body = {"purpose": PURPOSE, "records": [{"id": "r1"}]}
    capture_body = {"purpose": PURPOSE, "categories": ["keystrokes"]}
    assert device.post("/api/v1/decisions/use", use_body).status_code == 403
    assert pipeline.post("/api/v1/decisions/capture", capture_body).status_code == 403
    _, hr_raw = token_issue(kind="hr", name="workday", actor=SYSTEM)
    assert bearer(hr_raw).post("/api/v1/decisions/capture", capture_body, format="json").status_code == 403
    assert bearer(hr_raw).post("/api/v1/decisions/use", use_body, format="json").status_code == 403
    # A person (even with a user token) is neither a device nor a pipeline.
    _, user_raw = token_issue(kind="user", name="me", user=make_user("me"), actor=SYSTEM)
    assert bearer(user_raw).post("/api/v1/decisions/capture", capture_body, format="json").status_code == 403
    assert APIClient().post("/api/v1/decisions/capture", capture_body, format="json").status_code == 401


def revoke(api: APIClient, token: ApiToken, key: str, body=None):
    return api.delete(f"{TOKENS}{token.pk}", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_revocation_retried_with_its_key_replays_the_first_answer_and_revokes_once(policy, staff, us_employee):
    device = device_client(us_employee)
    api = session(staff)

    first = revoke(api, device.token, "revoke-laptop-7")
    again = revoke(api, device.token, "revoke-laptop-7")

    assert first.status_code == 204 and "Idempotent-Replayed" not in first
    assert again.status_code == 204 and again["Idempotent-Replayed"] == "true"
    assert AuditEntry.objects.filter(event_type=EventType.TOKEN_REVOKED, object_id=str(device.token.pk)).count() == 1


def test_a_revocation_key_reused_for_another_token_is_422_and_revokes_nothing(policy, staff, us_employee):
    device, pipeline = device_client(us_employee), pipeline_client()
    api = session(staff)
    assert revoke(api, device.token, "revoke-1").status_code == 204

    response = revoke(api, pipeline.token, "revoke-1")

    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"
    pipeline.token.refresh_from_db()
    assert pipeline.token.revoked_at is None
    assert not AuditEntry.objects.filter(event_type=EventType.TOKEN_REVOKED, object_id=str(pipeline.token.pk)).exists()


def test_a_revocation_key_reused_with_another_body_is_422(policy, staff, us_employee):
    device = device_client(us_employee)
    api = session(staff)
    assert revoke(api, device.token, "revoke-2").status_code == 204

    response = revoke(api, device.token, "revoke-2", {"reason": "laptop lost"})

    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "idempotency_key_reused"


def test_a_refused_revocation_is_replayed_as_refused(policy, us_employee):
    viewer = make_user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    device = device_client(us_employee)
    api = session(viewer)

    assert revoke(api, device.token, "revoke-3").status_code == 403
    again = revoke(api, device.token, "revoke-3")

    assert again.status_code == 403 and again["Idempotent-Replayed"] == "true"
    device.token.refresh_from_db()
    assert device.token.revoked_at is None


def test_the_schema_documents_the_idempotency_key_on_revocation(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    operation = paths["/api/v1/tokens/{id}"]["delete"]
    assert "Idempotency-Key" in {parameter["name"] for parameter in operation["parameters"]}
    assert "422" in operation["responses"]

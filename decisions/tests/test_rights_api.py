"""Rights requests over the API: an employee's own, and staff's read-only view (permission matrix)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee, make_user
from consentry.celery import app
from consentry.tests.roles import grant_role, make_auditor
from decisions.models import RightsRequest, RightsStatus
from decisions.rights import rights_access_build
from decisions.tests.conftest import device_client, grant_consent, pipeline_client
from people.roles import Role
from people.tokens import token_issue

pytestmark = pytest.mark.django_db
ME = "/api/v1/me/rights-requests"
STAFF = "/api/v1/rights-requests"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager():
    """Run enqueued tasks inline, as a worker would, without a broker."""
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def nina(policy):
    return make_employee(country="US", subdivision="US-NY", user=make_user("nina"), display_name="Nina")


@pytest.fixture
def dieter(policy):
    return make_employee(country="DE", subdivision="DE-BE", user=make_user("dieter"), display_name="Dieter")


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ask(client: APIClient, kind: str, **extra):
    return client.post(ME, {"kind": kind}, format="json", **extra)


def test_an_employee_asks_for_a_copy_and_gets_a_received_request_with_its_location(nina):
    response = ask(signed_in(nina.user), "access")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["kind"] == "access" and body["status"] == "received" and body["progress"] == 0
    assert body["download"] is None and body["erasure"] is None
    assert response["Location"] == f"{ME}/{body['id']}"
    assert "preparing your copy" in body["message"]
    entry = AuditEntry.objects.get(event_type=EventType.RIGHTS_ACCESS_REQUESTED)
    assert (entry.subject, entry.object_id, entry.region, entry.actor) == (nina.hr_id, body["id"], "US-NY", "user:nina")


def test_the_request_is_built_by_the_task_after_commit_and_then_downloads(
    nina, eager, django_capture_on_commit_callbacks
):
    grant_consent(nina, "keystrokes")
    client = signed_in(nina.user)
    with django_capture_on_commit_callbacks(execute=True):
        created = ask(client, "access").json()
    detail = client.get(f"{ME}/{created['id']}").json()
    assert detail["status"] == "completed" and detail["progress"] == 100
    assert detail["download"] == f"{ME}/{created['id']}/download"
    assert detail["contents"]["consent_events"] == 1 and detail["contents"]["receipts"] == 1
    response = client.get(detail["download"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Cache-Control"] == "private, no-store"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.getvalue()))
    assert sorted(archive.namelist()) == ["data.json", "index.html"]
    assert json.loads(archive.read("data.json"))["employee"]["hr_id"] == nina.hr_id
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ACCESS_DOWNLOADED, subject=nina.hr_id).count() == 1


def test_the_list_holds_only_the_callers_own_requests_newest_first(nina, dieter):
    ask(signed_in(dieter.user), "access")
    client = signed_in(nina.user)
    first = ask(client, "access").json()
    RightsRequest.objects.filter(pk=first["id"]).update(status=RightsStatus.COMPLETED)
    second = ask(client, "access").json()
    listed = client.get(ME).json()
    assert [item["id"] for item in listed] == [second["id"], first["id"]]


def test_asking_again_while_a_copy_is_pending_returns_the_pending_one(nina):
    client = signed_in(nina.user)
    first = ask(client, "access")
    again = ask(client, "access")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert RightsRequest.objects.count() == 1
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ACCESS_REQUESTED).count() == 1


@pytest.mark.parametrize("body", [{"kind": "everything"}, {"kind": ""}, {}, {"kind": ["access"]}, {"kind": None}])
def test_a_bad_kind_is_refused_as_problem_details_and_changes_nothing(nina, body):
    before = AuditEntry.objects.count()
    response = signed_in(nina.user).post(ME, body, format="json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "invalid" and "kind" in problem["errors"]
    assert RightsRequest.objects.count() == 0 and AuditEntry.objects.count() == before


def test_a_malformed_body_is_a_400_problem_and_changes_nothing(nina):
    response = signed_in(nina.user).post(ME, b"{kind:", content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    assert RightsRequest.objects.count() == 0


def test_another_employees_request_is_not_found_in_every_form(nina, dieter):
    theirs = ask(signed_in(dieter.user), "access").json()
    rights_access_build(request_id=theirs["id"])
    client = signed_in(nina.user)
    for path in (f"{ME}/{theirs['id']}", f"{ME}/{theirs['id']}/download"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response["Content-Type"] == "application/problem+json"


def test_a_copy_not_yet_ready_is_a_409(nina):
    created = ask(signed_in(nina.user), "access").json()
    response = signed_in(nina.user).get(f"{ME}/{created['id']}/download")
    assert response.status_code == 409 and response.json()["code"] == "export_not_ready"


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_callers_are_refused(nina, method):
    response = getattr(APIClient(), method)(ME, {"kind": "access"}, format="json")
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == "application/problem+json"
    assert RightsRequest.objects.count() == 0


def test_machine_tokens_are_refused_and_a_user_token_acts_as_its_person(nina):
    for client in (device_client(nina).api, pipeline_client().api):
        assert client.post(ME, {"kind": "access"}, format="json").status_code == 403
    _, raw = token_issue(kind="user", name="nina's script", user=nina.user, actor=SYSTEM)
    user_client = APIClient()
    user_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert user_client.post(ME, {"kind": "access"}, format="json").status_code == 202


def test_a_person_without_an_employee_record_has_nothing_to_ask_about(policy):
    response = ask(signed_in(make_user("visitor")), "access")
    assert response.status_code == 404 and response.json()["code"] == "no_employee_record"


def test_an_idempotency_key_replays_the_first_answer(nina):
    client = signed_in(nina.user)
    first = ask(client, "access", HTTP_IDEMPOTENCY_KEY="k-1")
    replay = ask(client, "access", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == replay.status_code == 202
    assert replay["Idempotent-Replayed"] == "true" and replay.json()["id"] == first.json()["id"]


# Staff: HR administrators and auditors in scope ----------------------------------------------


@pytest.fixture
def requests_of_both(nina, dieter):
    return {
        "nina": ask(signed_in(nina.user), "access").json()["id"],
        "dieter": ask(signed_in(dieter.user), "access").json()["id"],
    }


def staff_ids(user, query: str = "") -> tuple[int, set[str]]:
    response = signed_in(user).get(STAFF + query)
    if response.status_code != 200:
        return response.status_code, set()
    return 200, {item["id"] for item in response.json()["results"]}


def test_hr_administrators_see_every_request_but_never_a_download_link(requests_of_both):
    hana = grant_role(make_user("hana"), Role.HR_ADMIN)
    status, ids = staff_ids(hana)
    assert status == 200 and ids == set(requests_of_both.values())
    detail = signed_in(hana).get(f"{STAFF}/{requests_of_both['nina']}").json()
    assert detail["employee"].startswith("E") and detail["region"] == "US-NY" and detail["download"] is None


def test_auditors_see_requests_of_the_regions_they_audit_only(requests_of_both, policy):
    us_auditor = make_auditor(make_user("aurelio"), policy["regions"]["US"])
    status, ids = staff_ids(us_auditor)
    assert status == 200 and ids == {requests_of_both["nina"]}
    assert signed_in(us_auditor).get(f"{STAFF}/{requests_of_both['dieter']}").status_code == 404
    everywhere = make_auditor(make_user("aurora"))
    assert staff_ids(everywhere)[1] == set(requests_of_both.values())


def test_employees_and_other_roles_see_no_ones_requests(requests_of_both, nina):
    for user in (nina.user, make_user("outsider"), grant_role(make_user("lena"), Role.LEGAL)):
        assert staff_ids(user)[0] == 403
        assert signed_in(user).get(f"{STAFF}/{requests_of_both['nina']}").status_code == 403
    assert APIClient().get(STAFF).status_code in (401, 403)


def test_staff_cannot_download_a_copy(requests_of_both, nina):
    rights_access_build(request_id=requests_of_both["nina"])
    hana = grant_role(make_user("hana"), Role.HR_ADMIN)
    assert signed_in(hana).get(f"{ME}/{requests_of_both['nina']}/download").status_code == 404


# OpenAPI ----------------------------------------------------------------------------------------

RIGHTS_VIEWS = (
    "MeRightsRequestListView",
    "MeRightsRequestDetailView",
    "MeRightsRequestDownloadView",
    "RightsRequestListView",
    "RightsRequestDetailView",
)


def test_the_rights_endpoints_are_in_the_schema_with_examples_and_no_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert [message for message in messages if any(view in message for view in RIGHTS_VIEWS)] == []
    validate_schema(schema)
    paths = schema["paths"]
    create = paths[ME]["post"]
    assert create["requestBody"]["content"]["application/json"]["examples"]
    assert {"200", "202", "401", "403", "404", "422"} <= set(create["responses"])
    assert create["responses"]["202"]["content"]["application/json"]["examples"]
    assert "application/problem+json" in create["responses"]["422"]["content"]
    assert paths[ME]["get"]["responses"]["200"]["content"]["application/json"]["examples"]
    assert "application/zip" in paths[ME + "/{id}/download"]["get"]["responses"]["200"]["content"]
    assert {"200", "404"} <= set(paths[ME + "/{id}"]["get"]["responses"])
    assert {STAFF, STAFF + "/{id}"} <= set(paths)

from __future__ import annotations

import json
from datetime import timedelta

import pycountry
import pytest
from django.utils import timezone

from audit.models import AuditEntry, EventType
from conftest import SYSTEM, make_employee
from people.models import Employee, EmployeeStatus
from people.services import employee_set_status
from people.tests.conftest import ENTERPRISE, patch_op, scim_user
from people.tokens import token_revoke

pytestmark = pytest.mark.django_db

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def _error(response, status: int, scim_type: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [SCIM_ERROR] and body["status"] == str(status)
    assert body.get("scimType") == scim_type
    return body


def _create(hr_client, hr_id: str = "E2001", **kwargs) -> dict:
    response = hr_client.post("/scim/v2/Users", scim_user(hr_id, **kwargs), format="json")
    assert response.status_code == 201, response.content
    return response.json()


# Permissions -----------------------------------------------------------------

MATRIX = [
    ("anonymous", 401),
    ("employee", 401),
    ("legal", 401),
    ("hr_admin", 401),
    ("device_token", 403),
    ("pipeline_token", 403),
    ("user_token", 403),
    ("hr_token", 200),
]


@pytest.mark.parametrize(("caller", "status"), MATRIX)
@pytest.mark.parametrize("path", ["/scim/v2/Users", "/scim/v2/ServiceProviderConfig", "/scim/v2/Schemas"])
def test_only_hr_tokens_may_call_scim(clients, caller, status, path):
    response = clients[caller].get(path)
    if status == 200:
        assert response.status_code == 200
    else:
        _error(response, status)
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("caller", "status"), MATRIX)
def test_only_hr_tokens_may_provision(clients, caller, status):
    response = clients[caller].post("/scim/v2/Users", scim_user(), format="json")
    expected = 201 if status == 200 else status
    assert response.status_code == expected
    assert Employee.objects.filter(hr_id="E2001").exists() == (expected == 201)


def test_a_revoked_hr_token_is_refused(db):
    from people.tests.conftest import bearer_client
    from people.tokens import token_issue

    token, raw = token_issue(kind="hr", name="old", actor=SYSTEM)
    token_revoke(token=token, actor=SYSTEM)
    _error(bearer_client(raw).get("/scim/v2/Users"), 401)


# Provisioning ----------------------------------------------------------------


def test_provisioning_creates_an_audited_employee_with_an_iso_work_location(hr_client):
    body = _create(hr_client, "E2001", country="US", region="CA")
    employee = Employee.objects.get(hr_id="E2001")
    assert (employee.country, employee.subdivision) == ("US", "US-CA")
    assert (employee.entity, employee.site, employee.department) == ("Example Corp", "HQ", "R&D")
    assert employee.user_name == "e2001@example.com" and employee.email == "e2001@example.com"
    assert body["id"] == str(employee.pk)
    assert body["addresses"] == [{"type": "work", "country": "US", "region": "US-CA"}]
    assert body[ENTERPRISE]["employeeNumber"] == "E2001"
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{employee.pk}")
    entry = AuditEntry.objects.get(event_type=EventType.EMPLOYEE_PROVISIONED)
    assert entry.subject == "E2001" and entry.actor == "hr:workday" and entry.region == "US-CA"


def test_a_full_iso_3166_2_region_is_accepted_as_given(hr_client):
    body = _create(hr_client, region="US-NY")
    assert body["addresses"][0]["region"] == "US-NY"


def test_attributes_consentry_does_not_keep_are_ignored(hr_client):
    body = scim_user(nickName="Bob", title="VP", phoneNumbers=[{"value": "555", "type": "work"}])
    body["addresses"][0]["streetAddress"] = "1 Main St"
    response = hr_client.post("/scim/v2/Users", body, format="json")
    assert response.status_code == 201
    assert "nickName" not in response.json() and "streetAddress" not in response.json()["addresses"][0]


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ({"type": "work", "country": "XX"}, "XX"),
        ({"type": "work", "country": "US", "region": "ZZ"}, "US-ZZ"),
        ({"type": "work", "country": "FR", "region": "US-NY"}, "US-NY"),
        ({"type": "home", "country": "US"}, "work address"),
    ],
)
def test_unknown_iso_codes_are_a_scim_invalid_value(hr_client, address, fragment):
    response = hr_client.post("/scim/v2/Users", scim_user(addresses=[address]), format="json")
    body = _error(response, 400, "invalidValue")
    assert fragment in body["detail"]
    assert not Employee.objects.exists()


def test_an_employee_number_is_required(hr_client):
    payload = scim_user()
    del payload[ENTERPRISE]
    _error(hr_client.post("/scim/v2/Users", payload, format="json"), 400, "invalidValue")


def test_user_names_are_unique_without_regard_to_case(hr_client):
    _create(hr_client, "E1", userName="Ann@Example.com")
    response = hr_client.post("/scim/v2/Users", scim_user("E2", userName="ann@example.COM"), format="json")
    _error(response, 409, "uniqueness")


def test_employee_numbers_are_unique(hr_client):
    _create(hr_client, "E1")
    _error(hr_client.post("/scim/v2/Users", scim_user("E1", userName="other"), format="json"), 409, "uniqueness")


def test_an_inactive_new_user_is_provisioned_terminated(hr_client):
    body = _create(hr_client, active=False)
    assert body["active"] is False
    assert Employee.objects.get().status == EmployeeStatus.TERMINATED


# Reading and filtering ---------------------------------------------------------


@pytest.fixture
def three(hr_client):
    _create(hr_client, "E1", userName="alice", externalId="okta-1", country="US", region="CA")
    _create(hr_client, "E2", userName="bob", externalId="okta-2", country="DE", region="BE")
    _create(hr_client, "E3", userName="alfred", country="US", region="NY", active=False)


def _names(hr_client, query: str) -> list[str]:
    response = hr_client.get("/scim/v2/Users", {"filter": query} if query else {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    return sorted(resource["userName"] for resource in body.get("Resources", []))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('userName eq "ALICE"', ["alice"]),
        ('userName sw "al"', ["alfred", "alice"]),
        ('userName co "o"', ["bob"]),
        ('externalId eq "okta-2"', ["bob"]),
        ('externalId eq "OKTA-2"', []),
        ("externalId pr", ["alice", "bob"]),
        ("active eq false", ["alfred"]),
        ('emails co "e2@"', ["bob"]),
        ('emails[type eq "work" and value sw "e1"]', ["alice"]),
        ('addresses[type eq "work" and country eq "DE"]', ["bob"]),
        ('addresses.region eq "US-NY"', ["alfred"]),
        (f'{ENTERPRISE}:employeeNumber eq "E3"', ["alfred"]),
        ('not (userName eq "bob") and active eq true', ["alice"]),
        ('userName eq "bob" or userName eq "alice"', ["alice", "bob"]),
        ("", ["alfred", "alice", "bob"]),
    ],
)
def test_filters_select_employees_in_the_database(hr_client, three, query, expected):
    assert _names(hr_client, query) == expected


@pytest.mark.parametrize(
    "query", ['title eq "x"', "userName eq", 'userName zz "a"', '(userName eq "a"', "active gt true", 'id sw "1"']
)
def test_unsupported_or_malformed_filters_are_invalid_filter_errors(hr_client, three, query):
    _error(hr_client.get("/scim/v2/Users", {"filter": query}), 400, "invalidFilter")


def test_pagination_follows_start_index_and_count(hr_client, three):
    body = hr_client.get("/scim/v2/Users", {"startIndex": 2, "count": 1}).json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 2, 1)
    assert body["Resources"][0]["userName"] == "bob"
    assert hr_client.get("/scim/v2/Users", {"count": 0}).json()["itemsPerPage"] == 0
    _error(hr_client.get("/scim/v2/Users", {"count": "ten"}), 400, "invalidValue")


def test_search_by_post_takes_the_same_filters(hr_client, three):
    response = hr_client.post(
        "/scim/v2/Users/.search",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": 'userName eq "bob"'},
        format="json",
    )
    assert [r["userName"] for r in response.json()["Resources"]] == ["bob"]


def test_attributes_and_excluded_attributes_shape_the_response(hr_client, three):
    body = hr_client.get("/scim/v2/Users", {"attributes": "userName"}).json()
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}
    body = hr_client.get("/scim/v2/Users", {"excludedAttributes": "emails"}).json()
    assert "emails" not in body["Resources"][0] and "userName" in body["Resources"][0]


def test_unknown_ids_and_endpoints_are_scim_404s(hr_client):
    _error(hr_client.get("/scim/v2/Users/999"), 404)
    _error(hr_client.get("/scim/v2/Users/abc"), 404)
    _error(hr_client.get("/scim/v2/Groups"), 404)
    _error(hr_client.get("/scim/v2/Schemas/urn:nope"), 404)


def test_discovery_describes_the_user_schema_and_its_extension(hr_client):
    config = hr_client.get("/scim/v2/ServiceProviderConfig").json()
    assert config["patch"]["supported"] and config["filter"]["supported"]
    assert not config["bulk"]["supported"] and not config["sort"]["supported"]
    types = hr_client.get("/scim/v2/ResourceTypes").json()["Resources"]
    assert types[0]["endpoint"] == "/Users"
    assert types[0]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": True}]
    schema = hr_client.get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    names = {attribute["name"] for attribute in schema["attributes"]}
    assert names == {"userName", "displayName", "active", "emails", "addresses"}
    enterprise = hr_client.get(f"/scim/v2/Schemas/{ENTERPRISE}").json()
    number = next(a for a in enterprise["attributes"] if a["name"] == "employeeNumber")
    assert number["mutability"] == "immutable" and number["required"]


def test_the_schema_lists_the_iso_codes_the_server_accepts_as_canonical_values(hr_client):
    schema = hr_client.get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    addresses = next(a for a in schema["attributes"] if a["name"] == "addresses")
    sub = {attribute["name"]: attribute for attribute in addresses["subAttributes"]}
    assert sub["country"]["canonicalValues"] == sorted(c.alpha_2 for c in pycountry.countries)
    # Full ISO 3166-2 codes: what the server returns, and accepts as sent (test_scim_compliance.py).
    assert sub["region"]["canonicalValues"] == sorted(s.code for s in pycountry.subdivisions)
    assert "US-NY" in sub["region"]["canonicalValues"]


# Changes -----------------------------------------------------------------------


def test_put_replaces_the_hr_data_and_clears_what_it_omits(hr_client):
    created = _create(hr_client)
    payload = scim_user(displayName="Renamed", country="US", region="NY")
    del payload["emails"]
    response = hr_client.put(f"/scim/v2/Users/{created['id']}", payload, format="json")
    assert response.status_code == 200, response.content
    employee = Employee.objects.get()
    assert (employee.display_name, employee.subdivision, employee.email) == ("Renamed", "US-NY", "")
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_TRANSFERRED).count() == 1


def test_the_employee_number_never_changes(hr_client):
    created = _create(hr_client)
    payload = scim_user("E9999")
    _error(hr_client.put(f"/scim/v2/Users/{created['id']}", payload, format="json"), 400, "mutability")
    assert Employee.objects.get().hr_id == "E2001"


def test_a_patch_of_the_work_country_is_an_audited_transfer(hr_client):
    created = _create(hr_client, country="US", region="CA")
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op({"op": "replace", "path": 'addresses[type eq "work"].country', "value": "DE"}),
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["addresses"] == [{"type": "work", "country": "DE"}]
    entry = AuditEntry.objects.get(event_type=EventType.EMPLOYEE_TRANSFERRED)
    assert entry.payload["to"] == {"country": "DE", "subdivision": ""} and entry.actor == "hr:workday"


def test_a_patch_can_set_country_and_region_together(hr_client):
    created = _create(hr_client, country="US", region="CA")
    hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op(
            {"op": "replace", "path": 'addresses[type eq "work"].country', "value": "CA"},
            {"op": "replace", "path": 'addresses[type eq "work"].region', "value": "ON"},
        ),
        format="json",
    )
    employee = Employee.objects.get()
    assert (employee.country, employee.subdivision) == ("CA", "CA-ON")


def test_a_patch_with_an_unknown_region_changes_nothing(hr_client):
    created = _create(hr_client)
    before = AuditEntry.objects.count()
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op(
            {"op": "replace", "path": "displayName", "value": "Changed"},
            {"op": "replace", "path": 'addresses[type eq "work"].region', "value": "ZZ"},
        ),
        format="json",
    )
    _error(response, 400, "invalidValue")
    assert Employee.objects.get().display_name == "Person E2001"
    assert AuditEntry.objects.count() == before


def test_active_false_terminates_and_is_audited(hr_client):
    created = _create(hr_client)
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}", patch_op({"op": "replace", "path": "active", "value": False}), format="json"
    )
    assert response.json()["active"] is False
    assert Employee.objects.get().status == EmployeeStatus.TERMINATED
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_TERMINATED).exists()


def test_a_terminated_employee_cannot_be_reactivated(hr_client):
    created = _create(hr_client, active=False)
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}", patch_op({"op": "replace", "path": "active", "value": True}), format="json"
    )
    _error(response, 409)


def test_active_true_keeps_an_employee_on_leave(hr_client):
    created = _create(hr_client)
    employee_set_status(employee=Employee.objects.get(), status=EmployeeStatus.ON_LEAVE, actor=SYSTEM)
    hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op({"op": "replace", "path": "displayName", "value": "Back soon"}),
        format="json",
    )
    assert Employee.objects.get().status == EmployeeStatus.ON_LEAVE


def test_removing_the_work_address_is_refused(hr_client):
    created = _create(hr_client)
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}", patch_op({"op": "remove", "path": "addresses"}), format="json"
    )
    assert response.status_code == 400
    assert Employee.objects.get().country == "US"


def test_entra_style_patches_without_a_path_are_applied(hr_client):
    created = _create(hr_client)
    response = hr_client.patch(
        f"/scim/v2/Users/{created['id']}",
        patch_op({"op": "Replace", "value": {"displayName": "Entra Name", f"{ENTERPRISE}:department": "Legal"}}),
        format="json",
    )
    assert response.status_code == 200, response.content
    employee = Employee.objects.get()
    assert (employee.display_name, employee.department) == ("Entra Name", "Legal")


def test_delete_terminates_and_hides_but_never_erases(hr_client):
    created = _create(hr_client)
    response = hr_client.delete(f"/scim/v2/Users/{created['id']}")
    assert response.status_code == 204
    employee = Employee.objects.get()
    assert employee.status == EmployeeStatus.TERMINATED and employee.deprovisioned_at is not None
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_DEPROVISIONED, subject="E2001").exists()
    _error(hr_client.get(f"/scim/v2/Users/{created['id']}"), 404)
    _error(hr_client.delete(f"/scim/v2/Users/{created['id']}"), 404)
    assert hr_client.get("/scim/v2/Users").json()["totalResults"] == 0


def test_employees_provisioned_elsewhere_are_served_with_their_hr_id_as_user_name(hr_client):
    employee = make_employee(hr_id="E7", country="US", subdivision="US-NY")
    body = hr_client.get(f"/scim/v2/Users/{employee.pk}").json()
    assert body["userName"] == "E7" and body["addresses"][0]["region"] == "US-NY"


def test_meta_last_modified_can_be_filtered(hr_client, three):
    since = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(_names(hr_client, f'meta.lastModified gt "{since}"')) == 3
    _error(hr_client.get("/scim/v2/Users", {"filter": 'meta.lastModified gt "yesterday"'}), 400, "invalidFilter")


# Bad input ---------------------------------------------------------------------

BAD_BODIES = [
    "{not json",
    "[]",
    "null",
    '"a string"',
    "42",
    json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
    json.dumps({**scim_user(), "active": "maybe"}),
    json.dumps({**scim_user(), "addresses": "US"}),
    json.dumps({**scim_user(), "addresses": [{"type": "work", "country": 7}]}),
    json.dumps({**scim_user(), "emails": [{"value": "not-an-email", "type": "work"}]}),
    json.dumps({**scim_user(), "userName": "x" * 5000}),
    json.dumps({**scim_user(), "displayName": "x" * 5000}),
    json.dumps({**scim_user(), ENTERPRISE: {"employeeNumber": "E" * 100}}),
    json.dumps({**scim_user(), "id": "123", "meta": {"created": "yesterday"}}),
    json.dumps({"schemas": ["urn:other"], "userName": "x"}),
]
BAD_PATCHES = [
    "{}",
    json.dumps({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}),
    json.dumps(patch_op({"op": "explode", "path": "displayName", "value": "x"})),
    json.dumps(patch_op({"op": "replace", "path": "no such attr[", "value": "x"})),
    json.dumps(patch_op({"op": "replace", "path": "active", "value": "yes please"})),
    json.dumps(patch_op({"op": "remove", "path": "userName"})),
    json.dumps(patch_op({"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "E-other"})),
    json.dumps(patch_op({"op": "replace", "path": "addresses", "value": [{"type": "work", "country": "ZZ"}]})),
]


@pytest.mark.parametrize("raw", BAD_BODIES)
@pytest.mark.parametrize("method", ["post", "put"])
def test_bad_users_are_scim_errors_never_500(hr_client, raw, method):
    url = "/scim/v2/Users"
    if method == "put":
        url = f"/scim/v2/Users/{_create(hr_client, 'E5000')['id']}"
    response = getattr(hr_client, method)(url, raw, content_type="application/scim+json")
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["schemas"] == [SCIM_ERROR]


@pytest.mark.parametrize("raw", BAD_PATCHES)
def test_bad_patches_are_scim_errors_and_change_nothing(hr_client, raw):
    created = _create(hr_client)
    before = AuditEntry.objects.count()
    response = hr_client.patch(f"/scim/v2/Users/{created['id']}", raw, content_type="application/scim+json")
    assert 400 <= response.status_code < 500, response.content
    assert response.json()["schemas"] == [SCIM_ERROR]
    assert AuditEntry.objects.count() == before


def test_plain_json_is_accepted_and_other_media_types_are_refused(hr_client):
    assert hr_client.post("/scim/v2/Users", json.dumps(scim_user()), content_type="application/json").status_code == 201
    response = hr_client.post("/scim/v2/Users", "userName=x", content_type="application/x-www-form-urlencoded")
    _error(response, 415)


# Idempotency-Key ---------------------------------------------------------------------------


def test_a_retried_create_with_the_same_key_returns_the_first_response(hr_client):
    body = scim_user("E2901")
    first = hr_client.post("/scim/v2/Users", body, format="json", HTTP_IDEMPOTENCY_KEY="sync-1")
    retry = hr_client.post("/scim/v2/Users", body, format="json", HTTP_IDEMPOTENCY_KEY="sync-1")
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry["Location"] == first["Location"]
    assert retry["Content-Type"].startswith("application/scim+json")
    assert retry["Idempotent-Replayed"] == "true"
    assert Employee.objects.filter(hr_id="E2901").count() == 1
    assert AuditEntry.objects.filter(event_type=EventType.EMPLOYEE_PROVISIONED, subject="E2901").count() == 1


def test_the_same_key_with_another_body_is_a_scim_422(hr_client):
    hr_client.post("/scim/v2/Users", scim_user("E2902"), format="json", HTTP_IDEMPOTENCY_KEY="sync-2")
    response = hr_client.post("/scim/v2/Users", scim_user("E2903"), format="json", HTTP_IDEMPOTENCY_KEY="sync-2")
    _error(response, 422)
    assert not Employee.objects.filter(hr_id="E2903").exists()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_retried_replacements_patches_and_deletes_change_once(hr_client, method):
    created = _create(hr_client, "E2904")
    url = f"/scim/v2/Users/{created['id']}"
    payload = {
        "put": scim_user("E2904", country="DE", region=None),
        "patch": patch_op({"op": "replace", "path": 'addresses[type eq "work"].country', "value": "DE"}),
        "delete": None,
    }[method]
    send = getattr(hr_client, method)
    responses = [send(url, payload, format="json", HTTP_IDEMPOTENCY_KEY=f"{method}-1") for _ in range(2)]
    assert responses[0].status_code == responses[1].status_code == (204 if method == "delete" else 200)
    assert responses[1]["Idempotent-Replayed"] == "true"
    event = EventType.EMPLOYEE_DEPROVISIONED if method == "delete" else EventType.EMPLOYEE_TRANSFERRED
    assert AuditEntry.objects.filter(event_type=event, subject="E2904").count() == 1
    if method != "delete":
        assert responses[1].json() == responses[0].json()
    # Another body under a used key is refused, and changes nothing.
    other = patch_op({"op": "replace", "path": "displayName", "value": "Someone else"})
    _error(hr_client.patch(url, other, format="json", HTTP_IDEMPOTENCY_KEY=f"{method}-1"), 422)
    assert Employee.objects.get(hr_id="E2904").display_name == "Person E2904"


def test_a_refused_write_is_replayed_as_the_same_refusal(hr_client):
    _create(hr_client, "E2905")
    duplicate = scim_user("E2905")
    first = hr_client.post("/scim/v2/Users", duplicate, format="json", HTTP_IDEMPOTENCY_KEY="dup")
    retry = hr_client.post("/scim/v2/Users", duplicate, format="json", HTTP_IDEMPOTENCY_KEY="dup")
    _error(first, 409, "uniqueness")
    _error(retry, 409, "uniqueness")
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"

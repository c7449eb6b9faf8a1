"""The OpenAPI schema documents the self-service and policy APIs completely and without warnings."""

from __future__ import annotations

import jsonschema
import pytest
from django.urls import include, path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

PATTERNS = [path("api/v1/", include("governance.urls")), path("api/v1/", include("consent.urls"))]
WRITES = ("post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def schema():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        generated = SchemaGenerator(patterns=PATTERNS).get_schema(request=None, public=True)
    problems = dict(GENERATOR_STATS._warn_cache) | dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    return generated, problems


def operations(schema):
    for route, item in schema["paths"].items():
        for method, operation in item.items():
            yield route, method, operation


def test_the_schema_generates_without_warnings_or_errors(schema):
    generated, problems = schema
    assert problems == {}
    validate_schema(generated)


def test_the_whole_served_schema_generates_without_warnings_or_errors():
    # Every app's endpoints together: enum names can collide only across components.
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    problems = dict(GENERATOR_STATS._warn_cache) | dict(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()
    assert problems == {}
    validate_schema(generated)


def test_every_endpoint_is_in_the_schema(schema):
    routes = set(schema[0]["paths"])
    assert {
        "/api/v1/me/consent",
        "/api/v1/me/consent/withdraw-all",
        "/api/v1/me/acknowledgements",
        "/api/v1/me/pause",
        "/api/v1/me/receipts/",
        "/api/v1/me/receipts/{receipt_id}",
        "/api/v1/notices/{version}/approve",
        "/api/v1/jurisdiction-rules/{id}/approve",
    } <= routes
    for resource in (
        "regions",
        "jurisdiction-rules",
        "legal-instruments",
        "purposes",
        "data-categories",
        "notices",
        "retention-policies",
        "exclusions",
    ):
        assert f"/api/v1/{resource}/" in routes


def test_every_operation_documents_success_and_problem_responses(schema):
    for route, method, operation in operations(schema[0]):
        codes = set(operation["responses"])
        assert any(code.startswith("2") for code in codes), (route, method)
        errors = [code for code in codes if code[0] in "45"]
        assert {"401", "403", "429"} <= set(errors), (route, method, codes)
        for code in errors:
            content = operation["responses"][code]["content"]
            assert list(content) == ["application/problem+json"], (route, method, code)
            assert content["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
            assert content["application/problem+json"].get("examples"), (route, method, code)


def test_every_write_documents_its_body_the_idempotency_key_and_an_example(schema):
    for route, method, operation in operations(schema[0]):
        if method not in WRITES:
            continue
        assert "Idempotency-Key" in {p["name"] for p in operation.get("parameters", [])}, (route, method)
        assert "422" in operation["responses"], (route, method)
        body = operation.get("requestBody")
        if body is None:
            continue  # no body expected (withdraw-all, resume, delete)
        media = body["content"]["application/json"]
        assert media["schema"], (route, method)
        assert media.get("examples"), (route, method)


def test_successful_answers_carry_examples_where_the_shape_is_the_contract(schema):
    paths = schema[0]["paths"]
    for route, method in (
        ("/api/v1/me/consent", "get"),
        ("/api/v1/me/consent", "put"),
        ("/api/v1/me/receipts/{receipt_id}", "get"),
    ):
        assert paths[route][method]["responses"]["200"]["content"]["application/json"]["examples"], (route, method)


def test_the_served_schema_is_public_and_includes_the_self_service_api(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/me/consent" in response.json()["paths"]


def test_the_served_schema_documents_the_public_keys_and_the_health_check(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]

    jwks = paths["/.well-known/jwks.json"]["get"]
    assert jwks["security"] == [] and "application/jwk-set+json" in jwks["responses"]["200"]["content"]
    health = paths["/health"]["get"]
    assert health["security"] == [] and {"200", "503"} <= set(health["responses"])


@pytest.mark.parametrize(
    ("route", "media_type"), [("/.well-known/jwks.json", "application/jwk-set+json"), ("/health", "application/json")]
)
def test_the_public_keys_and_the_health_check_answer_as_documented(client, db, route, media_type):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    documented = schema["paths"][route]["get"]["responses"]["200"]["content"][media_type]["schema"]

    response = client.get(route)

    assert response.status_code == 200
    assert response["Content-Type"] == media_type
    # The documented schema's references point into the whole document's components.
    jsonschema.Draft202012Validator({**documented, "components": schema["components"]}).validate(response.json())


@pytest.mark.parametrize(
    ("route", "page"),
    [
        ("/api/v1/audit/entries", "PaginatedEntryList"),
        ("/api/v1/audit/checkpoints/", "PaginatedCheckpointList"),
        ("/api/v1/audit/exports", "PaginatedExportList"),
        ("/api/v1/rights-requests", "PaginatedStaffRightsRequestList"),
    ],
)
def test_lists_that_answer_a_page_are_documented_as_a_page(client, route, page):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    ok = schema["paths"][route]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert ok == {"$ref": f"#/components/schemas/{page}"}
    assert {"count", "next", "previous", "results"} <= set(schema["components"]["schemas"][page]["properties"])


def test_simulate_documents_malformed_input_and_the_idempotency_key(client):
    operation = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]["/api/v1/simulate"]["post"]

    assert {"400", "413", "422", "429"} <= set(operation["responses"])
    assert "Idempotency-Key" in {parameter["name"] for parameter in operation["parameters"]}


def test_every_scim_operation_documents_its_errors_in_scim_s_format(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    scim = [(route, method, op) for route, method, op in operations(schema) if route.startswith("/scim/")]

    assert len(scim) >= 10
    for route, method, operation in scim:
        responses = operation["responses"]
        assert {"401", "403", "429"} <= set(responses), (route, method)
        if "{id}" in route:
            assert "404" in responses, (route, method)
        for code in (code for code in responses if code[0] == "4"):
            content = responses[code]["content"]
            assert list(content) == ["application/scim+json"], (route, method, code)
            assert content["application/scim+json"]["schema"] == {"$ref": "#/components/schemas/ScimError"}


def test_every_paginated_list_documents_that_a_bad_limit_or_offset_is_invalid_input(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    paginated = [
        (route, operation)
        for route, item in paths.items()
        for operation in item.values()
        if {"limit", "offset"} <= {parameter["name"] for parameter in operation.get("parameters", [])}
    ]

    assert len(paginated) >= 10
    for route, operation in paginated:
        assert "422" in operation["responses"], route


def test_every_documented_api_error_is_problem_json(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for route, method, operation in operations(schema):
        if not route.startswith("/api/"):
            continue  # SCIM answers SCIM Error bodies; the JWKS and the health check have no errors
        for code, response in operation["responses"].items():
            if code[0] in "45" and "content" in response:
                assert list(response["content"]) == ["application/problem+json"], (route, method, code)


def test_a_problem_s_errors_may_list_the_invalid_rows_of_an_uploaded_file(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    problem = {**schema["components"]["schemas"]["Problem"], "components": schema["components"]}
    rows = [{"row": 3, "field": "country", "message": "'XX' is not an ISO 3166-1 country."}]

    for errors in ({"notice_version": ["A valid integer is required."]}, rows):
        body = {"type": "t", "title": "t", "status": 422, "detail": "d", "code": "invalid_csv", "errors": errors}
        jsonschema.Draft202012Validator(problem).validate(body)


def test_every_api_write_that_reads_a_json_body_documents_a_malformed_or_oversized_one(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for route, method, operation in operations(schema):
        body = operation.get("requestBody", {}).get("content", {})
        # A DELETE reads no body but still refuses a malformed or oversized one.
        if route.startswith("/api/") and ("application/json" in body or method == "delete"):
            assert {"400", "413"} <= set(operation["responses"]), (route, method)


def test_every_api_operation_documents_the_429_of_its_rate_limit(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for route, method, operation in operations(schema):
        if route.startswith(("/api/", "/scim/")):
            assert "429" in operation["responses"], (route, method)

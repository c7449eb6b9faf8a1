"""The OpenAPI schema documents the decision API completely, without generator warnings."""

from __future__ import annotations

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db
OURS = ("/api/v1/decisions/capture", "/api/v1/decisions/use", "/api/v1/simulate", "/api/v1/tokens/")
VIEWS = ("CaptureDecisionView", "UseDecisionView", "SimulateView", "TokenListView", "TokenDetailView")


@pytest.fixture(scope="module")
def schema():
    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        generated = SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    return generated, messages


def test_the_schema_has_no_warnings_or_errors_for_the_decision_views(schema):
    _, messages = schema
    assert not [message for message in messages if any(view in message for view in VIEWS)]


def test_every_decision_endpoint_documents_its_bodies_and_errors(schema):
    paths = schema[0]["paths"]
    for path in OURS:
        assert path in paths, path
    capture = paths["/api/v1/decisions/capture"]["post"]
    assert capture["requestBody"]["content"]["application/json"]["examples"]
    assert {"200", "401", "403", "413", "422"} <= set(capture["responses"])
    assert "application/problem+json" in capture["responses"]["422"]["content"]
    use = paths["/api/v1/decisions/use"]["post"]
    assert {"application/json", "application/x-ndjson"} <= set(use["requestBody"]["content"])
    assert {"application/json", "application/x-ndjson"} <= set(use["responses"]["200"]["content"])
    assert paths["/api/v1/tokens/{id}"]["delete"]["responses"]["204"]


def test_the_bearer_scheme_is_documented(schema):
    assert schema[0]["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"


def test_the_simulation_answer_documents_its_assumptions(schema):
    simulate = schema[0]["paths"]["/api/v1/simulate"]["post"]
    assert "assumptions" in simulate["description"]
    ref = simulate["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    component = schema[0]["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assumptions = component["properties"]["assumptions"]
    assert "assumptions" in component["required"] and "private" in assumptions["description"]
    choices = assumptions["items"]
    if "$ref" in choices:
        choices = schema[0]["components"]["schemas"][choices["$ref"].rsplit("/", 1)[1]]
    assert set(choices["enum"]) == {"consent_granted_under_current_notice", "not_paused"}

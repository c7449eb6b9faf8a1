"""Bad input never yields a 500: a 4xx problem+json, or invalid_record inside a batch or stream."""

from __future__ import annotations

import json

import pytest

from decisions.tests.conftest import PURPOSE, device_client, grant_consent, pipeline_client
from decisions.tests.test_use_api import issue_grant, read_lines, record

pytestmark = pytest.mark.django_db
CAPTURE = "/api/v1/decisions/capture"
USE = "/api/v1/decisions/use"
HUNDRED_MB = 100 * 1024 * 1024


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["code"] and body["title"]
    return body


@pytest.fixture
def device(us_employee):
    return device_client(us_employee)


@pytest.fixture
def pipeline(policy):
    return pipeline_client()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"purpose": "ai_agent_training", "categories": ["keystrokes"', 400),
        (b"[" * 20_000 + b"]" * 20_000, 400),
        (b"\xff\xfe\x00garbage", 400),
        (b'{"purpose": NaN, "categories": ["keystrokes"]}', 400),
        (b"[]", 422),
        (b'"just a string"', 422),
        (b"null", 422),
        (b"{}", 422),
    ],
)
def test_malformed_capture_bodies_are_problems(device, body, status):
    response = device.api.post(CAPTURE, data=body, content_type="application/json")
    assert_problem(response, status)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": 5, "categories": ["keystrokes"]}, "purpose"),
        ({"purpose": None, "categories": ["keystrokes"]}, "purpose"),
        ({"purpose": PURPOSE, "categories": "keystrokes"}, "categories"),
        ({"purpose": PURPOSE, "categories": [1, 2]}, "categories"),
        ({"purpose": PURPOSE, "categories": []}, "categories"),
        ({"purpose": PURPOSE, "categories": ["keystrokes", "keystrokes"]}, "categories"),
        ({"purpose": PURPOSE, "categories": ["brainwaves"]}, "categories"),
        ({"purpose": PURPOSE, "categories": ["keystrokes"] * 100}, "categories"),
        ({"purpose": "x" * 10_000, "categories": ["keystrokes"]}, "purpose"),
        ({"purpose": PURPOSE, "categories": ["keystrokes"], "context": "vscode"}, "context"),
        ({"purpose": PURPOSE, "categories": ["keystrokes"], "context": {"private_browsing": "yes"}}, "context"),
        ({"purpose": PURPOSE, "categories": ["keystrokes"], "context": {"app": ["a"]}}, "context"),
        ({"purpose": PURPOSE, "categories": ["keystrokes"], "context": {"flags": "private_browsing"}}, "context"),
    ],
)
def test_wrong_types_and_unknown_categories_in_a_capture_request_are_invalid(device, body, field):
    problem = assert_problem(device.post(CAPTURE, body), 422)
    assert field in problem["errors"]


def test_a_capture_request_of_the_wrong_media_type_is_refused(device):
    response = device.api.post(CAPTURE, data="purpose=x", content_type="text/plain")
    assert_problem(response, 415)


def test_an_oversized_capture_body_is_refused_unread(device):
    body = json.dumps({"purpose": PURPOSE, "categories": ["keystrokes"], "pad": "x" * 100_000})
    assert_problem(device.api.post(CAPTURE, data=body, content_type="application/json"), 413)


def test_a_hundred_megabyte_body_is_413_for_capture_and_json_use(device, pipeline):
    body = b" " * HUNDRED_MB
    assert_problem(device.api.post(CAPTURE, data=body, content_type="application/json"), 413)
    assert_problem(pipeline.api.post(USE, data=body, content_type="application/json"), 413)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"purpose": "ai_agent_training", "records": [', 400),
        (b'{"purpose": "ai_agent_training", "records": {}}', 422),
        (b'{"purpose": "ai_agent_training", "records": "r1"}', 422),
        (b'{"purpose": "ai_agent_training"}', 422),
        (b'{"records": [{"id": "r1"}]}', 422),
        (b'{"purpose": "ai_agent_training", "records": [{"id": "r1"}], "release_keys": "yes"}', 422),
        (b"[1, 2, 3]", 422),
    ],
)
def test_malformed_use_batches_are_problems(pipeline, body, status):
    assert_problem(pipeline.api.post(USE, data=body, content_type="application/json"), status)


@pytest.mark.parametrize(
    ("change", "id_echoed"),
    [
        ({"captured_at": "2026-11-20T14:02:11"}, True),
        ({"captured_at": "9999-12-31T23:59:59Z"}, True),
        ({"captured_at": "1970-01-01T00:00:00Z"}, True),
        ({"captured_at": "last tuesday"}, True),
        ({"captured_at": 1763647331}, True),
        ({"captured_at": None}, True),
        ({"category": 7}, True),
        ({"subject": ""}, True),
        ({"grant_id": ["g_1"]}, True),
        ({"grant_id": "g" * 1000}, True),
        ({"id": 42}, False),
        ({"id": "r" * 1000}, False),
        ({"id": None}, False),
    ],
)
def test_each_bad_record_is_denied_as_invalid_without_failing_the_batch(us_employee, pipeline, change, id_echoed):
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    good = record(grant, id="good")
    response = pipeline.post(USE, {"purpose": PURPOSE, "records": [{**good, "id": "bad", **change}, good]})

    assert response.status_code == 200, response.content
    bad_result, good_result = response.json()["results"]
    assert [reason["code"] for reason in bad_result["reasons"]] == ["invalid_record"]
    assert bad_result["id"] == ("bad" if id_echoed else None) and not bad_result["allowed"]
    assert good_result["allowed"]


def test_records_that_are_not_objects_are_invalid_records(pipeline):
    response = pipeline.post(USE, {"purpose": PURPOSE, "records": [None, 5, "r1", [], True]})
    assert response.json()["summary"] == {"allowed": 0, "denied": 5, "by_reason": {"invalid_record": 5}}


def test_broken_ndjson_lines_are_invalid_records_and_the_stream_goes_on(us_employee, pipeline):
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    good = json.dumps(record(grant, id="good")).encode()
    lines = [
        b'{"id": "x"',
        b"[]",
        b"null",
        b"\xff\xfe not utf-8",
        b"[" * 50_000 + b"]" * 50_000,
        b"   ",
        good + b"\r",
        b'{"id": "z" ' + b"x" * 200_000 + b"}",
        good,
    ]
    out = read_lines(
        pipeline.api.post(f"{USE}?purpose={PURPOSE}", data=b"\n".join(lines), content_type="application/x-ndjson")
    )
    results, summary = out[:-1], out[-1]["summary"]
    # Blank lines are not records; everything else answers in order.
    assert [r["allowed"] for r in results] == [False, False, False, False, False, True, False, True]
    assert {r["reasons"][0]["code"] for r in results if not r["allowed"]} == {"invalid_record"}
    assert summary == {"allowed": 2, "denied": 6, "by_reason": {"invalid_record": 6}}


def test_a_hundred_megabyte_ndjson_line_is_one_invalid_record_read_in_constant_memory(pipeline):
    body = b'{"id": "huge", "pad": "' + b"x" * HUNDRED_MB + b'"}\n{"id": "after"}\n'
    out = read_lines(pipeline.api.post(f"{USE}?purpose={PURPOSE}", data=body, content_type="application/x-ndjson"))
    assert [line.get("id") for line in out[:-1]] == [None, "after"]
    assert "longer than" in out[0]["reasons"][0]["detail"]
    assert out[-1]["summary"]["denied"] == 2


def test_an_empty_ndjson_body_is_invalid(pipeline):
    response = pipeline.api.post(f"{USE}?purpose={PURPOSE}", data=b"", content_type="application/x-ndjson")
    assert_problem(response, 422)


def test_a_use_request_of_the_wrong_media_type_is_refused(pipeline):
    assert_problem(pipeline.api.post(USE, data="a,b,c", content_type="text/csv"), 415)

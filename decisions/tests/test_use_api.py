from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEntry, EventType
from conftest import SYSTEM
from consent.services import consent_withdraw
from decisions import engine
from decisions.models import DataKey
from decisions.services import capture_decide
from decisions.tests.conftest import PURPOSE, device_client, grant_consent, pipeline_client
from governance import services as gov
from people.services import employee_terminate

pytestmark = pytest.mark.django_db
USE = "/api/v1/decisions/use"


def issue_grant(employee, *categories, at=None, device=None):
    """A real grant, issued by a capture decision at ``at`` (consent must be in place then)."""
    device = device or device_client(employee)
    outcome = capture_decide(
        token=device.token,
        request=engine.CaptureRequest(purpose=PURPOSE, categories=categories),
        at=at or timezone.now(),
    )
    assert outcome.grant is not None, outcome.decision
    return outcome.grant.grant


def record(grant, category=None, *, at=None, id="r1", subject=None):
    captured = at or grant.issued_at + timedelta(seconds=5)
    return {
        "id": id,
        "subject": subject or grant.subject,
        "category": category or grant.categories[0],
        "captured_at": captured.isoformat().replace("+00:00", "Z"),
        "grant_id": grant.id,
    }


def use(client, records, purpose=PURPOSE, **extra):
    response = client.post(USE, {"purpose": purpose, "records": records, **extra})
    assert response.status_code == 200, response.content
    return response.json()


def reasons(body, index=0):
    return [reason["code"] for reason in body["results"][index]["reasons"]]


@pytest.fixture
def granted(us_employee):
    grant_consent(us_employee, "keystrokes", "mouse_movement")
    return issue_grant(us_employee, "keystrokes", "mouse_movement")


def test_records_captured_under_their_grant_are_allowed(granted):
    body = use(pipeline_client(), [record(granted, "keystrokes"), record(granted, "mouse_movement", id="r2")])
    assert [result["allowed"] for result in body["results"]] == [True, True]
    assert body["summary"] == {"allowed": 2, "denied": 0, "by_reason": {}}
    assert body["results"][0] == {"id": "r1", "allowed": True, "reasons": []}


def test_a_record_whose_grant_is_unknown_has_no_capture_grant(granted):
    body = use(pipeline_client(), [{**record(granted), "grant_id": "g_neverissued"}])
    assert reasons(body) == ["no_capture_grant"]


@pytest.mark.parametrize(
    "change",
    [
        {"category": "screenshots"},
        {"subject": "p_someoneelse"},
        {"captured_at": "2020-01-01T00:00:00Z"},
    ],
)
def test_a_record_outside_its_grant_is_a_grant_mismatch(granted, change):
    body = use(pipeline_client(), [{**record(granted), **change}])
    assert "grant_mismatch" in reasons(body)


def test_a_record_captured_after_the_grant_expired_is_a_grant_mismatch(granted):
    late = record(granted, at=granted.expires_at + timedelta(seconds=1))
    assert reasons(use(pipeline_client(), [late])) == ["grant_mismatch"]


def test_data_captured_for_one_purpose_is_not_used_for_another(granted):
    gov.purpose_save(slug="research", name="Research", description="Other.", categories=["keystrokes"], actor=SYSTEM)
    body = use(pipeline_client(PURPOSE, "research"), [record(granted)], purpose="research")
    assert reasons(body)[0] == "grant_mismatch"


def test_records_captured_before_a_withdrawal_are_denied_after_it(us_employee, granted):
    client = pipeline_client()
    assert use(client, [record(granted, "keystrokes")])["results"][0]["allowed"]

    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)

    body = use(client, [record(granted, "keystrokes"), record(granted, "mouse_movement", id="r2")])
    assert reasons(body, 0) == ["consent_withdrawn"]
    assert body["results"][1]["allowed"], "the other category was not withdrawn"


def test_a_later_grant_after_re_consent_does_not_revive_earlier_data(us_employee, granted):
    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    grant_consent(us_employee, "keystrokes")
    later = issue_grant(us_employee, "keystrokes")

    body = use(pipeline_client(), [record(granted, "keystrokes"), record(later, "keystrokes", id="r2")])
    assert reasons(body, 0) == ["consent_withdrawn"] and body["results"][1]["allowed"]


def test_records_older_than_the_retention_limit_are_expired(us_employee):
    then = timezone.now() - timedelta(days=40)
    grant_consent(us_employee, "keystrokes", at=then)
    old = issue_grant(us_employee, "keystrokes", at=then + timedelta(minutes=1))
    assert reasons(use(pipeline_client(), [record(old)])) == ["retention_expired"]


def test_a_rule_cap_shorter_than_the_retention_policy_wins(policy, us_employee):
    us_rule = policy["rules"]["US"]
    gov.rule_approve(
        rule=gov.rule_draft(
            region=us_rule.region,
            status="allow",
            effective_from=us_rule.effective_from,
            max_retention_days={"keystrokes": 1},
            supersedes=us_rule,
            actor=SYSTEM,
        ),
        actor=SYSTEM,
        via="tests",
    )
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert reasons(use(pipeline_client(), [record(grant)])) == ["retention_expired"]


def test_a_terminated_employee_s_data_is_usable_until_the_deletion_window_passes(us_employee, granted):
    client = pipeline_client()
    employee_terminate(employee=us_employee, actor=SYSTEM)
    assert use(client, [record(granted)])["results"][0]["allowed"]
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert "employee_inactive" in reasons(use(client, [record(granted)]))


def test_a_prohibited_purpose_is_never_usable(granted):
    body = use(pipeline_client("performance_evaluation"), [record(granted)], purpose="performance_evaluation")
    assert "purpose_prohibited" in reasons(body)


def test_each_batch_is_one_audit_entry_with_counts_and_a_digest_of_the_ids(granted):
    records = [record(granted), {**record(granted), "id": "r2", "grant_id": "g_unknown"}, {"id": 5}]
    body = use(pipeline_client(), records)

    entry = AuditEntry.objects.get(event_type=EventType.USE_BATCH_DECIDED)
    assert entry.object_id == body["batch_id"]
    assert entry.payload["by_reason"] == {"invalid_record": 1, "no_capture_grant": 1}
    assert (entry.payload["allowed"], entry.payload["denied"], entry.payload["complete"]) == (1, 2, True)
    assert entry.payload["records_sha256"] == hashlib.sha256(b"r1\nr2\n\n").hexdigest()
    assert body["summary"]["by_reason"] == entry.payload["by_reason"]


def test_release_keys_answers_the_data_key_of_the_allowed_record(granted):
    (key_id,) = DataKey.objects.filter(category=granted.categories[0]).values_list("id", flat=True)
    keys = use(pipeline_client(), [record(granted)], release_keys=True)["keys"]
    assert list(keys) == [key_id] and len(base64.b64decode(keys[key_id])) == 32


def test_a_json_batch_beyond_ten_thousand_records_is_too_large(granted):
    response = pipeline_client().post(USE, {"purpose": PURPOSE, "records": [record(granted)] * 10_001})
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"


def test_an_empty_json_batch_is_invalid(granted):
    response = pipeline_client().post(USE, {"purpose": PURPOSE, "records": []})
    assert response.status_code == 422 and "records" in response.json()["errors"]


def test_a_pipeline_is_refused_for_purposes_outside_its_token(granted):
    gov.purpose_save(slug="research", name="Research", description="Other.", categories=["keystrokes"], actor=SYSTEM)
    response = pipeline_client(PURPOSE).post(USE, {"purpose": "research", "records": [record(granted)]})
    assert response.status_code == 403 and response.json()["code"] == "purpose_out_of_scope"


# NDJSON -------------------------------------------------------------------------------


def stream(client, lines: list[bytes], purpose=PURPOSE, query=""):
    body = b"\n".join(lines) + b"\n"
    response = client.api.post(f"{USE}?purpose={purpose}{query}", data=body, content_type="application/x-ndjson")
    return response


def read_lines(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"] == "application/x-ndjson"
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_ndjson_answers_one_line_per_record_in_order_then_a_summary(granted):
    lines = [json.dumps(record(granted, id=f"r{i}")).encode() for i in range(5)]
    lines.insert(2, b'{"id": "broken", ')
    out = read_lines(stream(pipeline_client(), lines))

    assert [line.get("id") for line in out[:-1]] == ["r0", "r1", None, "r2", "r3", "r4"]
    assert out[2]["reasons"][0]["code"] == "invalid_record" and not out[2]["allowed"]
    assert out[-1]["summary"] == {"allowed": 5, "denied": 1, "by_reason": {"invalid_record": 1}}
    entry = AuditEntry.objects.get(event_type=EventType.USE_BATCH_DECIDED)
    assert entry.payload["media_type"] == "application/x-ndjson" and entry.payload["records"] == 6


def test_ndjson_takes_purpose_and_release_keys_from_the_query(granted):
    out = read_lines(stream(pipeline_client(), [json.dumps(record(granted)).encode()], query="&release_keys=true"))
    assert list(out[-1]["keys"]) == list(DataKey.objects.filter(category="keystrokes").values_list("id", flat=True))


def test_ndjson_is_refused_for_a_purpose_outside_the_token(granted):
    response = stream(pipeline_client(), [json.dumps(record(granted)).encode()], purpose="performance_evaluation")
    assert response.status_code == 403


def test_ndjson_without_a_purpose_is_invalid(granted):
    response = pipeline_client().api.post(USE, data=b"{}\n", content_type="application/x-ndjson")
    assert response.status_code == 422 and "purpose" in response.json()["errors"]


def test_answers_do_not_change_when_the_stream_s_caches_overflow(policy, monkeypatch):
    from conftest import make_employee
    from decisions import usebatch

    employees = [make_employee(country="US", subdivision="US-WA") for _ in range(3)]
    lines: list[bytes] = []
    for index, employee in enumerate(employees):
        grant_consent(employee, "keystrokes")
        for _ in range(2):
            grant = issue_grant(employee, "keystrokes")
            lines += [json.dumps(record(grant, id=f"r{index}-{len(lines)}")).encode() for _ in range(3)]
    consent_withdraw(employee=employees[1], purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    lines.append(json.dumps({**record(grant, id="stranger"), "grant_id": "g_unknown"}).encode())
    client = pipeline_client()
    roomy = read_lines(stream(client, lines))

    monkeypatch.setattr(usebatch, "GRANT_CACHE_LIMIT", 2)
    monkeypatch.setattr(usebatch, "EMPLOYEE_CACHE_LIMIT", 1)
    monkeypatch.setattr(usebatch, "CHUNK_RECORDS", 4)
    cramped = read_lines(stream(client, lines))

    assert [line.get("allowed") for line in cramped] == [line.get("allowed") for line in roomy]
    assert (
        cramped[-1]["summary"]
        == roomy[-1]["summary"]
        == {
            "allowed": 12,
            "denied": 7,
            "by_reason": {"consent_withdrawn": 6, "no_capture_grant": 1},
        }
    )

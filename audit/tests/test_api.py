"""The audit API: permission matrices, scoping, bad input, exports end to end.

Callers: anonymous; an employee (Nina in New York); legal; an auditor of all
regions (session with a verified second factor, and a user token); an auditor
scoped to the United States; device, pipeline and HR tokens.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from consentry_client import verify as standalone
from django.contrib.auth.models import Permission
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from audit.chain import format_time
from audit.models import AuditEntry, AuditExport, EventType, ExportStatus
from audit.services import checkpoint_create, export_build, record
from audit.tests.conftest import ACTOR, START, write_entries
from conftest import SYSTEM, make_user
from consentry.signing import jwks
from governance.models import Region
from people.roles import Role, ensure_roles
from people.tokens import token_issue

pytestmark = pytest.mark.django_db
ENTRIES = "/api/v1/audit/entries"
CHECKPOINTS = "/api/v1/audit/checkpoints/"
EXPORTS = "/api/v1/audit/exports"
PROBLEM_JSON = "application/problem+json"


def _verified(user) -> APIClient:
    """A session that has proven its second factor (auditors and legal must)."""
    device = TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    client = APIClient()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _bearer(raw: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def world(small_policy, ny_employee, media):
    """Entries across regions and subjects, one checkpoint over them, and every kind of caller."""
    groups = ensure_roles()
    write_entries(12)
    own = record(
        event_type=EventType.CONSENT_WITHDRAWN,
        actor=ACTOR,
        subject=ny_employee.hr_id,
        region="US-NY",
        payload={"purpose": "ai_agent_training"},
    )
    checkpoint_create()
    late = record(event_type=EventType.CONSENT_GRANTED, actor=ACTOR, subject=ny_employee.hr_id, region="US-NY")

    auditor = make_user("audrey")
    auditor.groups.add(groups[Role.AUDITOR])
    auditor.user_permissions.add(Permission.objects.get(codename="audit_region"))
    scoped = make_user("scott")
    scoped.groups.add(groups[Role.AUDITOR])
    assign_perm("governance.audit_region", scoped, Region.objects.get(code="US"))
    legal = make_user("lena")
    legal.groups.add(groups[Role.LEGAL])
    ny_employee.user.groups.add(groups[Role.EMPLOYEE])
    clients = {
        "anonymous": APIClient(),
        "employee": APIClient(),
        "legal": _verified(legal),
        "auditor": _verified(auditor),
        "scoped auditor": _verified(scoped),
    }
    clients["employee"].force_login(ny_employee.user)
    tokens = {
        "auditor token": {"kind": "user", "user": auditor},
        "device token": {"kind": "device", "employee": ny_employee, "device_id": "laptop-1"},
        "pipeline token": {"kind": "pipeline", "purposes": ["ai_agent_training"]},
        "hr token": {"kind": "hr"},
    }
    for name, options in tokens.items():
        _, raw = token_issue(name=name, actor=SYSTEM, **options)
        clients[name] = _bearer(raw)
    return {"clients": clients, "own": own, "late": late, "auditor": auditor, "scoped": scoped}


READ_MATRIX = {
    "anonymous": 401,
    "employee": 403,
    "legal": 403,
    "auditor": 200,
    "auditor token": 200,
    "scoped auditor": 200,
    "device token": 403,
    "pipeline token": 403,
    "hr token": 403,
}


@pytest.mark.parametrize(("caller", "expected"), READ_MATRIX.items())
def test_who_may_search_the_ledger(world, caller, expected):
    response = world["clients"][caller].get(ENTRIES)
    assert response.status_code == expected
    if expected != 200:
        assert response["Content-Type"] == PROBLEM_JSON


EXPORT_MATRIX = {**READ_MATRIX, "auditor": 202, "auditor token": 202, "scoped auditor": 202}


@pytest.mark.parametrize(("caller", "expected"), EXPORT_MATRIX.items())
def test_who_may_export(world, caller, expected, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = world["clients"][caller].post(EXPORTS, {"format": "jsonl"}, format="json")
    assert response.status_code == expected
    assert len(enqueued) == (1 if expected == 202 else 0)


@pytest.mark.parametrize(
    ("caller", "expected"),
    {**READ_MATRIX, "employee": 200, "legal": 200}.items(),
)
def test_who_may_read_checkpoints(world, caller, expected):
    assert world["clients"][caller].get(CHECKPOINTS).status_code == expected


def test_an_auditor_of_all_regions_sees_every_entry_in_ledger_order(world):
    body = world["clients"]["auditor"].get(ENTRIES, {"limit": 500}).json()
    seqs = [entry["seq"] for entry in body["results"]]
    assert body["count"] == AuditEntry.objects.count() == len(seqs)
    assert seqs == sorted(seqs)


def test_a_scoped_auditor_sees_only_entries_of_the_regions_they_hold(world):
    body = world["clients"]["scoped auditor"].get(ENTRIES, {"limit": 500}).json()
    regions = {entry["region"] for entry in body["results"]}
    assert regions == {"US", "US-NY", "US-CA"}
    assert body["count"] == AuditEntry.objects.filter(region__in=["US", "US-NY", "US-CA"]).count()


def test_an_entry_outside_the_scope_is_not_found(world):
    outside = AuditEntry.objects.filter(region="DE-BE").first()
    assert outside is not None
    client = world["clients"]["scoped auditor"]
    response = client.get(f"{ENTRIES}/{outside.seq}")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM_JSON
    assert world["clients"]["auditor"].get(f"{ENTRIES}/{outside.seq}").status_code == 200


@pytest.mark.parametrize(("caller", "expected"), READ_MATRIX.items())
def test_who_may_read_one_entry(world, caller, expected):
    # Nina's entry is about New York: in the scoped auditor's United States.
    response = world["clients"][caller].get(f"{ENTRIES}/{world['own'].seq}")
    assert response.status_code == expected
    if expected != 200:
        assert response["Content-Type"] == PROBLEM_JSON


def test_search_filters_by_time_type_actor_and_subject(world):
    client = world["clients"]["auditor"]
    # write_entries dates its entries a minute apart from START: take three of them.
    moments = list(AuditEntry.objects.filter(at__gte=START).order_by("at").values_list("at", flat=True)[2:6])
    since, until = format_time(moments[0]), format_time(moments[3])
    timed = client.get(ENTRIES, {"since": since, "until": until}).json()["results"]
    assert [entry["at"] for entry in timed] == [format_time(moment) for moment in moments[:3]]
    typed = client.get(ENTRIES, {"event_type": "consent.withdrawn,region.saved"}).json()["results"]
    assert {entry["event_type"] for entry in typed} == {"consent.withdrawn", "region.saved"}
    by_actor = client.get(ENTRIES, {"actor": "user:user1"}).json()["results"]
    assert by_actor and {entry["actor"] for entry in by_actor} == {"user:user1"}
    nina = world["own"].subject
    assert [e["seq"] for e in client.get(ENTRIES, {"subject": nina}).json()["results"]] == list(
        AuditEntry.objects.filter(subject=nina).values_list("seq", flat=True)
    )


def test_search_pages_with_limit_and_offset(world):
    body = world["clients"]["auditor"].get(ENTRIES, {"limit": 5, "offset": 5}).json()
    assert [entry["seq"] for entry in body["results"]] == [6, 7, 8, 9, 10]
    assert body["next"] and body["previous"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"event_type": "made.up"}, "event_type"),
        ({"actor": "x" * 201}, "actor"),
    ],
)
def test_bad_search_input_is_a_422_problem(world, query, field):
    response = world["clients"]["auditor"].get(ENTRIES, query)
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM_JSON
    assert field in response.json()["errors"]


def test_entries_come_as_their_hash_covers_them(world):
    entry = world["clients"]["auditor"].get(f"{ENTRIES}/{world['own'].seq}").json()
    stored = AuditEntry.objects.get(seq=entry["seq"])
    assert {key: entry[key] for key in stored.content()} == stored.content()
    assert entry["hash"] == stored.hash and entry["proof"] == f"{ENTRIES}/{stored.seq}/proof"


# --- proofs --------------------------------------------------------------------------------------


PROOF_MATRIX = {
    "anonymous": 401,
    "employee": 200,
    "legal": 404,
    "auditor": 200,
    "auditor token": 200,
    "scoped auditor": 200,
    "device token": 403,
    "pipeline token": 403,
    "hr token": 403,
}


@pytest.mark.parametrize(("caller", "expected"), PROOF_MATRIX.items())
def test_who_may_fetch_the_proof_of_an_employees_own_entry(world, caller, expected):
    assert world["clients"][caller].get(f"{ENTRIES}/{world['own'].seq}/proof").status_code == expected


def test_an_employee_cannot_fetch_proofs_of_other_peoples_entries(world):
    other = AuditEntry.objects.exclude(subject=world["own"].subject).first()
    assert other is not None
    assert world["clients"]["employee"].get(f"{ENTRIES}/{other.seq}/proof").status_code == 404


def test_a_scoped_auditor_fetches_proofs_only_within_their_regions(world):
    checkpoint_create()
    inside = AuditEntry.objects.filter(region="US-CA").exclude(subject=world["own"].subject).first()
    assert inside is not None
    outside = AuditEntry.objects.filter(region="DE-BE").first()
    assert outside is not None
    client = world["clients"]["scoped auditor"]
    assert client.get(f"{ENTRIES}/{inside.seq}/proof").status_code == 200
    response = client.get(f"{ENTRIES}/{outside.seq}/proof")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM_JSON
    assert world["clients"]["auditor"].get(f"{ENTRIES}/{outside.seq}/proof").status_code == 200


def test_a_proof_fetched_over_the_api_verifies_offline(world):
    proof = world["clients"]["employee"].get(f"{ENTRIES}/{world['own'].seq}/proof").json()
    result = standalone.verify_proof(proof, jwks=jwks())
    assert result.ok, result.findings
    assert proof["entry"]["subject"] == world["own"].subject


def test_a_proof_waits_for_a_checkpoint(world):
    response = world["clients"]["employee"].get(f"{ENTRIES}/{world['late'].seq}/proof")
    assert response.status_code == 409 and response.json()["code"] == "not_yet_checkpointed"
    checkpoint_create()
    assert world["clients"]["employee"].get(f"{ENTRIES}/{world['late'].seq}/proof").status_code == 200


def test_a_proof_of_an_unknown_entry_is_not_found(world):
    assert world["clients"]["auditor"].get(f"{ENTRIES}/99999/proof").status_code == 404


# --- checkpoints ---------------------------------------------------------------------------------


def test_checkpoints_list_newest_first_with_the_audit_keys(world):
    checkpoint_create()
    body = world["clients"]["employee"].get(CHECKPOINTS).json()
    assert [cp["number"] for cp in body["results"]] == [2, 1]
    kids = {key["kid"] for key in body["keys"]}
    assert {cp["kid"] for cp in body["results"]} <= kids
    detail = world["clients"]["auditor"].get(f"{CHECKPOINTS}1").json()
    assert detail == body["results"][1]
    assert world["clients"]["auditor"].get(f"{CHECKPOINTS}9").status_code == 404


# --- exports -------------------------------------------------------------------------------------


def _export(world, caller="auditor", body=None, **headers):
    return world["clients"][caller].post(EXPORTS, body or {"format": "jsonl"}, format="json", **headers)


def test_an_export_runs_to_a_bundle_that_verifies_offline(world):
    client = world["clients"]["auditor"]
    created = _export(world, body={"format": "csv", "event_types": ["consent.withdrawn"]})
    assert created.status_code == 202
    job = created.json()
    assert (job["status"], job["progress"], job["download"]) == ("pending", 0, None)
    assert created["Location"] == f"{EXPORTS}/{job['id']}"
    export_build(export_id=job["id"])
    done = client.get(f"{EXPORTS}/{job['id']}").json()
    assert (done["status"], done["progress"]) == ("done", 100)
    assert done["download"].endswith(f"{EXPORTS}/{job['id']}/download")
    response = client.get(f"{EXPORTS}/{job['id']}/download")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == done["sha256"]
    result = standalone.verify_bundle(io.BytesIO(data), jwks=jwks())
    assert result.ok, result.findings
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert json.loads(archive.read("manifest.json"))["filters"]["event_types"] == ["consent.withdrawn"]


def test_exports_are_private_to_the_auditor_who_asked(world):
    job = _export(world).json()
    export_build(export_id=job["id"])
    other = world["clients"]["scoped auditor"]
    assert other.get(f"{EXPORTS}/{job['id']}").status_code == 404
    assert other.get(f"{EXPORTS}/{job['id']}/download").status_code == 404
    assert [e["id"] for e in world["clients"]["auditor"].get(EXPORTS).json()["results"]] == [job["id"]]
    assert other.get(EXPORTS).json()["results"] == []


def test_a_scoped_auditors_export_holds_only_their_regions(world):
    job = _export(world, "scoped auditor").json()
    assert job["scope"]["all"] is False and "US" in job["scope"]["countries"]
    export = export_build(export_id=job["id"])
    with zipfile.ZipFile(export.file.path) as archive:
        regions = {json.loads(line)["entry"]["region"] for line in archive.read("entries.jsonl").splitlines()}
    assert regions <= {"US", "US-NY", "US-CA"}


def test_a_scoped_auditors_export_of_another_regions_employee_holds_nothing(world):
    # Someone who only ever worked in Berlin: every entry about them is outside the United States.
    record(event_type=EventType.CONSENT_GRANTED, actor=ACTOR, subject="E9001", region="DE-BE")
    job = _export(world, "scoped auditor", {"format": "jsonl", "subject": "E9001"}).json()
    with zipfile.ZipFile(export_build(export_id=job["id"]).file.path) as archive:
        assert archive.read("entries.jsonl") == b""
    everything = _export(world, "auditor", {"format": "jsonl", "subject": "E9001"}).json()
    with zipfile.ZipFile(export_build(export_id=everything["id"]).file.path) as archive:
        assert len(archive.read("entries.jsonl").splitlines()) == 1


def test_a_download_before_the_job_is_done_is_a_conflict(world):
    job = _export(world).json()
    response = world["clients"]["auditor"].get(f"{EXPORTS}/{job['id']}/download")
    assert response.status_code == 409 and response.json()["code"] == "export_not_ready"


def test_an_idempotent_retry_returns_the_first_job_and_another_body_is_refused(world):
    first = _export(world, HTTP_IDEMPOTENCY_KEY="k-1")
    again = _export(world, HTTP_IDEMPOTENCY_KEY="k-1")
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert AuditExport.objects.count() == 1
    other = _export(world, body={"format": "csv"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"event_types": ["nope"]}, "event_types"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "until"),
        ({"subject": ["E1"]}, "subject"),
    ],
)
def test_bad_export_requests_are_422_problems(world, body, field):
    response = _export(world, body=body)
    assert response.status_code == 422 and field in response.json()["errors"]
    assert AuditExport.objects.count() == 0


def test_an_export_request_is_audited_with_its_filters(world):
    job = _export(world, body={"format": "jsonl", "subject": "E1001"}).json()
    entry = AuditEntry.objects.get(event_type=EventType.AUDIT_EXPORT_REQUESTED)
    assert entry.actor == "user:audrey" and entry.object_id == job["id"]
    assert entry.payload["filters"]["subject"] == "E1001"


def test_an_unknown_export_is_not_found(world):
    response = world["clients"]["auditor"].get(f"{EXPORTS}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM_JSON


def test_a_finished_export_reports_done_in_the_database(world):
    job = _export(world).json()
    assert AuditExport.objects.get(pk=job["id"]).status == ExportStatus.PENDING

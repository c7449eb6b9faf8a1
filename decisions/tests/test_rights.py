"""Rights services: the access export's content and reruns, and what an erasure deletes and keeps."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry, EventType
from conftest import make_employee, make_user
from consent.models import ConsentState, Pause
from consent.services import pause_start
from consentry.celery import app
from decisions import engine
from decisions.datakeys import data_keys_for_grant
from decisions.models import CaptureGrant, DataKey, DestroyedKey, RevocationEvent, RightsRequest, RightsStatus
from decisions.rights import (
    _request,
    erasure_outcome,
    export_name,
    rights_access_build,
    rights_erasure_carry_out,
    rights_request_access,
    rights_request_erasure,
    rights_request_fail,
)
from decisions.rights_export import EXPORT_FORMAT, write_export
from decisions.services import capture_decide
from decisions.tasks import rights_access_build_task, rights_sweep
from decisions.tests.conftest import (
    PURPOSE,
    acknowledge,
    capture,
    codes,
    device_client,
    grant_consent,
    pipeline_client,
    relay,
)
from decisions.tests.test_use_api import issue_grant, reasons, record, use

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def eager():
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def wanda(policy):
    """An employee in Washington (US: allowed with consent), with a portal login."""
    return make_employee(country="US", subdivision="US-WA", user=make_user("wanda"), display_name="Wanda")


def actor_of(employee) -> Actor:
    return Actor.for_user(employee.user)


def access(employee, **extra) -> RightsRequest:
    rights, _ = rights_request_access(employee=employee, user=employee.user, actor=actor_of(employee), **extra)
    return rights


def erase(employee, **extra) -> tuple[RightsRequest, bool]:
    return rights_request_erasure(employee=employee, user=employee.user, actor=actor_of(employee), **extra)


def unzip(rights: RightsRequest) -> tuple[dict, str]:
    assert rights.file.name is not None
    with default_storage.open(rights.file.name, "rb") as handle:
        archive = zipfile.ZipFile(io.BytesIO(handle.read()))
    return json.loads(archive.read("data.json")), archive.read("index.html").decode()


@pytest.fixture
def busy(wanda):
    """Wanda opted in, acknowledged, paused once, and a capture agent was granted twice."""
    acknowledge(wanda)
    grant_consent(wanda, "keystrokes", "mouse_movement")
    pause_start(employee=wanda, until=timezone.now() + timedelta(minutes=30), actor=actor_of(wanda))
    device = device_client(wanda)
    Pause.objects.filter(employee=wanda).update(resumed_at=timezone.now())
    grants = [issue_grant(wanda, "keystrokes", device=device), issue_grant(wanda, "mouse_movement", device=device)]
    return {"employee": wanda, "grants": grants}


# Access ------------------------------------------------------------------------------------


def test_the_copy_holds_events_receipts_grants_and_the_ledger_entries_about_the_employee(busy):
    wanda = busy["employee"]
    rights = rights_access_build(request_id=access(wanda).id)
    assert rights.status == RightsStatus.COMPLETED and rights.progress == 100
    data, page = unzip(rights)
    assert data["format"] == EXPORT_FORMAT
    assert data["employee"]["hr_id"] == wanda.hr_id and data["employee"]["subdivision"] == "US-WA"
    assert {(event["kind"], event["category"]) for event in data["consent_events"]} == {
        ("granted", "keystrokes"),
        ("granted", "mouse_movement"),
    }
    assert {state["state"] for state in data["consent_state"]} == {"granted"}
    assert len(data["acknowledgements"]) == 1 and len(data["pauses"]) == 1
    receipt = data["receipts"][0]
    assert receipt["jws"].count(".") == 2 and receipt["claims"]["consentReceiptID"] == receipt["id"]
    assert {grant["id"] for grant in data["capture_grants"]} == {grant.id for grant in busy["grants"]}
    assert data["capture_grants"][0]["device_id"] == "laptop-7"
    types = {entry["event_type"] for entry in data["audit_entries"]}
    assert {"consent.granted", "notice.acknowledged", "capture.paused", "rights.access_requested"} <= types
    # Grant entries queued a moment ago are sealed before the copy is built.
    granted = {entry["object_id"] for entry in data["audit_entries"] if entry["event_type"] == "grant.issued"}
    assert granted == {grant.id for grant in busy["grants"]}
    assert all(len(entry["hash"]) == 64 for entry in data["audit_entries"])
    assert data["rights_requests"][0]["id"] == str(rights.id)
    assert data["counts"]["consent_events"] == 2 and data["counts"]["capture_grants"] == 2
    assert rights.result == {"counts": data["counts"]}
    # The page says the same in words, with nothing fetched from elsewhere.
    assert "Your data held by Consentry" in page and "Every choice you made" in page and "Keystrokes" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page


def make_keys(employee, *categories):
    with transaction.atomic():
        return data_keys_for_grant(employee=employee, categories=categories, purpose=PURPOSE, at=timezone.now())


def test_the_copy_lists_data_keys_but_never_key_material_or_grant_tokens(busy):
    wanda = busy["employee"]
    keys = make_keys(wanda, "keystrokes", "mouse_movement")
    outcome = capture_decide(
        token=device_client(wanda, "laptop-8").token,
        request=engine.CaptureRequest(purpose=PURPOSE, categories=("keystrokes",)),
        at=timezone.now(),
    )
    rights = rights_access_build(request_id=access(wanda).id)
    data, page = unzip(rights)
    text = json.dumps(data)
    listed = {item["id"]: item for item in data["data_keys"]}
    assert set(listed) == {issued.key_id for issued in keys.values()}
    assert {item["status"] for item in listed.values()} == {"active"}
    # Data keys decrypt the recordings and a grant's signed token is a capture credential: neither is in a copy.
    for issued in keys.values():
        assert base64.b64encode(issued.key).decode() not in text and issued.key.hex() not in text
    for row in DataKey.objects.filter(employee=wanda):
        assert base64.b64encode(bytes(row.wrapped)).decode() not in text
    assert "wrapped" not in text
    grant = outcome.grant
    assert grant is not None
    assert grant.jws not in text and grant.jws.split(".")[2] not in text
    assert grant.jws not in page


def test_building_completes_once_and_is_audited_with_the_zip_digest(busy):
    rights = access(busy["employee"])
    done = rights_access_build(request_id=rights.id)
    again = rights_access_build(request_id=rights.id)
    assert again.sha256 == done.sha256 and again.attempts == 1
    entry = AuditEntry.objects.get(event_type=EventType.RIGHTS_ACCESS_COMPLETED)
    assert entry.subject == busy["employee"].hr_id and entry.payload["sha256"] == done.sha256
    assert entry.actor == "system:rights"


def test_a_rerun_after_a_crash_replaces_what_the_dead_run_left(busy):
    rights = access(busy["employee"])
    RightsRequest.objects.filter(pk=rights.id).update(status=RightsStatus.RUNNING, progress=40, attempts=1)
    default_storage.save(export_name(rights.id), io.BytesIO(b"half a zip"))
    done = rights_access_build(request_id=rights.id)
    assert done.status == RightsStatus.COMPLETED and done.attempts == 2
    assert done.file.name == export_name(rights.id)
    data, _ = unzip(done)
    assert data["employee"]["hr_id"] == busy["employee"].hr_id


def test_progress_is_reported_as_the_lists_are_written(busy):
    rights = access(busy["employee"])
    seen: list[int] = []
    result = write_export(request=rights, out=io.BytesIO(), on_progress=seen.append, now=timezone.now())
    assert seen == sorted(seen) and len(seen) == len(result.counts) and seen[-1] == 95


def test_a_failed_build_is_marked_failed_and_audited_and_may_be_asked_again(busy):
    rights = access(busy["employee"])
    failed = rights_request_fail(request_id=rights.id, error="Preparing the copy took longer than its time limit.")
    assert failed.status == RightsStatus.FAILED
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ACCESS_FAILED).count() == 1
    assert access(busy["employee"]).id != rights.id


def test_the_task_runs_the_build_and_the_sweep_requeues_lost_requests(busy, eager):
    rights = access(busy["employee"])
    rights_access_build_task.delay(str(rights.id))
    assert RightsRequest.objects.get(pk=rights.id).status == RightsStatus.COMPLETED
    lost = access(busy["employee"])
    RightsRequest.objects.filter(pk=lost.id).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert rights_sweep() == 1
    assert RightsRequest.objects.get(pk=lost.id).status == RightsStatus.COMPLETED
    assert rights_sweep() == 0


# Erasure -----------------------------------------------------------------------------------


def test_erasure_is_recorded_audited_and_published_on_the_feed_at_once(busy, django_capture_on_commit_callbacks):
    wanda = busy["employee"]
    with django_capture_on_commit_callbacks(execute=False):
        rights, created = erase(wanda)
    assert created and rights.status == RightsStatus.RECEIVED
    entry = AuditEntry.objects.get(event_type=EventType.RIGHTS_ERASURE_REQUESTED)
    assert entry.subject == wanda.hr_id and entry.object_id == str(rights.id)
    relay()
    events = RevocationEvent.objects.filter(employee=wanda, type="erasure")
    assert [(event.purpose, sorted(event.categories)) for event in events] == [
        ("ai_agent_training", ["keystroke_timing", "keystrokes", "mouse_movement", "screenshots"])
    ]


def test_use_decisions_deny_earlier_records_with_erasure_requested_as_soon_as_it_is_asked(busy):
    keystrokes = busy["grants"][0]
    pipeline = pipeline_client()
    assert use(pipeline, [record(keystrokes, at=keystrokes.issued_at)])["results"][0]["allowed"] is True
    erase(busy["employee"])
    body = use(pipeline, [record(keystrokes, at=keystrokes.issued_at)])
    assert "erasure_requested" in reasons(body)
    assert body["summary"]["by_reason"]["erasure_requested"] == 1


def test_carrying_out_the_erasure_stops_capture_deletes_what_it_may_and_says_what_it_kept(busy):
    wanda = busy["employee"]
    keys = make_keys(wanda, "keystrokes", "mouse_movement")
    copy = rights_access_build(request_id=access(wanda).id)
    rights, _ = erase(wanda)
    done = rights_erasure_carry_out(request_id=rights.id)
    assert done.status == RightsStatus.COMPLETED and done.progress == 100
    # Capture stops: every consent withdrawn, with receipts, as a click in the portal would.
    assert set(ConsentState.objects.filter(employee=wanda).values_list("state", flat=True)) == {"withdrawn"}
    # Deleted: pauses, copies of the data, device names on grants.
    assert not Pause.objects.filter(employee=wanda).exists()
    copy.refresh_from_db()
    assert copy.file.name == "" and copy.sha256 == ""
    assert not CaptureGrant.objects.filter(employee=wanda).exclude(device_id="").exists()
    # Kept: the evidence, and the grants that let pipelines' copies be recognised and refused.
    assert wanda.consent_events.count() == 4 and wanda.receipts.count() == 4
    assert CaptureGrant.objects.filter(employee=wanda).count() == 2
    # The keys are gone, with tombstones, evidence and a revocation of their own.
    assert not DataKey.objects.filter(employee=wanda).exists()
    tombstones = DestroyedKey.objects.filter(employee=wanda)
    assert {item.key_id for item in tombstones} == {issued.key_id for issued in keys.values()}
    assert {item.reason for item in tombstones} == {"erasure"}
    assert AuditEntry.objects.filter(event_type=EventType.DATA_KEY_DESTROYED).count() == 2
    assert done.result["deleted"]["data_keys"] == 2 and done.result["retained"]["data_key_records"] == 2
    assert done.result["stopped"]["consent"] == 2
    assert done.result["deleted"]["pauses"] == 1 and done.result["deleted"]["access_exports"] == 1
    assert done.result["deleted"]["device_names"] == 2
    assert done.result["retained"]["consent_events"] == 4
    completed = AuditEntry.objects.get(event_type=EventType.RIGHTS_ERASURE_COMPLETED)
    assert completed.subject == wanda.hr_id and completed.payload == done.result
    assert AuditEntry.objects.filter(subject=wanda.hr_id, event_type=EventType.CONSENT_GRANTED).count() == 2


def test_the_erased_copies_files_are_deleted_after_commit(busy, django_capture_on_commit_callbacks):
    wanda = busy["employee"]
    stored = rights_access_build(request_id=access(wanda).id).file.name
    assert stored is not None
    rights, _ = erase(wanda)
    assert default_storage.exists(stored)
    with django_capture_on_commit_callbacks(execute=True):
        rights_erasure_carry_out(request_id=rights.id)
    assert not default_storage.exists(stored)


def test_the_erasure_explanation_names_what_was_deleted_and_what_was_kept_and_why(busy):
    rights, _ = erase(busy["employee"])
    before = erasure_outcome(rights)
    assert all(item["count"] is None for item in before["deleted"])
    assert "being deleted now" in before["summary"]
    done = erasure_outcome(rights_erasure_carry_out(request_id=rights.id))
    deleted = {item["item"]: item for item in done["deleted"]}
    retained = {item["item"]: item for item in done["retained"]}
    assert {"data_keys", "pauses", "access_exports"} <= set(deleted)
    assert {"consent_events", "audit_entries", "acknowledgements", "capture_grants"} <= set(retained)
    assert "GDPR Art. 7(1)" in retained["consent_events"]["why"]
    assert "append-only" in retained["audit_entries"]["why"]
    assert deleted["pauses"]["count"] == 1 and retained["consent_events"]["count"] == 4
    assert "was erased" in done["summary"]


def test_the_copy_after_an_erasure_lists_the_destroyed_keys(busy):
    wanda = busy["employee"]
    keys = make_keys(wanda, "keystrokes")
    rights, _ = erase(wanda)
    rights_erasure_carry_out(request_id=rights.id)
    data, _ = unzip(rights_access_build(request_id=access(wanda).id))
    # Grants carry keys too: every key of the employee, the grants' and this one, is listed as destroyed.
    listed = {item["id"]: (item["status"], item["reason"]) for item in data["data_keys"]}
    assert keys["keystrokes"].key_id in listed
    assert set(listed) == set(DestroyedKey.objects.filter(employee=wanda).values_list("key_id", flat=True))
    assert set(listed.values()) == {("destroyed", "erasure")}
    assert {"rights.erasure_completed", "data_key.destroyed"} <= {
        entry["event_type"] for entry in data["audit_entries"]
    }


def test_use_decisions_after_the_erasure_still_deny_with_erasure_requested(busy):
    keystrokes = busy["grants"][0]
    rights, _ = erase(busy["employee"])
    rights_erasure_carry_out(request_id=rights.id)
    body = use(pipeline_client(), [record(keystrokes, at=keystrokes.issued_at)])
    assert body["results"][0]["allowed"] is False and "erasure_requested" in reasons(body)


def test_a_second_erasure_request_while_one_is_pending_returns_the_pending_one(busy):
    first, created = erase(busy["employee"])
    again, created_again = erase(busy["employee"])
    assert created and not created_again and again.id == first.id
    assert AuditEntry.objects.filter(event_type=EventType.RIGHTS_ERASURE_REQUESTED).count() == 1
    rights_erasure_carry_out(request_id=first.id)
    assert rights_erasure_carry_out(request_id=first.id).attempts == 1


def test_an_erasure_stops_a_copy_being_prepared(busy):
    wanda = busy["employee"]
    pending = access(wanda)
    rights, _ = erase(wanda)
    rights_erasure_carry_out(request_id=rights.id)
    pending.refresh_from_db()
    assert pending.status == RightsStatus.FAILED and "erased" in pending.error
    # The build that was already running finds it finished and keeps no copy.
    late = rights_access_build(request_id=pending.id)
    assert late.status == RightsStatus.FAILED and not late.file


def test_after_erasure_nothing_more_is_captured(busy):
    rights, _ = erase(busy["employee"])
    rights_erasure_carry_out(request_id=rights.id)
    decision = capture(device_client(busy["employee"], "laptop-8"), "keystrokes")
    assert decision["grant"] is None and codes(decision, "keystrokes") == ["consent_withdrawn"]


def test_records_captured_after_a_new_opt_in_following_the_erasure_are_not_denied_for_erasure(busy):
    wanda = busy["employee"]
    rights, _ = erase(wanda, at=timezone.now() - timedelta(seconds=1))
    rights_erasure_carry_out(request_id=rights.id)
    grant_consent(wanda, "keystrokes")
    fresh = issue_grant(wanda, "keystrokes")
    # The erasure covers what was captured up to it; the same day's key stays destroyed, though.
    assert reasons(use(pipeline_client(), [record(fresh)])) == ["data_key_destroyed"]


def test_only_known_kinds_are_requests(wanda):
    with pytest.raises(ValueError, match="unknown rights request kind"):
        _request(employee=wanda, kind="everything", user=wanda.user, actor=actor_of(wanda), at=None)
    assert not RightsRequest.objects.exists()

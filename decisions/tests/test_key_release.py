"""Key release with the use decision, and master-key rotation that leaves data readable."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEntry, EventType
from audit.services import queue_seal
from conftest import SYSTEM, make_employee
from consent.services import consent_withdraw
from decisions.datakeys import data_keys_for_grant, destroy_employee_keys
from decisions.kms import LocalKeyEncryptionKey, UnwrapError, key_encryption_key, master_version
from decisions.management.commands import rotate_master_key as command
from decisions.models import CaptureGrant, DataKey
from decisions.tests.conftest import PURPOSE, capture, device_client, grant_consent, pipeline_client
from decisions.tests.test_use_api import USE, issue_grant, read_lines, record, stream, use

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_kek():
    key_encryption_key.cache_clear()
    yield
    key_encryption_key.cache_clear()


def encrypt(key_b64: str, plaintext: bytes, key_id: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(base64.b64decode(key_b64)).encrypt(nonce, plaintext, key_id.encode())


def decrypt(key_b64: str, blob: bytes, key_id: str) -> bytes:
    return AESGCM(base64.b64decode(key_b64)).decrypt(blob[:12], blob[12:], key_id.encode())


def test_the_capture_grant_carries_a_key_per_allowed_category_and_is_not_cached(us_employee):
    grant_consent(us_employee, "keystrokes")
    response = device_client(us_employee).post(
        "/api/v1/decisions/capture", {"purpose": PURPOSE, "categories": ["keystrokes", "screenshots"]}
    )
    assert response["Cache-Control"] == "no-store"
    keys = response.json()["grant"]["data_keys"]
    assert list(keys) == ["keystrokes"]
    assert keys["keystrokes"]["key_id"] == DataKey.objects.get().id
    assert len(base64.b64decode(keys["keystrokes"]["key"], validate=True)) == 32
    queue_seal()
    entry = AuditEntry.objects.get(event_type=EventType.GRANT_ISSUED)
    assert entry.payload["data_keys"] == {"keystrokes": keys["keystrokes"]["key_id"]}
    assert keys["keystrokes"]["key"] not in json.dumps(entry.payload)


def test_keys_are_released_for_allowed_records_only_each_once(us_employee):
    other = make_employee(country="US", subdivision="US-WA")
    grant_consent(us_employee, "keystrokes")
    grant_consent(other, "keystrokes")
    mine, theirs = issue_grant(us_employee, "keystrokes"), issue_grant(other, "keystrokes")
    consent_withdraw(employee=other, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    records = [record(mine, id="a"), record(mine, id="b"), record(theirs, id="c")]

    body = use(pipeline_client(), records, release_keys=True)

    assert [result["allowed"] for result in body["results"]] == [True, True, False]
    mine_key = DataKey.objects.get(employee=us_employee)
    assert list(body["keys"]) == [mine_key.id]
    assert (
        body["keys"][mine_key.id]
        == base64.b64encode(
            key_encryption_key().unwrap(mine_key.wrapped, key_id=mine_key.id, version=mine_key.master_version)
        ).decode()
    )
    entry = AuditEntry.objects.get(event_type=EventType.DATA_KEYS_RELEASED)
    assert entry.payload["key_ids"] == [mine_key.id] and entry.payload["keys_released"] == 1
    assert entry.actor.startswith("token:pipeline:") and entry.object_id == body["batch_id"]


def test_without_release_keys_no_key_leaves_and_nothing_is_recorded_as_released(us_employee):
    grant_consent(us_employee, "keystrokes")
    body = use(pipeline_client(), [record(issue_grant(us_employee, "keystrokes"))])
    assert "keys" not in body
    assert not AuditEntry.objects.filter(event_type=EventType.DATA_KEYS_RELEASED).exists()


def test_a_record_whose_key_was_destroyed_is_denied_and_its_key_never_released(us_employee):
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    destroy_employee_keys(employee=us_employee, reason="retention", actor=SYSTEM)
    body = use(pipeline_client(), [record(grant)], release_keys=True)
    assert [reason["code"] for reason in body["results"][0]["reasons"]] == ["data_key_destroyed"]
    assert body["keys"] == {}


def test_a_record_encrypted_by_the_agent_decrypts_with_the_released_key(us_employee):
    grant_consent(us_employee, "keystrokes")
    decision = capture(device_client(us_employee), "keystrokes")
    key = decision["grant"]["data_keys"]["keystrokes"]
    blob = encrypt(key["key"], b"git commit -m 'fix'", key["key_id"])
    grant = CaptureGrant.objects.get(pk=decision["grant"]["id"])
    released = use(pipeline_client(), [record(grant)], release_keys=True)["keys"]
    assert decrypt(released[key["key_id"]], blob, key["key_id"]) == b"git commit -m 'fix'"


def test_ndjson_puts_each_released_key_once_in_the_summary_line(us_employee):
    grant_consent(us_employee, "keystrokes", "mouse_movement")
    grant = issue_grant(us_employee, "keystrokes", "mouse_movement")
    lines = [json.dumps(record(grant, "keystrokes", id=f"k{i}")).encode() for i in range(50)]
    lines += [json.dumps(record(grant, "mouse_movement", id=f"m{i}")).encode() for i in range(50)]
    response = stream(pipeline_client(), lines, query="&release_keys=true")
    assert response["Cache-Control"] == "no-store"
    out = read_lines(response)
    assert all("keys" not in line for line in out[:-1]) and len(out) == 101
    assert sorted(out[-1]["keys"]) == sorted(DataKey.objects.values_list("id", flat=True))
    assert out[-1]["summary"]["allowed"] == 100


@pytest.mark.parametrize("value", ["maybe", 1, None, [True]])
def test_release_keys_that_is_not_a_boolean_is_refused_and_changes_nothing(us_employee, value):
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    before = AuditEntry.objects.count()
    response = pipeline_client().post(USE, {"purpose": PURPOSE, "records": [record(grant)], "release_keys": value})
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert "release_keys" in response.json()["errors"]
    # Issuing the token wrote one entry; the refused batch wrote none.
    assert AuditEntry.objects.count() == before + 1


def test_ndjson_release_keys_that_is_not_a_boolean_is_refused(us_employee):
    grant_consent(us_employee, "keystrokes")
    grant = issue_grant(us_employee, "keystrokes")
    response = stream(pipeline_client(), [json.dumps(record(grant)).encode()], query="&release_keys=maybe")
    assert response.status_code == 422 and response["Content-Type"] == "application/problem+json"
    assert not AuditEntry.objects.filter(event_type=EventType.USE_BATCH_DECIDED).exists()


# Envelope encryption and rotation ---------------------------------------------------------


def test_a_wrapped_key_opens_only_for_its_own_key_id_and_master_key():
    kek = LocalKeyEncryptionKey(current=secrets.token_bytes(32))
    key = secrets.token_bytes(32)
    wrapped = kek.wrap(key, key_id="k_one")
    assert kek.unwrap(wrapped, key_id="k_one", version=kek.version) == key
    with pytest.raises(UnwrapError):
        kek.unwrap(wrapped, key_id="k_two", version=kek.version)
    with pytest.raises(UnwrapError):
        LocalKeyEncryptionKey(current=secrets.token_bytes(32)).unwrap(wrapped, key_id="k_one", version=kek.version)


def _captured_blobs(employee, days=3):
    """Records captured and encrypted by an agent on several days, before any rotation."""
    grant_consent(employee, "keystrokes", at=timezone.now() - timedelta(days=days + 1))
    blobs = []
    for offset in range(days):
        grant = issue_grant(employee, "keystrokes", at=timezone.now() - timedelta(days=offset, minutes=1))
        # The key the grant carried (issued again for the same day: the same key).
        key = data_keys_for_grant(employee=employee, categories=["keystrokes"], purpose=PURPOSE, at=grant.issued_at)
        issued = key["keystrokes"]
        blob = encrypt(base64.b64encode(issued.key).decode(), f"day {offset}".encode(), issued.key_id)
        blobs.append((grant, issued.key_id, blob, f"day {offset}".encode()))
    return blobs


def _all_readable(blobs):
    for grant, key_id, blob, plain in blobs:
        released = use(pipeline_client(), [record(grant)], release_keys=True)["keys"]
        assert decrypt(released[key_id], blob, key_id) == plain


def test_rotation_from_the_environment_rewraps_every_key_and_leaves_data_readable(us_employee, settings):
    blobs = _captured_blobs(us_employee)
    old = settings.CONSENTRY_MASTER_KEY
    new = base64.b64encode(secrets.token_bytes(32)).decode()
    wrapped_before = dict(DataKey.objects.values_list("id", "wrapped"))
    settings.CONSENTRY_MASTER_KEY, settings.CONSENTRY_MASTER_KEY_PREVIOUS = new, [old]
    key_encryption_key.cache_clear()

    call_command("rotate_master_key", verbosity=0)

    version = master_version(base64.b64decode(new))
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {version}
    assert all(bytes(row.wrapped) != bytes(wrapped_before[row.id]) for row in DataKey.objects.all())
    assert AuditEntry.objects.filter(event_type=EventType.DATA_KEYS_REWRAPPED).exists()
    assert AuditEntry.objects.get(event_type=EventType.MASTER_KEY_ROTATED).payload["rewrapped"] == 3
    # Without the old master key the new wrapping alone suffices.
    settings.CONSENTRY_MASTER_KEY_PREVIOUS = []
    key_encryption_key.cache_clear()
    _all_readable(blobs)
    # Rerunning is a no-op.
    call_command("rotate_master_key", verbosity=0)
    assert AuditEntry.objects.filter(event_type=EventType.MASTER_KEY_ROTATED).count() == 2


def test_an_interrupted_local_rotation_resumes_and_keeps_the_old_key_until_done(
    us_employee, settings, tmp_path, monkeypatch
):
    monkeypatch.delenv("CONSENTRY_MASTER_KEY", raising=False)
    monkeypatch.delenv("CONSENTRY_MASTER_KEY_FILE", raising=False)
    settings.STATE_DIR = tmp_path
    blobs = _captured_blobs(us_employee)
    old_version = key_encryption_key().version

    calls = {"n": 0}
    real = command.data_keys_rewrap

    def crash_after_one_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(**{**kwargs, "batch_size": 1})

    monkeypatch.setattr(command, "data_keys_rewrap", crash_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        call_command("rotate_master_key", "--generate", verbosity=0)
    monkeypatch.setattr(command, "data_keys_rewrap", real)

    # A fresh process: the new key from the state folder, the old one from the keyring.
    new_key = (tmp_path / "secrets" / "consentry_master_key").read_text()
    settings.CONSENTRY_MASTER_KEY = new_key
    key_encryption_key.cache_clear()
    versions = list(DataKey.objects.values_list("master_version", flat=True))
    assert versions.count(old_version) == 2 and len(set(versions)) == 2
    _all_readable(blobs)

    call_command("rotate_master_key", verbosity=0)
    assert set(DataKey.objects.values_list("master_version", flat=True)) == {key_encryption_key().version}
    assert (tmp_path / "secrets" / "master_keys_previous" / old_version).exists()
    _all_readable(blobs)


def test_a_grant_issued_just_before_midnight_ends_at_midnight_so_its_keys_match_its_records(us_employee):
    grant_consent(us_employee, "keystrokes")
    late = timezone.now().replace(hour=23, minute=59, second=50, microsecond=0) + timedelta(days=1)
    with time_machine.travel(late, tick=False):
        response = capture(device_client(us_employee), "keystrokes")
    grant = response["grant"]
    midnight = (late + timedelta(days=1)).replace(hour=0, minute=0, second=0)
    assert grant["expires_at"] == midnight.isoformat().replace("+00:00", "Z")
    key = DataKey.objects.get(id=grant["data_keys"]["keystrokes"]["key_id"])
    assert key.day == late.date()


def test_a_grant_issued_earlier_in_the_day_keeps_its_full_lifetime(us_employee, settings):
    settings.CONSENTRY_GRANT_LIFETIME_SECONDS = 60
    grant_consent(us_employee, "keystrokes")
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with time_machine.travel(noon, tick=False):
        grant = capture(device_client(us_employee), "keystrokes")["grant"]
    assert grant["expires_at"] == (noon + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")

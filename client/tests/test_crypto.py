"""Record encryption: envelopes round-trip, refuse to move between records, and never reuse a nonce."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import UTC, datetime

import pytest
from consentry_client import crypto
from consentry_client.crypto import (
    DataKey,
    MalformedEnvelope,
    NonceSequence,
    RecordTampered,
    WrongKey,
    decrypt_blob,
    decrypt_record,
    encrypt_blob,
    encrypt_record,
    parse_envelope,
)


def make_key(key_id: str = "k_keystrokes_E1_20261120") -> DataKey:
    return DataKey(key_id, secrets.token_bytes(32))


def make_record(index: int = 1, **changes) -> dict:
    record = {
        "id": f"r_{index:032x}",
        "grant_id": "g_7Qk",
        "subject": "p_4c1e",
        "purpose": "ai_agent_training",
        "category": "keystrokes",
        "captured_at": "2026-11-20T14:02:11.123Z",
        "data": {"key": "h", "note": "naïve ✓"},
    }
    return {**record, **changes}


@pytest.fixture
def key() -> DataKey:
    return make_key()


# Round trip ------------------------------------------------------------------------------


def test_a_record_round_trips_and_its_envelope_holds_no_plaintext(key):
    record = make_record()

    envelope = encrypt_record(record, key)

    assert decrypt_record(envelope, key) == record
    assert set(envelope) == {*crypto.ENVELOPE_FIELDS}
    assert envelope["v"] == 1 and envelope["key_id"] == key.key_id
    assert "data" not in envelope and "naïve" not in repr(envelope) and '"h"' not in repr(envelope)
    assert len(base64.b64decode(envelope["nonce"])) == 12


def test_a_record_without_purpose_round_trips(key):
    record = make_record()
    del record["purpose"]
    assert decrypt_record(encrypt_record(record, key), key) == record


def test_the_same_record_encrypts_differently_each_time(key):
    record = make_record()
    first, second = encrypt_record(record, key), encrypt_record(record, key)
    assert first["nonce"] != second["nonce"] and first["ciphertext"] != second["ciphertext"]


def test_captured_at_may_come_back_as_a_datetime(key):
    envelope = encrypt_record(make_record(), key)
    envelope["captured_at"] = datetime(2026, 11, 20, 14, 2, 11, 123000, tzinfo=UTC)  # a DataFrame did this
    assert decrypt_record(envelope, key)["data"]["key"] == "h"


def test_a_key_never_shows_in_a_repr(key):
    assert key.secret.hex() not in repr(key) and str(key.secret) not in repr(key)


# Swapping and tampering ------------------------------------------------------------------


def test_a_ciphertext_moved_onto_another_records_metadata_fails(key):
    mine, theirs = encrypt_record(make_record(1), key), encrypt_record(make_record(2), key)
    moved = {**theirs, "nonce": mine["nonce"], "ciphertext": mine["ciphertext"]}
    with pytest.raises(RecordTampered):
        decrypt_record(moved, key)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "p_someone_else"),
        ("category", "mouse_movement"),
        ("id", "r_other"),
        ("grant_id", "g_other"),
        ("captured_at", "2026-11-21T14:02:11.123Z"),
        ("purpose", "other_purpose"),
    ],
)
def test_changed_metadata_fails(key, field, value):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(RecordTampered):
        decrypt_record({**envelope, field: value}, key)


def test_the_same_instant_written_differently_still_decrypts(key):
    envelope = encrypt_record(make_record(), key)
    assert decrypt_record({**envelope, "captured_at": "2026-11-20T15:02:11.123+01:00"}, key)


def test_a_flipped_ciphertext_bit_fails(key):
    envelope = encrypt_record(make_record(), key)
    raw = bytearray(base64.b64decode(envelope["ciphertext"]))
    raw[0] ^= 1
    with pytest.raises(RecordTampered):
        decrypt_record({**envelope, "ciphertext": base64.b64encode(bytes(raw)).decode()}, key)


def test_a_wrong_key_under_the_same_id_fails(key):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(RecordTampered):
        decrypt_record(envelope, make_key(key.key_id))


def test_a_key_with_another_id_is_refused_before_trying(key):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(WrongKey, match=key.key_id):
        decrypt_record(envelope, make_key("k_other"))


def test_a_key_id_swapped_in_the_envelope_fails(key):
    other = make_key("k_other")
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(RecordTampered):
        decrypt_record({**envelope, "key_id": other.key_id}, DataKey(other.key_id, key.secret))


# Blobs --------------------------------------------------------------------------------------


def test_a_blob_round_trips_and_is_bound_to_its_record(key):
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(1000)
    sealed = encrypt_blob(png, key, record_id="r_1", subject="p_1", category="screenshots")

    assert png[8:] not in sealed and crypto.blob_key_id(sealed) == key.key_id
    assert decrypt_blob(sealed, key, record_id="r_1", subject="p_1", category="screenshots") == png
    with pytest.raises(RecordTampered):
        decrypt_blob(sealed, key, record_id="r_2", subject="p_1", category="screenshots")
    with pytest.raises(MalformedEnvelope, match="truncated"):
        decrypt_blob(sealed[:20], key, record_id="r_1", subject="p_1", category="screenshots")
    with pytest.raises(MalformedEnvelope, match="not an encrypted"):
        decrypt_blob(png, key, record_id="r_1", subject="p_1", category="screenshots")


# Bad input ----------------------------------------------------------------------------------


def test_a_truncated_ciphertext_is_malformed_or_tampered(key):
    envelope = encrypt_record(make_record(), key)
    raw = base64.b64decode(envelope["ciphertext"])
    with pytest.raises(MalformedEnvelope, match="truncated"):
        parse_envelope({**envelope, "ciphertext": base64.b64encode(raw[:10]).decode()})
    with pytest.raises(RecordTampered):
        decrypt_record({**envelope, "ciphertext": base64.b64encode(raw[:-1]).decode()}, key)


def test_an_envelope_missing_fields_says_which(key):
    envelope = encrypt_record(make_record(), key)
    del envelope["grant_id"], envelope["key_id"]
    with pytest.raises(MalformedEnvelope, match="grant_id, key_id"):
        parse_envelope(envelope)


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_an_unknown_version_is_refused(key, version):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(MalformedEnvelope, match="version"):
        decrypt_record({**envelope, "v": version}, key)


def test_a_plaintext_record_is_not_an_envelope(key):
    with pytest.raises(MalformedEnvelope, match="plaintext"):
        decrypt_record(make_record(), key)
    with pytest.raises(MalformedEnvelope, match="JSON object"):
        parse_envelope(["not", "a", "record"])


@pytest.mark.parametrize("field", ["nonce", "ciphertext"])
@pytest.mark.parametrize("value", ["%%%not base64", "AAAA-_", "QUFB=", 12])
def test_bad_base64_is_refused(key, field, value):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(MalformedEnvelope, match=field):
        parse_envelope({**envelope, field: value})


def test_a_short_nonce_is_refused(key):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(MalformedEnvelope, match="12 bytes"):
        parse_envelope({**envelope, "nonce": base64.b64encode(b"12345678").decode()})


def test_an_unreadable_time_is_refused(key):
    envelope = encrypt_record(make_record(), key)
    with pytest.raises(MalformedEnvelope, match="captured_at"):
        parse_envelope({**envelope, "captured_at": "yesterday"})
    with pytest.raises(MalformedEnvelope, match="time zone"):
        parse_envelope({**envelope, "captured_at": "2026-11-20T14:02:11"})


def test_a_record_without_its_metadata_cannot_be_encrypted(key):
    with pytest.raises(ValueError, match="subject"):
        encrypt_record({**make_record(), "subject": ""}, key)
    with pytest.raises(ValueError, match="RFC 3339"):
        encrypt_record(make_record(captured_at="now"), key)


@pytest.mark.parametrize("wire", ["%%%", base64.b64encode(b"short").decode(), base64.b64encode(bytes(33)).decode()])
def test_a_key_off_the_wire_must_be_32_bytes_of_standard_base64(wire):
    with pytest.raises(ValueError, match="key"):
        DataKey.from_wire("k_1", wire)
    assert DataKey.from_wire("k_1", base64.b64encode(bytes(32)).decode()).secret == bytes(32)


# Nonces -------------------------------------------------------------------------------------


def test_a_million_encryptions_never_repeat_a_key_and_nonce_pair(monkeypatch):
    """Every nonce ``encrypt_record`` drew over 1,000,000 records under four keys, checked for repeats.

    ``seal`` is the function ``encrypt_record`` encrypts through; it is wrapped
    (not replaced) to keep each (key, nonce) it used, and the envelopes' own
    nonces are compared with what it saw.
    """
    keys = [make_key(f"k_{index}") for index in range(4)]
    seen: list[tuple[str, bytes]] = []
    real_seal = crypto.seal

    def recording_seal(key, plaintext, associated, *, nonces=None):
        nonce, ciphertext = real_seal(key, plaintext, associated, nonces=nonces)
        seen.append((key.key_id, nonce))
        return nonce, ciphertext

    monkeypatch.setattr(crypto, "seal", recording_seal)
    record = make_record()
    encrypt = crypto.encrypt_record
    last = None
    for index in range(1_000_000):
        last = encrypt(record, keys[index & 3])

    assert len(seen) == 1_000_000
    assert len(set(seen)) == 1_000_000
    assert base64.b64decode(last["nonce"]) == seen[-1][1]
    # Stronger than per key: no nonce repeats at all within the process.
    assert len({nonce for _, nonce in seen}) == 1_000_000


def test_nonces_share_a_random_prefix_and_count_up():
    sequence = NonceSequence()
    first, second = sequence.next(), sequence.next()
    assert first[:4] == second[:4]
    assert int.from_bytes(second[4:], "big") == int.from_bytes(first[4:], "big") + 1
    assert int.from_bytes(first[4:], "big") < 1 << 63


def test_two_sequences_start_apart():
    assert NonceSequence().next() != NonceSequence().next()


def test_a_used_up_counter_refuses_to_wrap():
    sequence = NonceSequence()
    sequence._counter = (1 << 64) - 1
    sequence.next()
    with pytest.raises(crypto.NonceExhausted):
        sequence.next()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_draws_a_new_sequence():
    sequence = NonceSequence()
    parent = sequence.next()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next nonce and leave at once
        os.write(write, sequence.next())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 12)
    os.close(read)
    os.close(write)
    assert child[:4] != parent[:4] or abs(int.from_bytes(child[4:], "big") - int.from_bytes(parent[4:], "big")) > 1

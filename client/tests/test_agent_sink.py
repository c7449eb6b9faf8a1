"""The agent's records are sealed before the spool sees them; a category without a data key is not captured."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from consentry_client.agent.agent import Agent
from consentry_client.agent.sink import EncryptingSink, JsonlSpool, NoDataKey
from consentry_client.capture import Context, Grant, _data_keys
from consentry_client.crypto import DataKey, decrypt_blob, decrypt_record

EDITOR = Context(app="com.microsoft.VSCode")
NOW = datetime(2026, 11, 20, 14, 2, 11, 123000, tzinfo=UTC)


def make_grant(*categories: str, keys: dict[str, DataKey] | None = None) -> Grant:
    return Grant(
        id="g_7Qk",
        subject="p_4c1e",
        purpose="ai_agent_training",
        categories=frozenset(categories),
        issued_at=NOW,
        expires_at=NOW + timedelta(seconds=60),
        policy_version="a3f1",
        token="x.y.z",
        data_keys=keys if keys is not None else {c: DataKey(f"k_{c}", secrets.token_bytes(32)) for c in categories},
    )


class FakeGate:
    def __init__(self, grant: Grant) -> None:
        self.grant = grant

    def allows(self, category: str, context: Context | None = None) -> Grant | None:
        return self.grant if category in self.grant.categories else None

    def server_now(self) -> datetime:
        return NOW


def spool_lines(folder) -> list[bytes]:
    return [line for path in sorted(folder.glob("records-*.jsonl")) for line in path.read_bytes().splitlines()]


@pytest.fixture
def spool(tmp_path):
    return tmp_path / "spool"


def make_agent(grant: Grant, spool) -> Agent:
    return Agent(FakeGate(grant), EncryptingSink(JsonlSpool(spool)), probe=None)


def test_records_reach_the_spool_encrypted_and_open_with_the_grants_key(spool):
    grant = make_grant("keystrokes", "mouse_movement")
    agent = make_agent(grant, spool)

    assert agent.record("keystrokes", {"key": "secret-typing"}, EDITOR)
    assert agent.record("mouse_movement", {"x": 412, "y": 87}, EDITOR)
    agent.sink.close()

    raw = spool_lines(spool)
    # Markers that cannot occur in the random ids or the base64 fields: the typed text (a hyphen)
    # and the pointer record's JSON keys (quotes).
    plaintext = (b"secret-typing", b'"x"', b'"y"')
    assert len(raw) == 2 and not any(marker in line for line in raw for marker in plaintext)
    envelopes = [json.loads(line) for line in raw]
    assert [e["key_id"] for e in envelopes] == ["k_keystrokes", "k_mouse_movement"]
    assert all("data" not in envelope and envelope["v"] == 1 for envelope in envelopes)
    opened = decrypt_record(envelopes[0], grant.data_keys["keystrokes"])
    assert opened["data"] == {"key": "secret-typing"}
    assert opened["subject"] == grant.subject and opened["grant_id"] == grant.id
    assert opened["captured_at"] == "2026-11-20T14:02:11.123Z"


def test_a_grant_without_data_keys_captures_nothing(spool):
    agent = make_agent(make_grant("keystrokes", keys={}), spool)

    assert not agent.record("keystrokes", {"key": "a"}, EDITOR)
    assert not agent.record("keystrokes", {"key": "b"}, EDITOR)

    assert spool_lines(spool) == []
    assert agent.counts["keystrokes"] == 0 and agent.without_key["keystrokes"] == 2


def test_only_the_categories_with_a_key_are_captured(spool):
    key = DataKey("k_keystrokes", secrets.token_bytes(32))
    agent = make_agent(make_grant("keystrokes", "mouse_movement", keys={"keystrokes": key}), spool)

    assert agent.record("keystrokes", {"key": "a"}, EDITOR)
    assert not agent.record("mouse_movement", {"x": 1, "y": 2}, EDITOR)
    assert [json.loads(line)["category"] for line in spool_lines(spool)] == ["keystrokes"]


def test_a_screenshot_is_kept_encrypted_and_bound_to_its_record(spool):
    grant = make_grant("screenshots")
    agent = make_agent(grant, spool)
    png = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(500)

    assert agent.record("screenshots", {"width": 8, "height": 8, "_blob": (png, ".png")}, EDITOR)

    envelope = json.loads(spool_lines(spool)[0])
    record = decrypt_record(envelope, grant.data_keys["screenshots"])
    assert record["data"]["file"].endswith(".png.enc")
    sealed = (spool / record["data"]["file"]).read_bytes()
    assert png[8:] not in sealed and not sealed.startswith(b"\x89PNG")
    assert list((spool / "blobs").glob("*.png")) == []
    key = grant.data_keys["screenshots"]
    opened = decrypt_blob(sealed, key, record_id=record["id"], subject=record["subject"], category="screenshots")
    assert opened == png


def test_the_sink_refuses_a_record_it_has_no_key_for(spool):
    sink = EncryptingSink(JsonlSpool(spool))
    grant = make_grant("keystrokes", keys={})
    record = {"id": "r_1", "grant_id": grant.id, "subject": grant.subject, "category": "keystrokes"}
    with pytest.raises(NoDataKey):
        sink.write({**record, "captured_at": "2026-11-20T14:02:11Z", "data": {"key": "a"}}, grant)
    with pytest.raises(NoDataKey):
        sink.write_blob("r_1", b"png", ".png", grant, category="keystrokes")
    assert spool_lines(spool) == [] and list((spool / "blobs").iterdir()) == []


def test_a_grant_keeps_only_well_formed_keys_for_its_own_categories():
    good = base64.b64encode(secrets.token_bytes(32)).decode()
    wire = {
        "keystrokes": {"key_id": "k_1", "key": good},
        "mouse_movement": {"key_id": "k_2", "key": "not base64!"},
        "screenshots": {"key_id": "k_3"},
        "mouse_clicks": "nonsense",
        "app_usage": {"key_id": "k_4", "key": good},  # not a category of this grant
    }
    keys = _data_keys(wire, frozenset({"keystrokes", "mouse_movement", "screenshots", "mouse_clicks"}))
    assert list(keys) == ["keystrokes"] and keys["keystrokes"].key_id == "k_1"
    assert _data_keys(None, frozenset({"keystrokes"})) == {}
    assert _data_keys(["k"], frozenset({"keystrokes"})) == {}


def test_after_midnight_a_grant_from_the_day_before_captures_nothing(spool):
    grant = make_grant("keystrokes")
    agent = make_agent(grant, spool)
    agent.gate.server_now = lambda: NOW.replace(hour=23, minute=59, second=59)
    assert agent.record("keystrokes", {"key": "a"}, EDITOR)

    # The key is the grant's day's key; the use decision would release the next day's for this record.
    agent.gate.server_now = lambda: NOW.replace(hour=0, minute=0, second=1) + timedelta(days=1)
    assert not agent.record("keystrokes", {"key": "b"}, EDITOR)

    assert len(spool_lines(spool)) == 1 and agent.without_key["keystrokes"] == 1

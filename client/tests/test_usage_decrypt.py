"""UsageGate.decrypt: plaintext only for records the server allowed and released a key for.

The use decision is played by a small standard-library HTTP server that
answers NDJSON the way API.md describes (keys on their own line, or on the
summary line); the crypto and the gate are the real ones.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from consentry_client.crypto import DataKey, encrypt_blob, encrypt_record
from consentry_client.usage import (
    INVALID_ENVELOPE,
    KEY_NOT_RELEASED,
    RECORD_TAMPERED,
    Reason,
    UsageGate,
    UseResult,
    open_allowed,
    released_keys,
)

DAY_KEY = DataKey("k_p1_keystrokes_20261120", secrets.token_bytes(32))
OTHER_KEY = DataKey("k_p2_keystrokes_20261120", secrets.token_bytes(32))


def wire(key: DataKey) -> str:
    return base64.b64encode(key.secret).decode()


def sealed(index: int, key: DataKey = DAY_KEY, subject: str = "p_1") -> dict:
    record = {
        "id": f"r{index}",
        "subject": subject,
        "purpose": "ai_agent_training",
        "category": "keystrokes",
        "captured_at": f"2026-11-20T14:02:{index:02d}.000Z",
        "grant_id": "g_1",
        "data": {"key": f"secret {index}"},
    }
    return encrypt_record(record, key)


ALLOWED = UseResult("r", True)
DENIED = UseResult("r", False, (Reason("consent_withdrawn"),))


# The rule itself, without a server ----------------------------------------------------------


def test_a_denied_record_is_never_opened_even_when_its_days_key_was_released():
    envelopes = [sealed(1), sealed(2)]
    opened = list(open_allowed(envelopes, [ALLOWED, DENIED], {DAY_KEY.key_id: DAY_KEY}))
    assert opened[0][2]["data"] == {"key": "secret 1"}
    assert opened[1][2] is None and opened[1][1] is DENIED


def test_an_allowed_record_without_its_key_stays_closed():
    [(_, result, plaintext)] = open_allowed([sealed(1, OTHER_KEY)], [ALLOWED], {DAY_KEY.key_id: DAY_KEY})
    assert plaintext is None and result.codes == (KEY_NOT_RELEASED,) and not result.allowed


def test_a_tampered_or_malformed_record_is_denied_not_fatal():
    moved = {**sealed(1), "subject": "p_2"}
    broken = {**sealed(2), "nonce": "%%"}
    results = list(open_allowed([moved, broken], [ALLOWED, ALLOWED], {DAY_KEY.key_id: DAY_KEY}))
    assert [result.codes for _, result, _ in results] == [(RECORD_TAMPERED,), (INVALID_ENVELOPE,)]
    assert all(plaintext is None for _, _, plaintext in results)


def test_a_malformed_released_key_is_left_out():
    keys = released_keys({"k_good": wire(DAY_KEY), "k_short": base64.b64encode(b"1234").decode(), "k_num": 7})
    assert list(keys) == ["k_good"]
    assert released_keys(None) == {} and released_keys(["k"]) == {}


def test_blobs_open_with_their_records_key(tmp_path):
    key = DAY_KEY
    plain = {"id": "r1", "subject": "p_1", "category": "screenshots", "captured_at": "2026-11-20T14:02:01Z"}
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "r1.png.enc").write_bytes(
        encrypt_blob(b"PNGDATA", key, record_id="r1", subject="p_1", category="screenshots")
    )
    record = encrypt_record({**plain, "grant_id": "g_1", "data": {"file": "blobs/r1.png.enc"}}, key)
    outside = encrypt_record({**plain, "id": "r2", "grant_id": "g_1", "data": {"file": "../secret"}}, key)

    results = list(open_allowed([record, outside], [ALLOWED, ALLOWED], {key.key_id: key}, blobs=tmp_path))

    assert results[0][2]["blob"] == b"PNGDATA"
    assert results[1][2] is None and results[1][1].codes == (INVALID_ENVELOPE,)


# Through the gate, against a stub use decision -----------------------------------------------


class StubUseDecision:
    """Allows the ids in ``allowed``; releases ``keys`` on a keys line or on the summary line."""

    def __init__(self, allowed: set[str], keys: dict[str, str], *, where: str = "line") -> None:
        self.allowed, self.keys, self.where = allowed, keys, where
        self.queries: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                stub.queries.append(parse_qs(urlsplit(self.path).query))
                body = self.rfile.read(int(self.headers["Content-Length"]))
                records = [json.loads(line) for line in body.splitlines() if line.strip()]
                lines = []
                for record in records:
                    allowed = record["id"] in stub.allowed
                    reasons = [] if allowed else [{"code": "consent_withdrawn", "detail": "withdrawn"}]
                    lines.append({"id": record["id"], "allowed": allowed, "reasons": reasons})
                allowed_count = sum(line["allowed"] for line in lines)
                summary = {"allowed": allowed_count, "denied": len(lines) - allowed_count, "by_reason": {}}
                if stub.where == "line":
                    lines.append({"keys": stub.keys})
                    lines.append({"summary": summary})
                elif stub.where == "summary":
                    lines.append({"summary": summary, "keys": stub.keys})
                else:
                    lines.append({"summary": {**summary, "keys": stub.keys}})
                payload = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    made: list[StubUseDecision] = []

    def make(*args, **kwargs) -> StubUseDecision:
        made.append(StubUseDecision(*args, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.mark.parametrize("where", ["line", "summary", "inside-summary"])
def test_decrypt_yields_plaintext_for_allowed_records_only(stub, where):
    server = stub({"r1", "r3", "r4"}, {DAY_KEY.key_id: wire(DAY_KEY)}, where=where)
    envelopes = [sealed(1), sealed(2), sealed(3), sealed(4, OTHER_KEY, subject="p_2")]
    gate = UsageGate(server.url, "pipeline-token", purpose="ai_agent_training", batch_size=2)
    denied: list = []

    opened = list(gate.decrypt(envelopes, denied=denied))

    assert [record["data"]["key"] for record in opened] == ["secret 1", "secret 3"]
    assert {envelope["id"]: result.codes for envelope, result in denied} == {
        "r2": ("consent_withdrawn",),
        "r4": (KEY_NOT_RELEASED,),
    }
    assert all(query == {"purpose": ["ai_agent_training"], "release_keys": ["true"]} for query in server.queries)
    assert (gate.summary.allowed, gate.summary.denied) == (2, 2)
    assert gate.summary.by_reason == {"consent_withdrawn": 1, KEY_NOT_RELEASED: 1}


def test_filter_does_not_ask_for_keys(stub):
    server = stub({"r1"}, {DAY_KEY.key_id: wire(DAY_KEY)})
    gate = UsageGate(server.url, "pipeline-token", purpose="ai_agent_training")
    assert [envelope["id"] for envelope in gate.filter([sealed(1), sealed(2)])] == ["r1"]
    assert server.queries == [{"purpose": ["ai_agent_training"]}]


def test_a_server_that_releases_no_keys_opens_nothing(stub):
    server = stub({"r1", "r2"}, {})
    gate = UsageGate(server.url, "pipeline-token", purpose="ai_agent_training")
    denied: list = []
    assert list(gate.decrypt([sealed(1), sealed(2)], denied=denied)) == []
    assert [result.codes for _, result in denied] == [(KEY_NOT_RELEASED,), (KEY_NOT_RELEASED,)]

"""Record encryption end to end: the agent seals, a pipeline opens with released keys, shredding ends it.

Two employees capture through real capture gates and the agent's own record
path (``Agent.record`` into ``EncryptingSink(JsonlSpool)``); a pipeline opens
the spooled envelopes with ``UsageGate.decrypt``. After one employee's keys
are destroyed, that employee's records stay closed (``data_key_destroyed``,
no key released) while the other's still open.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from consentry_client import CaptureGate, Context, UsageGate
from consentry_client.agent.agent import Agent
from consentry_client.agent.sink import EncryptingSink, JsonlSpool

from conftest import SYSTEM, make_employee
from decisions.datakeys import destroy_employee_keys
from decisions.tests.conftest import grant_consent, relay
from people.tokens import token_issue
from tests.live.conftest import BEHIND_TLS_PROXY, DEVICE, PURPOSE, eventually, transport

pytestmark = pytest.mark.slow

EDITOR = Context(app="com.microsoft.VSCode")
CATEGORIES = ["keystrokes", "mouse_movement"]


class Capturer:
    """One employee's device: a live capture gate and the agent's record path into an encrypted spool."""

    def __init__(self, url: str, token: str, device_id: str, spool: Path) -> None:
        self.spool = spool
        self.gate = CaptureGate(
            url, token, device_id=device_id, purpose=PURPOSE, categories=CATEGORIES, transport=transport(url, token)
        )
        self.gate.set_context(EDITOR)
        self.gate.start()
        self.agent = Agent(self.gate, EncryptingSink(JsonlSpool(spool)), probe=None, categories=tuple(CATEGORIES))

    def capture(self, text: str) -> None:
        eventually(lambda: self.agent.grant_for("keystrokes", EDITOR) is not None, explain=self.gate.status)
        for char in text:
            assert self.agent.record("keystrokes", {"key": char}, EDITOR)
        assert self.agent.record("mouse_movement", {"x": 412, "y": 87}, EDITOR)

    def envelopes(self) -> list[dict]:
        return [json.loads(line) for path in sorted(self.spool.glob("records-*.jsonl")) for line in path.open()]

    def stop(self) -> None:
        self.gate.stop()
        self.agent.sink.close()


@pytest.fixture
def devices(world, tmp_path):
    other = make_employee(country="US", subdivision="US-WA", display_name="Otto (Washington)")
    grant_consent(other, *CATEGORIES)
    _, other_token = token_issue(kind="device", name="laptop-8", employee=other, device_id="laptop-8", actor=SYSTEM)
    wanda = Capturer(world.url, world.device_token, DEVICE, tmp_path / "wanda")
    otto = Capturer(world.url, other_token, "laptop-8", tmp_path / "otto")
    yield wanda, otto
    wanda.stop()
    otto.stop()


def _released_key_ids(world, envelopes: list[dict]) -> set[str]:
    """The key ids a plain JSON use decision with ``release_keys`` hands out for these records."""
    fields = ("id", "subject", "category", "captured_at", "grant_id")
    body = {
        "purpose": PURPOSE,
        "release_keys": True,
        "records": [{name: envelope[name] for name in fields} for envelope in envelopes],
    }
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{world.url}/api/v1/decisions/use",
        method="POST",
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {world.pipeline_token}",
            "Content-Type": "application/json",
            **BEHIND_TLS_PROXY,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return set(json.loads(response.read()).get("keys") or {})


def test_agent_records_open_for_a_pipeline_until_the_employees_keys_are_destroyed(world, devices):
    wanda, otto = devices
    wanda.capture("hello")
    otto.capture("world")
    mine, theirs = wanda.envelopes(), otto.envelopes()

    # The spools hold envelopes only: metadata in the clear, the data sealed.
    assert len(mine) == len(theirs) == 6
    raw = b"".join(path.read_bytes() for path in (*wanda.spool.glob("*.jsonl"), *otto.spool.glob("*.jsonl")))
    assert b'"data"' not in raw and b'"key":"h"' not in raw
    assert all(envelope["v"] == 1 and envelope["key_id"].startswith("k_") for envelope in mine + theirs)

    pipeline = UsageGate(
        world.url, world.pipeline_token, purpose=PURPOSE, transport=transport(world.url, world.pipeline_token)
    )
    denied: list = []
    opened = list(pipeline.decrypt(mine + theirs, denied=denied))

    assert denied == []
    typed = "".join(record["data"]["key"] for record in opened if record["category"] == "keystrokes")
    assert typed == "helloworld"
    assert [record["id"] for record in opened] == [envelope["id"] for envelope in mine + theirs]
    assert {record["data"]["x"] for record in opened if record["category"] == "mouse_movement"} == {412}
    wanda_keys = {envelope["key_id"] for envelope in mine}
    otto_keys = {envelope["key_id"] for envelope in theirs}
    assert _released_key_ids(world, mine + theirs) == wanda_keys | otto_keys

    destroy_employee_keys(employee=world.employee, reason="erasure", actor=SYSTEM)

    denied = []
    opened = list(pipeline.decrypt(mine + theirs, denied=denied))

    assert [record["id"] for record in opened] == [envelope["id"] for envelope in theirs]
    assert "".join(record["data"]["key"] for record in opened if record["category"] == "keystrokes") == "world"
    assert [envelope["id"] for envelope, _ in denied] == [envelope["id"] for envelope in mine]
    assert all("data_key_destroyed" in result.codes for _, result in denied)
    assert _released_key_ids(world, mine + theirs) == otto_keys
    # Nor does the shredded employee's agent get a key for today again: once the revocation is in
    # it captures nothing more (anything sealed before that used a destroyed key).
    relay()
    eventually(lambda: not wanda.agent.record("keystrokes", {"key": "x"}, EDITOR), explain=wanda.gate.status)
    assert not wanda.agent.record("keystrokes", {"key": "y"}, EDITOR)
    assert {envelope["key_id"] for envelope in wanda.envelopes()} == wanda_keys

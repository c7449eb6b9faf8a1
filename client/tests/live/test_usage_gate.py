"""The usage gate against a live server: NDJSON batches, reasons, retries with one key, tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
from consentry_client import UsageGate, UsageGateError
from django.utils import timezone

from audit.models import AuditEntry, EventType
from conftest import SYSTEM
from consent.services import consent_withdraw
from decisions.tests.conftest import PURPOSE, capture, device_client
from tests.live.conftest import Relay, transport

pytestmark = pytest.mark.slow


@pytest.fixture
def records(world):
    """Records a real agent would have captured under a real grant."""
    decision = capture(device_client(world.employee), "keystrokes", "mouse_movement")
    grant = decision["grant"]
    at = timezone.now()
    made = [
        {
            "id": f"r{index}",
            "subject": grant["subject"],
            "category": category,
            "captured_at": at + timedelta(milliseconds=index),
            "grant_id": grant["id"],
            "payload": f"data {index}",
        }
        for index, category in enumerate(["keystrokes", "mouse_movement", "keystrokes", "mouse_movement", "keystrokes"])
    ]
    made.append({**made[0], "id": "forged", "grant_id": "g_never_issued"})
    return made


def _gate(world, **options) -> UsageGate:
    options.setdefault("transport", transport(world.url, world.pipeline_token))
    return UsageGate(world.url, world.pipeline_token, purpose=PURPOSE, **options)


def test_only_allowed_records_come_through_and_denied_ones_say_why(world, records):
    consent_withdraw(employee=world.employee, purpose=PURPOSE, categories=["mouse_movement"], actor=SYSTEM)
    denied: list = []

    allowed = list(_gate(world).filter(records, denied=denied))

    assert [record["id"] for record in allowed] == ["r0", "r2", "r4"]
    assert allowed[0] is records[0]  # the records themselves, untouched
    assert {record["id"]: result.codes for record, result in denied} == {
        "r1": ("consent_withdrawn",),
        "r3": ("consent_withdrawn",),
        "forged": ("no_capture_grant",),
    }


def test_batches_keep_input_order_and_add_up(world, records):
    gate = _gate(world, batch_size=2)

    results = [(record["id"], result.allowed) for record, result in gate.decide(records)]

    assert results == [("r0", True), ("r1", True), ("r2", True), ("r3", True), ("r4", True), ("forged", False)]
    assert (gate.summary.allowed, gate.summary.denied) == (5, 1)
    assert gate.summary.by_reason == {"no_capture_grant": 1}
    assert len(gate.summary.batches) == 3
    entries = AuditEntry.objects.filter(event_type=EventType.USE_BATCH_DECIDED)
    assert entries.count() == 3
    assert all(entry.payload["idempotency_key"].startswith("use-") for entry in entries)


def test_a_record_that_is_not_valid_is_denied_not_fatal(world, records):
    broken = {**records[0], "id": "broken", "captured_at": "yesterday"}
    results = {record["id"]: result for record, result in _gate(world).decide([records[0], broken])}
    assert results["r0"].allowed and results["broken"].codes == ("invalid_record",)


def test_a_purpose_outside_the_token_fails_closed(world, records):
    gate = UsageGate(
        world.url, world.pipeline_token, purpose="ux_research", transport=transport(world.url, world.pipeline_token)
    )
    with pytest.raises(UsageGateError, match="403"):
        list(gate.filter(records))


def test_a_batch_whose_connection_breaks_is_retried_with_the_same_key(world, records, monkeypatch):
    relay = Relay(world.url)
    gate = UsageGate(
        relay.url, world.pipeline_token, purpose=PURPOSE, transport=transport(relay.url, world.pipeline_token)
    )
    sent = gate._send
    attempts = []

    def first_attempt_breaks(body, key, **options):
        attempts.append(key)
        if len(attempts) == 1:
            relay.cut()  # the server is unreachable for this attempt
            try:
                return sent(body, key, **options)
            finally:
                relay.restore()
        return sent(body, key, **options)

    monkeypatch.setattr(gate, "_send", first_attempt_breaks)
    try:
        allowed = list(gate.filter(records))
    finally:
        relay.close()

    assert [record["id"] for record in allowed] == ["r0", "r1", "r2", "r3", "r4"]
    assert len(attempts) == 2 and attempts[0] == attempts[1]


def test_with_the_server_gone_the_gate_raises_and_yields_nothing(world, records):
    relay = Relay(world.url)
    relay.cut()
    gate = UsageGate(
        relay.url,
        world.pipeline_token,
        purpose=PURPOSE,
        retries=1,
        transport=transport(relay.url, world.pipeline_token, timeout=2),
    )
    try:
        with pytest.raises(UsageGateError):
            list(gate.filter(records))
    finally:
        relay.close()


def test_a_pandas_frame_is_filtered_to_its_usable_rows(world, records):
    pandas = pytest.importorskip("pandas")
    consent_withdraw(employee=world.employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM)
    frame = pandas.DataFrame(records).rename(columns={"id": "record_id"})

    usable = _gate(world).filter_frame(frame, columns={"id": "record_id"})

    assert list(usable["record_id"]) == ["r1", "r3"]


def test_a_pyarrow_table_is_filtered_to_its_usable_rows(world, records):
    pyarrow = pytest.importorskip("pyarrow")
    table = pyarrow.Table.from_pylist(records)

    usable = _gate(world, batch_size=4).filter_table(table)

    assert usable.column("id").to_pylist() == ["r0", "r1", "r2", "r3", "r4"]
    assert usable.column("payload").to_pylist()[0] == "data 0"

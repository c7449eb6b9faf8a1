from __future__ import annotations

from datetime import UTC, datetime

import pytest

from audit.chain import GENESIS_HASH, canonical_json, entry_hash, format_time, normalise_payload


def _content(**overrides):
    base = {
        "seq": 1,
        "at": "2026-11-21T09:30:00.000000Z",
        "event_type": "consent.granted",
        "actor": "user:nina",
        "subject": "E1001",
        "object_type": "consent_event",
        "object_id": "7",
        "region": "US-NY",
        "payload": {"b": 1, "a": "é"},
        "prev_hash": GENESIS_HASH,
    }
    return {**base, **overrides}


def test_canonical_json_sorts_keys_and_keeps_unicode():
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


def test_floats_are_refused_because_their_text_is_not_stable():
    with pytest.raises(TypeError):
        canonical_json({"ratio": 0.1})


def test_payload_dates_become_rfc3339_text():
    moment = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert normalise_payload({"at": moment}) == {"at": "2026-11-21T09:30:00.000000Z"}


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        format_time(datetime(2026, 11, 21, 9, 30))


@pytest.mark.parametrize("field", ["seq", "at", "actor", "subject", "payload", "prev_hash", "region"])
def test_changing_any_field_changes_the_hash(field):
    changed = {"seq": 2, "at": "2026-11-21T09:30:00.000001Z", "payload": {"b": 2, "a": "é"}}.get(field, "x")
    assert entry_hash(_content()) != entry_hash(_content(**{field: changed}))


def test_hash_needs_every_field():
    content = _content()
    del content["region"]
    with pytest.raises(ValueError):
        entry_hash(content)

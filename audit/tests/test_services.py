from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.chain import GENESIS_HASH, entry_hash
from audit.models import AuditEntry, AuditHead, EventType
from audit.services import record, record_many
from consent.models import ConsentEvent, ConsentState
from consent.services import consent_grant

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def test_entries_form_a_gapless_chain_from_genesis():
    for index in range(5):
        record(event_type=EventType.REGION_SAVED, actor=ACTOR, object_id=str(index), payload={"n": index})
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    previous = GENESIS_HASH
    for entry in entries:
        assert entry.prev_hash == previous
        assert entry.hash == entry_hash(entry.content())
        previous = entry.hash
    assert AuditHead.objects.get().hash == previous


def test_stored_entries_rehash_to_the_same_value_after_a_round_trip():
    entry = record(event_type=EventType.REGION_SAVED, actor=ACTOR, payload={"nested": {"z": [1, "two"], "a": None}})
    assert AuditEntry.objects.get(pk=entry.pk).content() == entry.content()
    assert entry_hash(AuditEntry.objects.get(pk=entry.pk).content()) == entry.hash


def test_unknown_event_types_are_refused_and_nothing_is_written():
    with pytest.raises(ValueError):
        record(event_type="made.up", actor=ACTOR)
    assert AuditEntry.objects.count() == 0


def test_a_failed_audit_write_rolls_back_the_state_change(small_policy, ny_employee):
    before = AuditEntry.objects.count()
    # Occupy the next entry number behind record()'s back, so its INSERT fails for real.
    head = AuditHead.objects.get()
    squatter = {**record(event_type=EventType.REGION_SAVED, actor=ACTOR).content(), "seq": head.seq + 2}
    AuditEntry.objects.bulk_create([AuditEntry(**{**squatter, "at": timezone.now(), "hash": "f" * 64})])
    with pytest.raises(IntegrityError):
        consent_grant(
            employee=ny_employee,
            notice=small_policy["notice"],
            choices=[("ai_agent_training", "keystrokes")],
            actor=ACTOR,
        )
    assert ConsentEvent.objects.count() == 0
    assert ConsentState.objects.count() == 0
    assert AuditEntry.objects.count() == before + 2


def test_a_rolled_back_transaction_leaves_no_gap_in_the_sequence():
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(event_type=EventType.REGION_SAVED, actor=ACTOR)
        raise RuntimeError("change failed after its audit entry")
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == [1, 2]


def test_a_batch_is_chained_like_entries_recorded_one_by_one(monkeypatch):
    monkeypatch.setattr("audit.services.RECORD_MANY_CHUNK", 3)
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    items = [
        {"event_type": EventType.CONSENT_GRANTED, "actor": ACTOR, "subject": "E1", "object_id": n, "payload": {"n": n}}
        for n in range(7)
    ]
    batch = record_many(items)
    assert [entry.seq for entry in batch] == list(range(2, 9))
    stored = list(AuditEntry.objects.order_by("seq"))
    previous = GENESIS_HASH
    for entry in stored:
        assert entry.prev_hash == previous and entry.hash == entry_hash(entry.content())
        previous = entry.hash
    assert [entry.hash for entry in batch] == [entry.hash for entry in stored[1:]]
    assert [entry.payload["n"] for entry in stored[1:]] == list(range(7))
    assert AuditHead.objects.get().seq == 8
    assert record_many([]) == []


def test_a_batch_entry_cannot_be_saved_again():
    [entry] = record_many([{"event_type": EventType.REGION_SAVED, "actor": ACTOR}])
    with pytest.raises(PermissionError):
        entry.save()


def test_a_batch_with_an_unknown_type_writes_nothing():
    with pytest.raises(ValueError):
        record_many([{"event_type": EventType.REGION_SAVED, "actor": ACTOR}, {"event_type": "made.up", "actor": ACTOR}])
    assert AuditEntry.objects.count() == 0


def test_a_failed_batch_rolls_back_with_the_change_and_leaves_no_gap():
    record(event_type=EventType.REGION_SAVED, actor=ACTOR)
    head = AuditHead.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEntry.objects.bulk_create(
            [
                AuditEntry(
                    **{**AuditEntry.objects.get(seq=1).content(), "seq": 3, "at": timezone.now(), "hash": "e" * 64}
                )
            ]
        )
        record_many([{"event_type": EventType.REGION_SAVED, "actor": ACTOR} for _ in range(3)])
    assert AuditHead.objects.get().seq == head.seq
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == [1]
    record_many([{"event_type": EventType.REGION_SAVED, "actor": ACTOR}])
    assert list(AuditEntry.objects.values_list("seq", flat=True)) == [1, 2]

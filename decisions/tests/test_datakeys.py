"""Data keys: made lazily per employee × category × day, wrapped, destroyed with a tombstone and evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEntry, EventType
from conftest import SYSTEM
from consentry.models import OutboxMessage
from consentry.outbox import Topic
from decisions.datakeys import (
    DESTROYED,
    data_keys_for_grant,
    destroy_employee_keys,
    key_states,
)
from decisions.kms import key_encryption_key
from decisions.models import DataKey, DestroyedKey
from decisions.tests.conftest import PURPOSE, feed_of, grant_consent, relay

NOW = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)


def make_keys(employee, *categories, at=NOW, purpose=PURPOSE):
    with transaction.atomic():
        return data_keys_for_grant(employee=employee, categories=categories, purpose=purpose, at=at)


def destroyed_entries(key_id: str | None = None):
    entries = AuditEntry.objects.filter(event_type=EventType.DATA_KEY_DESTROYED)
    return entries.filter(object_id=key_id) if key_id else entries


@pytest.mark.django_db
def test_a_key_is_made_once_per_employee_category_and_day(us_employee):
    first = make_keys(us_employee, "keystrokes", "screenshots")
    again = make_keys(us_employee, "keystrokes", at=NOW + timedelta(hours=5))
    next_day = make_keys(us_employee, "keystrokes", at=NOW + timedelta(days=1))
    assert again["keystrokes"] == first["keystrokes"]
    assert next_day["keystrokes"].key_id != first["keystrokes"].key_id
    assert len(first["keystrokes"].key) == 32 and first["keystrokes"].key_id.startswith("k_")
    assert DataKey.objects.count() == 3


@pytest.mark.django_db
def test_a_key_is_stored_only_wrapped(us_employee):
    issued = make_keys(us_employee, "keystrokes")["keystrokes"]
    row = DataKey.objects.get(pk=issued.key_id)
    assert issued.key not in bytes(row.wrapped)
    assert row.master_version == key_encryption_key().version


@pytest.mark.django_db
def test_destroying_an_employees_keys_leaves_tombstones_evidence_and_a_revocation(us_employee):
    grant_consent(us_employee, "keystrokes", "screenshots")
    issued = make_keys(us_employee, "keystrokes", "screenshots")
    assert destroy_employee_keys(employee=us_employee, reason="erasure", actor=SYSTEM) == 2
    assert not DataKey.objects.exists()
    assert set(DestroyedKey.objects.values_list("key_id", "reason")) == {
        (key.key_id, "erasure") for key in issued.values()
    }
    for key in issued.values():
        assert destroyed_entries(key.key_id).count() == 1
    assert OutboxMessage.objects.filter(topic=Topic.KEYS_DESTROYED).count() == 1
    relay()
    (event,) = [event for event in feed_of(us_employee) if event.type == "keys_destroyed"]
    assert event.categories == ["keystrokes", "screenshots"]
    assert event.keys == sorted(key.key_id for key in issued.values())
    # Nothing left to destroy, nothing destroyed twice.
    assert destroy_employee_keys(employee=us_employee, reason="erasure", actor=SYSTEM) == 0
    assert destroyed_entries().count() == 2


@pytest.mark.django_db
def test_a_destroyed_day_never_gets_a_key_again(us_employee):
    issued = make_keys(us_employee, "keystrokes")["keystrokes"]
    destroy_employee_keys(employee=us_employee, reason="erasure", actor=SYSTEM)
    assert make_keys(us_employee, "keystrokes") == {}
    triple = (us_employee.hr_id, "keystrokes", NOW.date())
    assert key_states({triple}) == {triple: DESTROYED}
    assert not DataKey.objects.filter(pk=issued.key_id).exists()


@pytest.mark.django_db
def test_a_key_cannot_be_destroyed_twice(us_employee):
    issued = make_keys(us_employee, "keystrokes")["keystrokes"]
    destroy_employee_keys(employee=us_employee, reason="erasure", actor=SYSTEM)
    with pytest.raises(IntegrityError), transaction.atomic():
        DestroyedKey.objects.create(
            key_id=issued.key_id,
            employee=us_employee,
            category="keystrokes",
            day=NOW.date(),
            reason="retention",
            destroyed_at=timezone.now(),
        )


@pytest.mark.django_db
def test_an_unknown_reason_is_refused(us_employee):
    with pytest.raises(ValueError):
        destroy_employee_keys(employee=us_employee, reason="because", actor=SYSTEM)

"""Data keys: made lazily per employee × category × day, wrapped, destroyed with a tombstone and evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditEntry, EventType
from conftest import SYSTEM
from consent.services import consent_withdraw
from consentry.models import OutboxMessage
from consentry.outbox import Topic
from decisions.datakeys import (
    DESTROYED,
    data_keys_for_grant,
    destroy_employee_keys,
    key_states,
    sweep_overdue_keys,
)
from decisions.kms import key_encryption_key
from decisions.models import DataKey, DestroyedKey
from decisions.tests.conftest import PURPOSE, feed_of, grant_consent, relay
from people.services import employee_terminate

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


# The sweep: each trigger, with time travel -------------------------------------------------
# The decision policy keeps raw data 30 days, deletes 7 days after a withdrawal
# and 30 days after a termination.


def sweep_at(moment):
    with time_machine.travel(moment, tick=False):
        return sweep_overdue_keys()


@pytest.mark.django_db
def test_retention_destroys_a_day_once_all_of_it_is_past_the_limit(us_employee):
    day = datetime(2026, 10, 1, 15, tzinfo=UTC)
    old = make_keys(us_employee, "keystrokes", at=day)["keystrokes"]
    young = make_keys(us_employee, "keystrokes", at=day + timedelta(days=5))["keystrokes"]
    # The day's last record (23:59:59) is 30 days old at midnight starting day + 31.
    last_safe = datetime(2026, 11, 1, tzinfo=UTC) - timedelta(microseconds=1)
    assert sweep_at(last_safe).total == 0
    assert DataKey.objects.count() == 2

    result = sweep_at(last_safe + timedelta(microseconds=1))
    assert result.destroyed == {"retention": 1}
    assert list(DataKey.objects.values_list("id", flat=True)) == [young.key_id]
    assert DestroyedKey.objects.get().reason == "retention"
    assert destroyed_entries(old.key_id).count() == 1
    # Rerunning finds nothing more to do.
    assert sweep_at(last_safe + timedelta(days=1)).total == 0
    assert destroyed_entries().count() == 1


@pytest.mark.django_db
def test_a_withdrawal_destroys_the_keys_once_the_deletion_window_passed(us_employee):
    grant_consent(us_employee, "keystrokes", "screenshots", at=NOW - timedelta(days=3))
    withdrawn = make_keys(us_employee, "keystrokes", at=NOW - timedelta(days=2))["keystrokes"]
    kept = make_keys(us_employee, "screenshots", at=NOW - timedelta(days=2))["screenshots"]
    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM, at=NOW)

    assert sweep_at(NOW + timedelta(days=7) - timedelta(seconds=1)).total == 0
    result = sweep_at(NOW + timedelta(days=7))
    assert result.destroyed == {"withdrawal": 1}
    assert DestroyedKey.objects.get().key_id == withdrawn.key_id
    assert DataKey.objects.filter(pk=kept.key_id).exists()
    relay()
    (event,) = [event for event in feed_of(us_employee) if event.type == "keys_destroyed"]
    assert (event.purpose, event.categories, event.keys) == (PURPOSE, ["keystrokes"], [withdrawn.key_id])


@pytest.mark.django_db
def test_a_key_still_serving_a_consented_purpose_survives_a_withdrawal_of_another(us_employee, policy):
    from governance import services as gov

    gov.purpose_save(slug="research", name="Research", description="Other.", categories=["keystrokes"], actor=SYSTEM)
    grant_consent(us_employee, "keystrokes", at=NOW - timedelta(days=3))
    make_keys(us_employee, "keystrokes", at=NOW - timedelta(days=2))
    make_keys(us_employee, "keystrokes", at=NOW - timedelta(days=2), purpose="research")
    consent_withdraw(employee=us_employee, purpose=PURPOSE, categories=["keystrokes"], actor=SYSTEM, at=NOW)
    # Research has no consent record at all: no withdrawal, so its data is not shredded for one.
    assert sweep_at(NOW + timedelta(days=8)).total == 0


@pytest.mark.django_db
def test_termination_destroys_every_key_once_the_termination_window_passed(us_employee):
    keys = make_keys(us_employee, "keystrokes", "screenshots", at=NOW - timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        employee_terminate(employee=us_employee, actor=SYSTEM)
    assert sweep_at(NOW + timedelta(days=29)).total == 0
    result = sweep_at(NOW + timedelta(days=30))
    assert result.destroyed == {"termination": 2}
    assert set(DestroyedKey.objects.values_list("key_id", flat=True)) == {key.key_id for key in keys.values()}


@pytest.mark.django_db
def test_a_key_without_any_retention_policy_is_kept(us_employee):
    from governance.models import RetentionPolicy

    RetentionPolicy.objects.all().delete()
    make_keys(us_employee, "keystrokes", at=NOW - timedelta(days=400))
    result = sweep_at(NOW)
    assert result.total == 0 and DataKey.objects.count() == 1

from __future__ import annotations

from datetime import timedelta

import pytest
from consentry_client.verify import NotIntact

from audit.merkle import leaf_hash, root_of_leaves
from audit.models import TREE_NODE_LEVEL, AuditCheckpoint, AuditEntry, AuditTreeNode, EventType
from audit.selectors import checkpoint_due, checkpoint_expected_by
from audit.services import checkpoint_create, record
from audit.statements import audit_public_key, signature_valid
from audit.tasks import checkpoint_tick
from audit.tests.conftest import ACTOR, START, seed_chain, tamper, write_entries
from audit.verifiers import verify_live
from consentry.signing import rotate_local_key

pytestmark = pytest.mark.django_db


def write_policy_entries(count: int, *, minute: int = 0) -> list[AuditEntry]:
    """Entries nobody holds a receipt for: only count and age make a checkpoint due."""
    return [
        record(event_type=EventType.REGION_SAVED, actor=ACTOR, object_id=n, at=START + timedelta(minutes=minute))
        for n in range(count)
    ]


def _root_over_all_entries() -> str:
    hashes = AuditEntry.objects.order_by("seq").values_list("hash", flat=True)
    return root_of_leaves([leaf_hash(h) for h in hashes]).hex()


def test_a_checkpoint_signs_size_head_and_merkle_root_of_every_entry():
    entries = write_entries(7)
    checkpoint = checkpoint_create()
    assert checkpoint is not None
    assert (checkpoint.number, checkpoint.size, checkpoint.head) == (1, 7, entries[-1].hash)
    assert checkpoint.root == _root_over_all_entries()
    assert checkpoint.prev_signature == ""
    statement = checkpoint.record().statement()
    assert statement.startswith(b"consentry-audit-checkpoint/v1\nnumber 1\nsize 7\n")
    assert signature_valid(statement, checkpoint.signature, audit_public_key(checkpoint.kid))


def test_the_next_checkpoint_extends_the_tree_and_signs_over_the_previous_signature():
    write_entries(5)
    first = checkpoint_create()
    assert first is not None
    write_entries(6)
    second = checkpoint_create()
    assert second is not None
    assert (second.number, second.size) == (2, 11)
    assert second.prev_signature == first.signature
    assert second.root == _root_over_all_entries()
    assert len(second.frontier) == (11).bit_count()


def test_no_checkpoint_is_made_when_no_entry_is_new():
    assert checkpoint_create() is None
    write_entries(2)
    checkpoint_create()
    assert checkpoint_create() is None
    assert AuditCheckpoint.objects.count() == 1


def test_perfect_subtrees_of_256_leaves_and_up_are_stored_for_proofs():
    seed_chain(600)
    checkpoint_create()
    stored = set(AuditTreeNode.objects.values_list("level", "index"))
    assert stored == {(8, 0), (8, 1), (9, 0)}
    hashes = list(AuditEntry.objects.order_by("seq").values_list("hash", flat=True))
    node = AuditTreeNode.objects.get(level=TREE_NODE_LEVEL, index=1)
    assert node.hash == root_of_leaves([leaf_hash(h) for h in hashes[256:512]]).hex()


def test_no_checkpoint_is_signed_over_a_broken_chain():
    write_entries(4)
    checkpoint_create()
    write_entries(4)
    tamper("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = 6")
    with pytest.raises(NotIntact) as caught:
        checkpoint_create()
    assert caught.value.finding.seq == 6
    assert AuditCheckpoint.objects.count() == 1


def test_a_rotated_key_signs_new_checkpoints_and_the_retired_key_still_verifies_old_ones(fresh_audit_keys):
    write_entries(3)
    old = checkpoint_create()
    assert old is not None
    new_kid = rotate_local_key("audit")
    write_entries(3)
    new = checkpoint_create()
    assert new is not None
    assert old.kid != new.kid == new_kid
    assert verify_live().ok


def test_a_checkpoint_is_due_after_enough_entries(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 5
    settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES = 60
    entries = write_policy_entries(4)
    # Judged at the first entry's time, so only the count can make it due.
    assert not checkpoint_due(now=entries[0].at)
    write_policy_entries(1)
    assert checkpoint_due(now=entries[0].at)


def test_a_checkpoint_is_due_when_the_oldest_uncovered_entry_is_old_enough(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1000
    settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES = 5
    [entry] = write_policy_entries(1)
    assert not checkpoint_due(now=entry.at + timedelta(minutes=4))
    assert checkpoint_due(now=entry.at + timedelta(minutes=5))
    assert checkpoint_expected_by(event_type=entry.event_type, at=entry.at) == entry.at + timedelta(
        minutes=5, seconds=30
    )


def test_a_consent_entry_makes_the_next_tick_sign_so_its_receipt_is_proven_soon(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1000
    settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES = 60
    settings.CONSENTRY_CHECKPOINT_POLL_SECONDS = 20
    [policy] = write_policy_entries(1)
    assert not checkpoint_due(now=policy.at)
    consent = record(event_type=EventType.CONSENT_WITHDRAWN, actor=ACTOR, subject="E1001", at=policy.at)
    assert checkpoint_due(now=consent.at)
    assert checkpoint_expected_by(event_type=consent.event_type, at=consent.at) == consent.at + timedelta(seconds=20)
    # A burst of changes between two ticks is covered by one checkpoint.
    record(event_type=EventType.CONSENT_GRANTED, actor=ACTOR, subject="E1002", at=policy.at)
    assert checkpoint_tick() == 1
    assert AuditCheckpoint.objects.get().size == 3
    assert checkpoint_tick() is None


def test_the_beat_tick_signs_only_when_due(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 3
    # The helper dates entries in the past, so even one is old enough by time.
    write_entries(1)
    assert checkpoint_tick() == 1
    assert checkpoint_tick() is None

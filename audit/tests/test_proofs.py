from __future__ import annotations

import pytest
from consentry_client import verify as standalone
from consentry_client.verify import NotIntact

from audit.merkle import leaf_hash, root_from_inclusion_path
from audit.models import AuditCheckpoint, AuditEntry
from audit.proofs import inclusion_proof
from audit.services import checkpoint_create
from audit.tests.conftest import seed_chain, tamper, write_entries
from consentry.signing import jwks

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_ledger():
    """1,100 entries under checkpoints at 700 and 1,100: stored subtrees and leaf blocks both in play."""
    seed_chain(700)
    checkpoint_create()
    seed_chain(400)
    checkpoint_create()


def test_every_proof_leads_to_the_signed_root_and_verifies_offline(long_ledger):
    checkpoint = AuditCheckpoint.objects.get(number=2)
    # Block edges, stored-subtree edges, both checkpoints' edges and the ends.
    for seq in (1, 2, 255, 256, 257, 512, 700, 701, 1024, 1025, 1099, 1100):
        proof = inclusion_proof(seq)
        assert proof is not None
        assert (proof["tree_size"], proof["checkpoint"]["number"]) == (1100, 2)
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        root = root_from_inclusion_path(seq - 1, 1100, leaf_hash(proof["entry_hash"]), path)
        assert root.hex() == checkpoint.root, seq
        result = standalone.verify_proof(proof, jwks=jwks())
        assert result.ok, (seq, result.findings)


def test_a_proof_can_be_made_against_an_earlier_checkpoint(long_ledger):
    proof = inclusion_proof(300, checkpoint=AuditCheckpoint.objects.get(number=1))
    assert proof is not None
    assert proof["tree_size"] == 700
    assert standalone.verify_proof(proof, jwks=jwks()).ok


def test_a_proof_reads_a_handful_of_rows_however_long_the_log(long_ledger, django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        inclusion_proof(777)


def test_there_is_no_proof_until_a_checkpoint_covers_the_entry():
    write_entries(3)
    assert inclusion_proof(2) is None
    checkpoint_create()
    proof = inclusion_proof(2)
    assert proof is not None and proof["tree_size"] == 3


def test_an_unknown_entry_has_no_proof():
    with pytest.raises(AuditEntry.DoesNotExist):
        inclusion_proof(5)


def test_a_damaged_stored_subtree_stops_the_proof_instead_of_handing_out_a_bad_one(long_ledger):
    tamper('UPDATE audit_audittreenode SET hash = %s WHERE level = 10 AND "index" = 0', ("00" * 32,))
    with pytest.raises(NotIntact):
        inclusion_proof(1050)


def test_an_altered_entry_gets_no_proof(long_ledger):
    tamper("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = 40")
    with pytest.raises(NotIntact) as caught:
        inclusion_proof(40)
    assert caught.value.finding.seq == 40


def test_a_single_entry_log_has_an_empty_path():
    write_entries(1)
    checkpoint_create()
    proof = inclusion_proof(1)
    assert proof is not None
    assert proof["audit_path"] == [] and standalone.verify_proof(proof, jwks=jwks()).ok

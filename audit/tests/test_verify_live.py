"""Tampering with the live ledger, as a database superuser with the triggers switched off.

The ledger: entries #1 to #45, signed checkpoints #1 to #4 at sizes 10, 20, 30
and 40. Each test names where it tampers and asserts the verifier points
there: the entry number when the damage is local, or the checkpoint whose
signed range holds it when an attacker rewrote the chain after the damage.
On PostgreSQL the triggers refuse all of this unless disabled, which
``tamper`` does (``session_replication_role = replica``).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from consentry_client.verify import NotIntact, verify_proof
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.chain import GENESIS_HASH, entry_hash, format_time
from audit.merkle import Frontier, inclusion_path, leaf_hash
from audit.models import AuditCheckpoint, AuditEntry, AuditTreeNode
from audit.proofs import PROOF_FORMAT, _noting, _subtrees, inclusion_proof
from audit.services import checkpoint_create
from audit.statements import Statement
from audit.tests.conftest import rechain, seed_chain, tamper, write_entries
from audit.verifiers import verify_live
from consentry.signing import b64url, jwks, thumbprint

pytestmark = pytest.mark.django_db
POSITION = 17


@pytest.fixture
def ledger():
    for _ in range(4):
        write_entries(10)
        checkpoint_create()
    write_entries(5)


def _json_param() -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def _first(report):
    assert not report.ok, "the tampering went unnoticed"
    return report.findings[0]


def test_an_untouched_ledger_verifies(ledger):
    report = verify_live()
    assert report.ok, report.findings
    assert (report.entries, report.size, report.checkpoints) == (45, 45, 4)


def _flip(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


@pytest.mark.parametrize(
    "field", ["event_type", "actor", "subject", "object_type", "object_id", "region", "prev_hash", "hash"]
)
def test_a_flipped_character_in_any_text_field_is_found_at_its_entry(ledger, field):
    entry = AuditEntry.objects.get(seq=POSITION)
    sql = f"UPDATE audit_auditentry SET {field} = %s WHERE seq = %s"  # noqa: S608 - field from the test's own list
    tamper(sql, (_flip(getattr(entry, field) or "x"), POSITION))
    assert _first(verify_live()).seq == POSITION


def test_a_changed_payload_value_is_found_at_its_entry(ledger):
    payload = AuditEntry.objects.get(seq=POSITION).payload
    payload["n"] += 1
    sql = f"UPDATE audit_auditentry SET payload = {_json_param()} WHERE seq = %s"  # noqa: S608 - a cast, no input
    tamper(sql, (json.dumps(payload), POSITION))
    assert _first(verify_live()).seq == POSITION


def test_a_time_moved_by_one_microsecond_is_found_at_its_entry(ledger):
    moment = AuditEntry.objects.get(seq=POSITION).at + timedelta(microseconds=1)
    tamper("UPDATE audit_auditentry SET at = %s WHERE seq = %s", (moment, POSITION))
    assert _first(verify_live()).seq == POSITION


def test_a_flipped_bit_in_the_sequence_number_is_found_as_a_gap(ledger):
    tamper("UPDATE audit_auditentry SET seq = %s WHERE seq = %s", (POSITION ^ 1024, POSITION))
    problem = _first(verify_live())
    assert problem.seq == POSITION
    assert "missing" in problem.message


def test_a_deleted_entry_is_found_where_it_was(ledger):
    tamper("DELETE FROM audit_auditentry WHERE seq = %s", (POSITION,))
    assert _first(verify_live()).seq == POSITION


def _renumber(after: int, shift: int) -> None:
    # Two steps: a unique key cannot take overlapping numbers in one statement everywhere.
    tamper("UPDATE audit_auditentry SET seq = seq + 1000000 WHERE seq > %s", (after,))
    tamper("UPDATE audit_auditentry SET seq = seq - 1000000 + %s WHERE seq > %s", (shift, after + 1000000 - 1))


def test_a_deleted_entry_with_the_chain_rewritten_after_it_fails_the_checkpoint_over_it(ledger):
    tamper("DELETE FROM audit_auditentry WHERE seq = %s", (POSITION,))
    _renumber(POSITION, -1)
    rechain(POSITION)
    problem = _first(verify_live())
    # Entry #17 lies in checkpoint #2's range, #11 to #20.
    assert problem.checkpoint == 2
    assert "#11 to #20" in problem.message


def test_two_swapped_entries_are_found_at_the_first(ledger):
    other = 23
    tamper("UPDATE audit_auditentry SET seq = 999 WHERE seq = %s", (POSITION,))
    tamper("UPDATE audit_auditentry SET seq = %s WHERE seq = %s", (POSITION, other))
    tamper("UPDATE audit_auditentry SET seq = %s WHERE seq = 999", (other,))
    assert _first(verify_live()).seq == POSITION


def _forge_after(position: int) -> None:
    """Insert a well-formed entry after ``position``, shifting the rest up by one."""
    _renumber(position, 1)
    before = AuditEntry.objects.get(seq=position)
    content = {**before.content(), "seq": position + 1, "actor": "user:mallory", "prev_hash": before.hash}
    tamper(
        "INSERT INTO audit_auditentry (seq, at, event_type, actor, subject, object_type, object_id, region,"  # noqa: S608
        f" payload, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, {_json_param()}, %s, %s)",
        (
            position + 1,
            before.at,
            content["event_type"],
            content["actor"],
            content["subject"],
            content["object_type"],
            content["object_id"],
            content["region"],
            json.dumps(content["payload"]),
            content["prev_hash"],
            entry_hash(content),
        ),
    )


def test_an_inserted_entry_is_found_at_the_first_entry_it_displaced(ledger):
    _forge_after(POSITION)
    # The forged #18 links to #17; the old #18, now #19, no longer matches its hash.
    assert _first(verify_live()).seq == POSITION + 2


def test_an_inserted_entry_with_the_chain_rewritten_fails_the_checkpoint_over_it(ledger):
    _forge_after(POSITION)
    rechain(POSITION + 2)
    problem = _first(verify_live())
    assert problem.checkpoint == 2
    assert "#11 to #20" in problem.message


def test_a_truncated_tail_under_a_checkpoint_is_found(ledger):
    tamper("DELETE FROM audit_auditentry WHERE seq > 25")
    tamper("UPDATE audit_audithead SET seq = 25, hash = (SELECT hash FROM audit_auditentry WHERE seq = 25)")
    problem = _first(verify_live())
    assert problem.checkpoint == 3
    assert "truncated" in problem.message


def test_a_truncated_tail_past_the_last_checkpoint_is_found_by_the_chain_head(ledger):
    tamper("DELETE FROM audit_auditentry WHERE seq > 42")
    problem = _first(verify_live())
    assert "chain head names entry #45" in problem.message


def test_a_replaced_checkpoint_root_fails_its_signature(ledger):
    tamper("UPDATE audit_auditcheckpoint SET root = %s WHERE number = 2", ("ab" * 32,))
    problem = _first(verify_live())
    assert problem.checkpoint == 2
    assert "signature" in problem.message


def test_a_deleted_checkpoint_breaks_the_checkpoint_chain(ledger):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    problem = _first(verify_live())
    assert problem.checkpoint == 3
    assert "checkpoint is missing" in problem.message


def _resign_all(key: Ed25519PrivateKey, *, kid: str) -> None:
    """Rebuild every checkpoint over the current (tampered) entries, signed with ``key``."""
    hashes = list(AuditEntry.objects.order_by("seq").values_list("hash", flat=True))
    previous = ""
    for checkpoint in AuditCheckpoint.objects.order_by("number"):
        frontier = Frontier()
        for value in hashes[: checkpoint.size]:
            frontier.push(leaf_hash(value))
        statement = Statement(
            number=checkpoint.number,
            size=checkpoint.size,
            root=frontier.root().hex(),
            head=hashes[checkpoint.size - 1],
            prev_signature=previous,
            issued_at=format_time(checkpoint.issued_at),
            kid=kid,
        )
        signature = b64url(key.sign(statement.message()))
        tamper(
            "UPDATE audit_auditcheckpoint SET root = %s, head = %s, frontier = "  # noqa: S608
            f"{_json_param()}, prev_signature = %s, kid = %s, signature = %s WHERE number = %s",
            (
                statement.root,
                statement.head,
                json.dumps(frontier.hex_nodes()),
                previous,
                kid,
                signature,
                checkpoint.number,
            ),
        )
        previous = signature


def _rewrite_history() -> None:
    tamper("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = %s", (POSITION,))
    rechain(POSITION)


def test_checkpoints_re_signed_with_another_key_are_refused(ledger):
    _rewrite_history()
    stranger = Ed25519PrivateKey.generate()
    _resign_all(stranger, kid=thumbprint(stranger.public_key()))
    problem = _first(verify_live())
    assert problem.checkpoint == 1
    assert "unknown key" in problem.message


def test_checkpoints_re_signed_with_another_key_under_the_real_kid_fail_their_signature(ledger):
    _rewrite_history()
    real_kid = AuditCheckpoint.objects.get(number=1).kid
    _resign_all(Ed25519PrivateKey.generate(), kid=real_kid)
    problem = _first(verify_live())
    assert problem.checkpoint == 1
    assert "signature does not verify" in problem.message


def test_verify_audit_prints_the_first_bad_entry_and_exits_non_zero(ledger, capsys):
    tamper("UPDATE audit_auditentry SET subject = 'E9999' WHERE seq = %s", (POSITION,))
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    assert caught.value.returncode == 1
    assert f"entry #{POSITION}" in str(caught.value)
    assert f"entry #{POSITION}: its content does not match" in capsys.readouterr().err


def test_verify_audit_reports_a_clean_ledger(ledger, capsys):
    call_command("verify_audit")
    assert "OK: live ledger verified: 45 entries, tree of 45, 4 signed checkpoints" in capsys.readouterr().out


def test_an_empty_ledger_verifies():
    report = verify_live()
    assert report.ok and report.size == 0
    assert GENESIS_HASH == "0" * 64


# --- stored Merkle nodes: what inclusion proofs are built from ---------------------------------------


@pytest.fixture
def long_ledger():
    """Entries #1 to #600, checkpoints at 300 and 600: stored nodes (8, 0), then (8, 1) and (9, 0)."""
    seed_chain(300)
    checkpoint_create()
    seed_chain(300)
    checkpoint_create()
    assert set(AuditTreeNode.objects.values_list("level", "index")) == {(8, 0), (8, 1), (9, 0)}


def _flip_node(level: int, index: int) -> None:
    stored = AuditTreeNode.objects.get(level=level, index=index).hash
    tamper('UPDATE audit_audittreenode SET hash = %s WHERE level = %s AND "index" = %s', (_flip(stored), level, index))


def test_a_ledger_with_stored_nodes_verifies(long_ledger):
    report = verify_live()
    assert report.ok, report.findings
    assert (report.entries, report.checkpoints) == (600, 2)


@pytest.mark.parametrize(
    ("level", "index", "entries"), [(8, 0, "#1 to #256"), (8, 1, "#257 to #512"), (9, 0, "#1 to #512")]
)
def test_a_flipped_stored_node_is_named(long_ledger, level, index, entries):
    _flip_node(level, index)
    problem = _first(verify_live())
    assert f"stored Merkle node (level {level}, index {index}) over entries {entries} differs" in str(problem)


def test_an_inclusion_proof_through_a_flipped_node_would_not_verify(long_ledger):
    _flip_node(8, 1)
    with pytest.raises(NotIntact, match="does not lead to checkpoint #2's root"):
        inclusion_proof(100)
    # Served without the server's own check, the proof fails the auditor's verifier.
    proof = _unchecked_proof(100)
    result = verify_proof(proof, jwks=jwks())
    assert not result.ok
    assert "does not lead to checkpoint #2's root" in str(result.findings[0])


def _unchecked_proof(seq: int) -> dict:
    entry = AuditEntry.objects.get(seq=seq)
    checkpoint = AuditCheckpoint.objects.order_by("-number").first()
    assert checkpoint is not None
    needed: list[tuple[int, int]] = []
    inclusion_path(seq - 1, checkpoint.size, _noting(needed))
    subtrees = _subtrees(needed)
    path = inclusion_path(seq - 1, checkpoint.size, lambda level, position: subtrees[(level, position)])
    return {
        "format": PROOF_FORMAT,
        "entry": entry.content(),
        "entry_hash": entry.hash,
        "leaf_index": seq - 1,
        "tree_size": checkpoint.size,
        "audit_path": [node.hex() for node in path],
        "checkpoint": checkpoint.record().as_json(with_frontier=False),
    }


def test_a_deleted_stored_node_is_named_as_missing(long_ledger):
    tamper('DELETE FROM audit_audittreenode WHERE level = 8 AND "index" = 1')
    problem = _first(verify_live())
    assert "stored Merkle node (level 8, index 1) over entries #257 to #512 is missing" in str(problem)


def test_a_stored_node_past_the_last_checkpoint_shows_the_checkpoint_was_deleted(long_ledger):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    problem = _first(verify_live())
    assert "stored Merkle node (level 8, index 1)" in str(problem)
    assert "beyond the last signed checkpoint (size 300)" in str(problem)


def test_a_stored_node_that_is_no_node_of_the_tree_is_named(long_ledger):
    tamper('INSERT INTO audit_audittreenode (level, "index", hash) VALUES (8, 5, %s)', ("ab" * 32,))
    tamper("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    tamper('DELETE FROM audit_audittreenode WHERE level = 9 OR (level = 8 AND "index" = 1)')
    problem = _first(verify_live())
    assert "stored Merkle node (level 8, index 5) over entries #1281 to #1536 is not a node" in str(problem)

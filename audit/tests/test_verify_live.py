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
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.chain import GENESIS_HASH, entry_hash, format_time
from audit.merkle import Frontier, leaf_hash
from audit.models import AuditCheckpoint, AuditEntry
from audit.services import checkpoint_create
from audit.statements import Statement
from audit.tests.conftest import rechain, tamper, write_entries
from audit.verifiers import verify_live
from consentry.signing import b64url, thumbprint

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

"""How long entries waited for a signed checkpoint, on the live ledger: deleted checkpoints show.

Nobody without the audit signing key can forge a checkpoint. An attacker with
the table owner's rights can still delete checkpoints, rewrite an entry and
recompute the chain, and then either leave the log uncovered or let the
signer sign it again. Both leave entries that waited longer than the
deployment's allowance for their first signed checkpoint, which the verifier
reports at the first such entry. The allowance here is realistic: a
checkpoint every 5 minutes or 1000 entries, a 30 s poll, 10 minutes of grace.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.chain import format_time
from audit.models import AuditCheckpoint
from audit.services import checkpoint_create
from audit.tests.conftest import rechain, tamper, write_at
from audit.verifiers import checkpoint_allowance, verify_live

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
POSITION = 17


@pytest.fixture(autouse=True)
def allowance(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES = 5
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1000
    settings.CONSENTRY_CHECKPOINT_POLL_SECONDS = 30
    settings.CONSENTRY_CHECKPOINT_GRACE_MINUTES = 10
    settings.CONSENTRY_CHECKPOINT_GRACE_ENTRIES = 100


@pytest.fixture
def ledger() -> datetime:
    """Entries #1 to #45, ten seconds apart; checkpoints #1 to #4 at 10, 20, 30, 40, each a minute late.

    Returns the last entry's time.
    """
    moment = T0
    for _ in range(4):
        last = write_at(10, start=moment)
        checkpoint_create(at=last + timedelta(minutes=1))
        moment = last + timedelta(minutes=2)
    return write_at(5, start=moment)


def _first(report):
    assert not report.ok, "the missing checkpoints went unnoticed"
    return report.findings[0]


def _rewrite_history(position: int = POSITION) -> None:
    tamper("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = %s", (position,))
    rechain(position)


def test_the_allowance_is_the_interval_the_poll_and_the_grace():
    allowance = checkpoint_allowance()
    assert (allowance.seconds, allowance.entries) == (15 * 60 + 30, 1100)


def test_a_ledger_signed_in_time_verifies_and_notes_its_young_tail(ledger):
    report = verify_live(now=ledger + timedelta(minutes=2))
    assert report.ok, report.findings
    assert report.checkpoints == 4
    assert any(note.startswith("not yet covered: 5 entries (young)") for note in report.notes)


def test_a_fresh_ledger_without_a_checkpoint_yet_verifies():
    last = write_at(3, start=T0)
    report = verify_live(now=last + timedelta(minutes=4))
    assert report.ok, report.findings
    assert (report.entries, report.checkpoints) == (3, 0)
    assert report.notes[0].startswith("not yet covered: 3 entries (young): entries #1 to #3")


def test_every_checkpoint_deleted_and_the_chain_rewritten_fails_at_the_first_entry(ledger):
    tamper("DELETE FROM audit_auditcheckpoint")
    _rewrite_history()
    problem = _first(verify_live(now=ledger + timedelta(hours=1)))
    assert problem.seq == 1
    assert f"written at {format_time(T0)}, was covered by no signed checkpoint until now" in problem.message
    assert "checkpoints were deleted" in problem.message


def test_the_latest_checkpoints_deleted_fail_at_the_first_entry_they_covered(ledger):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number >= 3")
    _rewrite_history(25)
    problem = _first(verify_live(now=ledger + timedelta(hours=1)))
    assert problem.seq == 21
    assert "covered by no signed checkpoint" in problem.message


def test_checkpoints_deleted_then_signed_again_by_the_service_fail_as_late(ledger):
    """The signer, finding no checkpoint, signs a first one over the rewritten log: hours after its entries."""
    tamper("DELETE FROM audit_auditcheckpoint")
    _rewrite_history()
    resigned = checkpoint_create(at=ledger + timedelta(hours=1))
    assert resigned is not None and resigned.number == 1 and resigned.size == 45
    problem = _first(verify_live(now=ledger + timedelta(hours=1, minutes=1)))
    assert problem.seq == 1
    assert "was covered by no signed checkpoint until checkpoint #1 signed at" in problem.message


def test_a_checkpoint_deleted_from_the_middle_breaks_the_checkpoint_chain(ledger):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number = 2")
    problem = _first(verify_live(now=ledger + timedelta(minutes=2)))
    assert problem.checkpoint == 3
    assert "a checkpoint is missing" in problem.message


def test_the_first_checkpoint_deleted_leaves_no_genesis(ledger):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number = 1")
    problem = _first(verify_live(now=ledger + timedelta(minutes=2)))
    assert problem.checkpoint == 2
    assert "is not the first checkpoint" in problem.message


def test_a_tail_too_long_for_the_allowance_fails_however_young(settings):
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 5
    settings.CONSENTRY_CHECKPOINT_GRACE_ENTRIES = 5
    last = write_at(12, start=T0, step=timedelta(seconds=1))
    problem = _first(verify_live(now=last + timedelta(seconds=5)))
    assert problem.seq == 1
    assert "12 entries later" in problem.message


def test_the_grace_is_configurable(ledger, settings):
    tamper("DELETE FROM audit_auditcheckpoint WHERE number >= 3")
    settings.CONSENTRY_CHECKPOINT_GRACE_MINUTES = 120
    assert verify_live(now=ledger + timedelta(hours=1)).ok


def test_verify_audit_names_the_first_uncovered_entry(ledger, capsys):
    tamper("DELETE FROM audit_auditcheckpoint")
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit")
    assert caught.value.returncode == 1
    assert "entry #1: written at" in capsys.readouterr().err


def test_verify_audit_prints_the_young_tail(capsys):
    write_at(2, start=datetime.now(UTC) - timedelta(minutes=1))
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "OK: live ledger verified: 2 entries, tree of 2, 0 signed checkpoints" in out
    assert "not yet covered: 2 entries (young)" in out
    assert AuditCheckpoint.objects.count() == 0

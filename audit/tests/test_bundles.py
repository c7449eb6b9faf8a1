"""Export bundles against both verifiers: ``verify_audit EXPORT`` and the standalone client.

The ledger: entries #1 to #45 with checkpoints #1 to #4 at 10, 20, 30 and 40;
the export request is entry #46 and the export signs checkpoint #5 over it.
In a complete export entry #n is line n. Each tamper test names its position
and asserts both verifiers report it first.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from consentry_client import verify as standalone
from consentry_client.verify import Checkpoint
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import override_settings

from audit.access import AuditAccess
from audit.bundle import write_bundle
from audit.chain import HASH_TAG, format_time
from audit.merkle import Frontier, leaf_hash
from audit.models import AuditEntry, EventType, ExportStatus
from audit.selectors import EntryFilters
from audit.services import checkpoint_create
from audit.statements import MANIFEST_HEADER
from audit.tests.conftest import LATE_CHECKPOINTS_ALLOWED, START, build_export, tamper, write_at, write_entries
from audit.tests.conftest import rechain as ledger_rechain
from audit.verifiers import verify_bundle
from conftest import make_user
from consentry.signing import b64url, jwks, public_jwk, thumbprint

pytestmark = pytest.mark.django_db
POSITION = 17


def server(path: Path, **_):
    report = verify_bundle(path)
    return report.ok, report.findings


def client(path: Path, *, keys=None):
    result = standalone.verify_bundle(path, jwks=keys or jwks())
    return result.ok, result.findings


VERIFIERS = [pytest.param(server, id="verify_audit"), pytest.param(client, id="consentry-verify")]


@pytest.fixture(params=VERIFIERS)
def verifier(request):
    return request.param


@pytest.fixture
def ledger(media):
    for _ in range(4):
        write_entries(10)
        checkpoint_create()
    write_entries(5)
    return make_user("auditor-exports")


FILTERS = {
    "time range": EntryFilters(since=START + timedelta(minutes=25), until=START + timedelta(minutes=33)),
    "event types": EntryFilters(event_types=(EventType.CONSENT_WITHDRAWN,)),
    "subject": EntryFilters(subject="E1002"),
    "actor": EntryFilters(actor="user:user1"),
    "nobody": EntryFilters(subject="nobody"),
}
SCOPED = AuditAccess(can_audit=True, regions=frozenset({"US", "US-NY"}), countries=frozenset({"US"}))


@pytest.fixture(scope="session")
def built(django_db_setup, django_db_blocker, tmp_path_factory):
    """Every bundle the tamper tests start from, built once over the ledger above and rolled back.

    The bundles verify without the database, so a session of tests can share
    them; each test copies the one it tampers with into its own folder.
    """
    root = tmp_path_factory.mktemp("bundles")
    paths, expected = {}, {}
    late = override_settings(MEDIA_ROOT=root / "media", **LATE_CHECKPOINTS_ALLOWED)
    with django_db_blocker.unblock(), late, transaction.atomic():
        user = make_user("auditor-bundles")
        for _ in range(4):
            write_entries(10)
            checkpoint_create()
        write_entries(5)
        exports = {"complete": build_export(user), "csv": build_export(user, format="csv")}
        exports["scoped"] = build_export(user, access=SCOPED)
        for name, filters in FILTERS.items():
            exports[name] = build_export(user, filters=filters)
            covered = AuditEntry.objects.filter(filters.condition(), seq__lte=exports[name].checkpoint.size)
            expected[name] = list(covered.values_list("seq", flat=True))
        for name, export in exports.items():
            paths[name] = root / f"{name}.zip"
            shutil.copyfile(export.file.path, paths[name])
        transaction.set_rollback(True)
    return SimpleNamespace(paths=paths, expected=expected)


def _copy(built, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.zip"
    shutil.copyfile(built.paths[name], path)
    return path


@pytest.fixture
def bundle(built, tmp_path) -> Path:
    return _copy(built, "complete", tmp_path)


def _first(outcome):
    ok, problems = outcome
    assert not ok, "the tampering went unnoticed"
    return problems[0]


def rewrite(path: Path, name: str, change: Callable[[bytes], bytes]) -> Path:
    """A copy of the bundle with one member changed (the manifest is left as it was)."""
    out = path.with_name(f"tampered-{name}.zip")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == name else data)
    return out


def edit_lines(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[bytes], bytes]:
    return lambda data: b"".join(line + b"\n" for line in change(data.splitlines()))


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def edit_entry(lines: list[bytes], position: int, change: Callable[[dict], None]) -> list[bytes]:
    line = json.loads(lines[position - 1])
    change(line)
    return [*lines[: position - 1], canonical(line), *lines[position:]]


def rehashed(entry: dict) -> dict:
    return {"entry": entry, "hash": hashlib.sha256(HASH_TAG + canonical(entry)).hexdigest()}


def rechain(lines: list[bytes], start: int) -> list[bytes]:
    """Renumber and rehash every line from ``start`` (1-based) on, as an attacker without the key can."""
    out = lines[: start - 1]
    previous = json.loads(out[-1])["hash"]
    for index, line in enumerate(lines[start - 1 :], start=start):
        entry = {**json.loads(line)["entry"], "seq": index, "prev_hash": previous}
        record = rehashed(entry)
        out.append(canonical(record))
        previous = record["hash"]
    return out


def _flip(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


def test_a_clean_export_verifies_with_both_verifiers(bundle, verifier):
    ok, problems = verifier(bundle)
    assert ok, problems


def test_a_complete_export_holds_every_entry_up_to_a_fresh_checkpoint(bundle):
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert "leaves.txt" not in archive.namelist()
        lines = archive.read("entries.jsonl").splitlines()
    assert manifest["tree"] == {"from_size": 0, "to_size": 46, "leaves": None}
    assert manifest["entries"]["count"] == len(lines) == 46
    assert json.loads(lines[-1])["entry"]["event_type"] == EventType.AUDIT_EXPORT_REQUESTED
    assert manifest["checkpoints"] == {"file": "checkpoints.jsonl", "from": 1, "to": 5}


def test_the_export_is_itself_audited_with_the_bundles_hash(ledger):
    export = build_export(ledger)
    completed = AuditEntry.objects.get(event_type=EventType.AUDIT_EXPORT_COMPLETED)
    assert completed.object_id == str(export.id)
    stored = hashlib.sha256(Path(export.file.path).read_bytes()).hexdigest()
    assert completed.payload["sha256"] == export.sha256 == stored
    requested = AuditEntry.objects.get(event_type=EventType.AUDIT_EXPORT_REQUESTED)
    assert requested.actor == "user:auditor-exports"
    assert export.status == ExportStatus.DONE and export.progress == 100


def test_a_rebuilt_bundle_is_byte_for_byte_the_same(ledger, tmp_path):
    export = build_export(ledger)
    again = tmp_path / "again.zip"
    with again.open("w+b") as out:
        write_bundle(export=export, out=out, on_progress=lambda percent: None)
    assert hashlib.sha256(again.read_bytes()).hexdigest() == export.sha256


@pytest.mark.parametrize(
    "field", ["at", "event_type", "actor", "subject", "object_type", "object_id", "region", "payload", "prev_hash"]
)
def test_a_changed_field_of_an_entry_is_found_at_that_entry(bundle, verifier, field):
    def change(line: dict) -> None:
        entry = line["entry"]
        if field == "payload":
            entry["payload"]["n"] += 1
        else:
            entry[field] = _flip(entry[field] or "x")

    tampered = rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: edit_entry(lines, POSITION, change)))
    assert _first(verifier(tampered)).seq == POSITION


def test_a_flipped_hash_is_found_at_its_entry(bundle, verifier):
    def change(line: dict) -> None:
        line["hash"] = _flip(line["hash"])

    tampered = rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: edit_entry(lines, POSITION, change)))
    assert _first(verifier(tampered)).seq == POSITION


def test_a_flipped_sequence_number_is_found_as_a_gap_at_that_entry(bundle, verifier):
    def change(line: dict) -> None:
        line["entry"]["seq"] = POSITION ^ 1024

    tampered = rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: edit_entry(lines, POSITION, change)))
    problem = _first(verifier(tampered))
    assert problem.seq == POSITION and "missing" in problem.message


@pytest.mark.parametrize("offset", [0, 5, 9, 40, 120, 200, -70, -30, -2, -1])
def test_a_flipped_raw_byte_anywhere_in_an_entry_line_is_found_at_that_line(bundle, verifier, offset):
    def change(lines: list[bytes]) -> list[bytes]:
        line = bytearray(lines[POSITION - 1])
        line[offset] ^= 0x01
        return [*lines[: POSITION - 1], bytes(line), *lines[POSITION:]]

    problem = _first(verifier(rewrite(bundle, "entries.jsonl", edit_lines(change))))
    assert problem.seq == POSITION or f"line {POSITION} " in problem.message, problem


def test_a_deleted_entry_is_found_where_it_was(bundle, verifier):
    tampered = rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: lines[: POSITION - 1] + lines[POSITION:]))
    assert _first(verifier(tampered)).seq == POSITION


def test_two_swapped_entries_are_found_at_the_first(bundle, verifier):
    def swap(lines: list[bytes]) -> list[bytes]:
        lines = list(lines)
        lines[POSITION - 1], lines[22] = lines[22], lines[POSITION - 1]
        return lines

    problem = _first(verifier(rewrite(bundle, "entries.jsonl", edit_lines(swap))))
    assert problem.seq == POSITION


def _forged_after(lines: list[bytes], position: int) -> list[bytes]:
    before = json.loads(lines[position - 1])
    forged = {**before["entry"], "seq": position + 1, "actor": "user:mallory", "prev_hash": before["hash"]}
    return [*lines[:position], canonical(rehashed(forged)), *lines[position:]]


def test_an_inserted_entry_is_found_at_the_number_it_repeats(bundle, verifier):
    # The forged #18 links to #17; the real #18 follows it and repeats its number.
    tampered = rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: _forged_after(lines, POSITION)))
    problem = _first(verifier(tampered))
    assert problem.seq == POSITION + 1 and "second time" in problem.message


def test_an_inserted_entry_with_the_chain_rewritten_fails_the_checkpoint_over_it(bundle, verifier):
    change = edit_lines(lambda lines: rechain(_forged_after(lines, POSITION), POSITION + 2))
    problem = _first(verifier(rewrite(bundle, "entries.jsonl", change)))
    assert problem.checkpoint == 2 and "#11 to #20" in problem.message


def test_a_truncated_tail_is_found_at_the_checkpoint_it_cuts(bundle, verifier):
    problem = _first(verifier(rewrite(bundle, "entries.jsonl", edit_lines(lambda lines: lines[:25]))))
    assert problem.checkpoint == 3 and "truncated" in problem.message


def test_a_replaced_checkpoint_fails_its_signature(bundle, verifier):
    def change(lines: list[bytes]) -> list[bytes]:
        record = json.loads(lines[1])
        record["root"] = "ab" * 32
        return [lines[0], canonical(record), *lines[2:]]

    problem = _first(verifier(rewrite(bundle, "checkpoints.jsonl", edit_lines(change))))
    assert problem.checkpoint == 2 and "signature" in problem.message


def _forge_bundle(path: Path, key: Ed25519PrivateKey, *, replace_keys: bool) -> Path:
    """Rewrite history at #17, rebuild every checkpoint and the manifest, all signed with ``key``."""
    kid = thumbprint(key.public_key())
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    lines = members["entries.jsonl"].splitlines()
    lines = edit_entry(lines, POSITION, lambda line: line["entry"].update(actor="user:mallory"))
    lines[POSITION - 1] = canonical(rehashed(json.loads(lines[POSITION - 1])["entry"]))
    lines = rechain(lines, POSITION + 1)
    hashes = [json.loads(line)["hash"] for line in lines]
    members["entries.jsonl"] = b"".join(line + b"\n" for line in lines)
    checkpoints, previous = [], ""
    for line in members["checkpoints.jsonl"].splitlines():
        record = Checkpoint.parse(json.loads(line))
        frontier = Frontier()
        for value in hashes[: record.size]:
            frontier.push(leaf_hash(value))
        forged = Checkpoint(
            number=record.number,
            size=record.size,
            root=frontier.root().hex(),
            head=hashes[record.size - 1],
            prev_signature=previous,
            issued_at=record.issued_at,
            kid=kid,
            signature="",
            frontier=tuple(frontier.hex_nodes()),
        )
        previous = b64url(key.sign(forged.statement()))
        checkpoints.append(canonical({**forged.as_json(), "signature": previous}))
    members["checkpoints.jsonl"] = b"".join(line + b"\n" for line in checkpoints)
    if replace_keys:
        members["keys.json"] = json.dumps({"keys": [public_jwk(key.public_key())]}).encode()
    manifest = json.loads(members["manifest.json"])
    manifest["files"] = {name: hashlib.sha256(members[name]).hexdigest() for name in manifest["files"]}
    members["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True).encode()
    members["manifest.sig"] = json.dumps(
        {"alg": "EdDSA", "kid": kid, "signature": b64url(key.sign(MANIFEST_HEADER + members["manifest.json"]))}
    ).encode()
    out = path.with_name("forged.zip")
    with zipfile.ZipFile(out, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    return out


def test_checkpoints_signed_with_another_key_are_refused(bundle, verifier):
    forged = _forge_bundle(bundle, Ed25519PrivateKey.generate(), replace_keys=False)
    problem = _first(verifier(forged))
    assert problem.checkpoint == 1 and "unknown key" in problem.message


def test_a_bundle_that_brings_its_own_forged_keys_is_refused_against_pinned_keys(bundle, verifier):
    forged = _forge_bundle(bundle, Ed25519PrivateKey.generate(), replace_keys=True)
    problem = _first(verifier(forged))
    assert problem.checkpoint == 1 and "unknown key" in problem.message


def test_without_pinned_keys_the_standalone_verifier_proves_only_self_consistency(bundle):
    forged = _forge_bundle(bundle, Ed25519PrivateKey.generate(), replace_keys=True)
    result = standalone.verify_bundle(forged)
    assert result.ok and not result.keys_pinned
    assert "pin them with --keys" in result.notes[0]


def test_an_edited_manifest_fails_its_signature(bundle, verifier):
    edited = rewrite(bundle, "manifest.json", lambda data: data.replace(b'"count": 46', b'"count": 45'))
    ok, problems = verifier(edited)
    assert not ok
    assert any("manifest's signature does not verify" in problem.message for problem in problems)


def test_an_unlisted_file_in_the_bundle_is_reported(bundle, verifier):
    out = bundle.with_name("extra.zip")
    out.write_bytes(bundle.read_bytes())
    with zipfile.ZipFile(out, "a") as archive:
        archive.writestr("notes.txt", b"trust me")
    problem = _first(verifier(out))
    assert "notes.txt is in the bundle but not in the manifest" in problem.message


def test_a_file_that_is_not_a_zip_is_reported(tmp_path, verifier):
    path = tmp_path / "junk.zip"
    path.write_bytes(b"not a zip")
    assert "not a readable zip" in _first(verifier(path)).message


# --- CSV -----------------------------------------------------------------------------------------


@pytest.fixture
def csv_bundle(built, tmp_path) -> Path:
    return _copy(built, "csv", tmp_path)


def test_a_clean_csv_export_verifies(csv_bundle, verifier):
    ok, problems = verifier(csv_bundle)
    assert ok, problems


def test_a_changed_csv_payload_is_found_at_its_entry(csv_bundle, verifier):
    def change(data: bytes) -> bytes:
        lines = data.split(b"\n")
        lines[POSITION] = lines[POSITION].replace(b'""n"":' + str(POSITION - 1).encode(), b'""n"":999')
        return b"\n".join(lines)

    assert _first(verifier(rewrite(csv_bundle, "entries.csv", change))).seq == POSITION


# --- filtered exports ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name in FILTERS if name != "nobody"])
def test_a_filtered_export_verifies_on_its_own(built, verifier, name):
    path = built.paths[name]
    ok, problems = verifier(path)
    assert ok, problems
    with zipfile.ZipFile(path) as archive:
        seqs = [json.loads(line)["entry"]["seq"] for line in archive.read("entries.jsonl").splitlines()]
        assert "leaves.txt" in archive.namelist()
    assert seqs == built.expected[name] and seqs


def test_a_time_range_export_starts_at_the_checkpoint_before_it(built):
    with zipfile.ZipFile(built.paths["time range"]) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        leaves = archive.read("leaves.txt").splitlines()
    # Entries #26 to #33: from checkpoint #2 (size 20) to checkpoint #4 (size 40).
    assert manifest["tree"]["from_size"] == 20 and manifest["tree"]["to_size"] == 40
    assert len(leaves) == 20 and manifest["checkpoints"]["from"] == 2


def test_an_export_scoped_to_regions_holds_only_their_entries_and_verifies(built, verifier):
    ok, problems = verifier(built.paths["scoped"])
    assert ok, problems
    with zipfile.ZipFile(built.paths["scoped"]) as archive:
        regions = {json.loads(line)["entry"]["region"] for line in archive.read("entries.jsonl").splitlines()}
    assert regions == {"US", "US-NY", "US-CA"}


def test_an_empty_filtered_export_verifies(built, verifier):
    assert built.expected["nobody"] == []
    ok, problems = verifier(built.paths["nobody"])
    assert ok, problems


@pytest.fixture
def filtered(built, tmp_path) -> Path:
    return _copy(built, "subject", tmp_path)


def test_a_changed_entry_in_a_filtered_export_is_found_at_that_entry(filtered, verifier):
    def change(lines: list[bytes]) -> list[bytes]:
        return edit_entry(lines, 1, lambda line: line["entry"].update(actor="user:mallory"))

    first = json.loads(zipfile.ZipFile(filtered).read("entries.jsonl").splitlines()[0])["entry"]["seq"]
    assert _first(verifier(rewrite(filtered, "entries.jsonl", edit_lines(change)))).seq == first


def test_a_changed_leaf_of_a_left_out_entry_fails_the_checkpoint_over_it(built, filtered, verifier):
    def change(lines: list[bytes]) -> list[bytes]:
        lines = list(lines)
        lines[POSITION - 1] = _flip(lines[POSITION - 1].decode()).encode()
        return lines

    # Entry #17 (subject E1000) is left out; its leaf is in checkpoint #2's range.
    assert POSITION not in built.expected["subject"]
    problem = _first(verifier(rewrite(filtered, "leaves.txt", edit_lines(change))))
    assert problem.checkpoint == 2


def test_an_entry_removed_from_a_filtered_export_is_reported(filtered, verifier):
    problems = verifier(rewrite(filtered, "entries.jsonl", edit_lines(lambda lines: lines[1:])))[1]
    messages = " | ".join(problem.message for problem in problems)
    assert "counts" in messages and "entries.jsonl does not match its SHA-256" in messages


# --- verify_audit EXPORT ---------------------------------------------------------------------------


def test_verify_audit_accepts_a_clean_bundle(bundle, capsys):
    call_command("verify_audit", str(bundle))
    assert "OK: bundle" in capsys.readouterr().out


def test_verify_audit_names_the_first_bad_entry_of_a_bundle(bundle):
    change = edit_lines(lambda lines: edit_entry(lines, POSITION, lambda line: line["entry"].update(subject="E9")))
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit", str(rewrite(bundle, "entries.jsonl", change)))
    assert caught.value.returncode == 1
    assert f"entry #{POSITION}: its content does not match its hash" in str(caught.value)


def test_verify_audit_refuses_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("verify_audit", str(tmp_path / "missing.zip"))


def test_the_json_report_is_machine_readable(bundle, capsys):
    call_command("verify_audit", str(bundle), "--json")
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["entries"] == 46 and report["checkpoints"] == 5


# --- how long entries waited for a signed checkpoint -------------------------------------------------


@pytest.fixture
def realistic_allowance(settings, media):
    """A checkpoint every 5 minutes or 1000 entries, a 30 s poll, 10 minutes of grace: 15.5 minutes."""
    settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES = 5
    settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES = 1000
    settings.CONSENTRY_CHECKPOINT_POLL_SECONDS = 30
    settings.CONSENTRY_CHECKPOINT_GRACE_MINUTES = 10
    settings.CONSENTRY_CHECKPOINT_GRACE_ENTRIES = 100


def _timely_ledger(start: datetime) -> None:
    """Entries #1 to #30 from ``start``, ten seconds apart, each ten under a checkpoint a minute later."""
    for batch in range(3):
        last = write_at(10, start=start + batch * timedelta(minutes=3))
        checkpoint_create(at=last + timedelta(minutes=1))


def test_a_fresh_export_of_a_ledger_signed_in_time_states_its_allowance_and_verifies(realistic_allowance, verifier):
    _timely_ledger(datetime.now(UTC) - timedelta(minutes=30))
    export = build_export(make_user("auditor-timely"))
    with zipfile.ZipFile(export.file.path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["allowance"] == {"seconds": 15 * 60 + 30, "entries": 1100}
    ok, problems = verifier(Path(export.file.path))
    assert ok, problems


def test_an_export_after_checkpoints_were_deleted_and_history_rewritten_fails_at_the_first_entry(
    realistic_allowance, verifier
):
    """The export signs a first checkpoint again over the rewritten log: hours after its entries."""
    start = datetime.now(UTC) - timedelta(hours=3)
    _timely_ledger(start)
    tamper("DELETE FROM audit_auditcheckpoint")
    tamper("UPDATE audit_auditentry SET actor = 'user:mallory' WHERE seq = %s", (POSITION,))
    ledger_rechain(POSITION)
    export = build_export(make_user("auditor-late"))
    assert export.checkpoint.number == 1 and export.checkpoint.size == 31
    problem = _first(verifier(Path(export.file.path)))
    assert problem.seq == 1
    assert f"written at {format_time(start)}, was covered by no signed checkpoint until checkpoint #1" in str(problem)


def test_the_auditor_can_hold_a_bundle_to_their_own_allowance(realistic_allowance):
    _timely_ledger(datetime.now(UTC) - timedelta(minutes=30))
    path = Path(build_export(make_user("auditor-strict")).file.path)
    strict = standalone.Allowance(seconds=30, entries=1100)
    result = standalone.verify_bundle(path, jwks=jwks(), allowance=strict)
    assert not result.ok
    assert result.findings[0].seq == 1
    assert "the allowance is 0.5 minutes or 1100 entries" in str(result.findings[0])

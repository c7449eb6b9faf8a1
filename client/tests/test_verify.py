"""The standalone verifier on bundles and proofs built from the format alone (no Django, no database).

The ledger: entries #1 to #45, checkpoints #1 to #4 at sizes 10, 20, 30 and 45.
Each tamper test names its position; the verifier must report it first.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from consentry_client.merkle import CompactTree, leaf, root_from_path, tree_root
from consentry_client.verify import main, verify_bundle, verify_proof

from .conftest import Signer, canonical, entry_hash, make_checkpoints, make_entries, make_proof, write_bundle

POSITION = 17


def _first(result):
    assert not result.ok, "the tampering went unnoticed"
    return result.findings[0]


@pytest.mark.parametrize("size", range(0, 70))
def test_the_compact_tree_gives_the_rfc_9162_root(size):
    leaves = [leaf(f"{index:064x}") for index in range(size)]
    tree = CompactTree()
    for value in leaves:
        tree.push(value)
    assert tree.root() == tree_root(leaves)


def test_a_clean_bundle_verifies_against_pinned_keys(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    result = verify_bundle(write_bundle(tmp_path / "b.zip", entries, checkpoints, signer), jwks=signer.jwks())
    assert result.ok, result.findings
    assert (result.entries, result.size, result.checkpoints, result.keys_pinned) == (45, 45, 4, True)


def test_a_clean_filtered_bundle_verifies_from_a_later_checkpoint(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    path = write_bundle(tmp_path / "b.zip", entries, checkpoints, signer, selected=[22, 25, 28], from_size=20)
    result = verify_bundle(path, jwks=signer.jwks())
    assert result.ok, result.findings
    assert (result.entries, result.size) == (3, 45)


def _tampered(tmp_path, ledger, signer, change_entries=None, change_checkpoints=None):
    entries, checkpoints = ledger
    entries = [json.loads(json.dumps(line)) for line in entries]
    checkpoints = [dict(cp) for cp in checkpoints]
    if change_entries:
        entries = change_entries(entries)
    if change_checkpoints:
        checkpoints = change_checkpoints(checkpoints)
    # The manifest is re-signed by the real key: only the entry-level checks can catch these.
    return verify_bundle(write_bundle(tmp_path / "t.zip", entries, checkpoints, signer), jwks=signer.jwks())


@pytest.mark.parametrize(
    "field", ["at", "event_type", "actor", "subject", "object_type", "object_id", "region", "prev_hash"]
)
def test_a_changed_field_is_found_at_its_entry(tmp_path, ledger, signer, field):
    def change(entries):
        entry = entries[POSITION - 1]["entry"]
        entry[field] = "1" + entry[field][1:] if entry[field][:1] != "1" else "2" + entry[field][1:]
        return entries

    assert _first(_tampered(tmp_path, ledger, signer, change)).seq == POSITION


def test_a_changed_payload_is_found_at_its_entry(tmp_path, ledger, signer):
    def change(entries):
        entries[POSITION - 1]["entry"]["payload"]["n"] = 0
        return entries

    assert _first(_tampered(tmp_path, ledger, signer, change)).seq == POSITION


def test_a_changed_entry_with_its_hash_recomputed_breaks_the_link_to_the_next(tmp_path, ledger, signer):
    def change(entries):
        line = entries[POSITION - 1]
        line["entry"]["actor"] = "user:mallory"
        line["hash"] = entry_hash(line["entry"])
        return entries

    assert _first(_tampered(tmp_path, ledger, signer, change)).seq == POSITION + 1


def test_an_entry_line_written_out_of_canonical_form_is_reported_not_raised(tmp_path, ledger, signer):
    # The same entry re-serialised with spaces: not the exported form, whose bytes the hash covers.
    def render(line):
        return json.dumps(line).encode() if line["entry"]["seq"] == POSITION else canonical(line)

    entries, checkpoints = ledger
    bundle = write_bundle(tmp_path / "t.zip", entries, checkpoints, signer, render=render)
    result = verify_bundle(bundle, jwks=signer.jwks())
    finding = _first(result)
    assert finding.message == f"line {POSITION} of the entries file is not an exported audit entry"


def test_a_deleted_entry_is_found_where_it_was(tmp_path, ledger, signer):
    finding = _first(_tampered(tmp_path, ledger, signer, lambda e: e[: POSITION - 1] + e[POSITION:]))
    assert finding.seq == POSITION and "missing" in finding.message


def test_two_swapped_entries_are_found_at_the_first(tmp_path, ledger, signer):
    def swap(entries):
        entries[POSITION - 1], entries[29] = entries[29], entries[POSITION - 1]
        return entries

    assert _first(_tampered(tmp_path, ledger, signer, swap)).seq == POSITION


def test_an_inserted_entry_is_found_at_the_number_it_repeats(tmp_path, ledger, signer):
    def insert(entries):
        forged = {**entries[POSITION - 1]["entry"], "seq": POSITION + 1, "prev_hash": entries[POSITION - 1]["hash"]}
        return [*entries[:POSITION], {"entry": forged, "hash": entry_hash(forged)}, *entries[POSITION:]]

    finding = _first(_tampered(tmp_path, ledger, signer, insert))
    assert finding.seq == POSITION + 1 and "second time" in finding.message


def test_a_truncated_tail_is_found_at_the_checkpoint_it_cuts(tmp_path, ledger, signer):
    finding = _first(_tampered(tmp_path, ledger, signer, lambda e: e[:25]))
    assert finding.checkpoint == 3 and "truncated" in finding.message


def test_a_replaced_checkpoint_fails_its_signature(tmp_path, ledger, signer):
    def change(checkpoints):
        checkpoints[1] = {**checkpoints[1], "root": "ab" * 32}
        return checkpoints

    finding = _first(_tampered(tmp_path, ledger, signer, change_checkpoints=change))
    assert finding.checkpoint == 2 and "signature" in finding.message


def test_a_bundle_signed_with_another_key_is_refused_against_pinned_keys(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    path = write_bundle(tmp_path / "b.zip", entries, checkpoints, signer)
    result = verify_bundle(path, jwks=Signer().jwks())
    assert _first(result).checkpoint == 1
    assert any("manifest's signature" in str(finding) for finding in result.findings)


def test_without_pinned_keys_the_bundle_is_checked_against_its_own_and_says_so(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    result = verify_bundle(write_bundle(tmp_path / "b.zip", entries, checkpoints, signer))
    assert result.ok and not result.keys_pinned
    assert "pin them with --keys" in result.notes[0]


def test_a_changed_leaf_in_a_filtered_bundle_fails_the_checkpoint_over_it(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    path = write_bundle(tmp_path / "b.zip", entries, checkpoints, signer, selected=[5, 40])
    out = tmp_path / "t.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "leaves.txt":
                lines = data.splitlines()
                lines[POSITION - 1] = b"0" * 64
                data = b"".join(line + b"\n" for line in lines)
            target.writestr(name, data)
    finding = _first(verify_bundle(out, jwks=signer.jwks()))
    assert finding.checkpoint == 2


# --- proofs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seq", [1, 2, 17, 30, 44, 45])
def test_an_inclusion_proof_verifies_against_its_signed_checkpoint(ledger, signer, seq):
    entries, checkpoints = ledger
    result = verify_proof(make_proof(entries, checkpoints[-1], seq), jwks=signer.jwks())
    assert result.ok, result.findings
    assert f"entry #{seq} is entry {seq} of the 45 entries" in result.notes[0]


def test_the_audit_path_builder_agrees_with_the_rfc_verification_algorithm(ledger):
    entries, _ = ledger
    hashes = [line["hash"] for line in entries]
    root = tree_root([leaf(value) for value in hashes[:13]])
    for index in range(13):
        path = [bytes.fromhex(value) for value in make_proof(entries, {"size": 13}, index + 1)["audit_path"]]
        assert root_from_path(index, 13, leaf(hashes[index]), path) == root


def _proof_finding(ledger, signer, change, jwks=None):
    entries, checkpoints = ledger
    proof = json.loads(json.dumps(make_proof(entries, checkpoints[-1], POSITION)))
    change(proof)
    return _first(verify_proof(proof, jwks=jwks or signer.jwks()))


def test_a_proof_of_a_changed_entry_fails(ledger, signer):
    finding = _proof_finding(ledger, signer, lambda proof: proof["entry"].update(subject="E9999"))
    assert finding.seq == POSITION and "content" in finding.message


def test_a_proof_with_a_changed_path_fails(ledger, signer):
    finding = _proof_finding(ledger, signer, lambda proof: proof["audit_path"].__setitem__(0, "00" * 32))
    assert "audit path" in finding.message


def test_a_proof_for_another_tree_size_fails(ledger, signer):
    finding = _proof_finding(ledger, signer, lambda proof: proof.update(tree_size=44))
    assert "tree of 44" in finding.message


def test_a_proof_whose_checkpoint_was_re_rooted_fails(ledger, signer):
    def change(proof):
        proof["checkpoint"]["root"] = "11" * 32

    assert "audit path" in _proof_finding(ledger, signer, change).message


def test_a_proof_signed_by_an_unknown_key_fails(ledger, signer):
    finding = _proof_finding(ledger, signer, lambda proof: None, jwks=Signer().jwks())
    assert "unknown key" in finding.message


def test_a_malformed_proof_is_reported_not_raised(signer):
    assert "not a consentry-audit-inclusion-proof/v1" in _first(verify_proof({"x": 1}, jwks=signer.jwks())).message
    proof = {"format": "consentry-audit-inclusion-proof/v1", "entry": {}}
    assert "malformed" in _first(verify_proof(proof, jwks=signer.jwks())).message


# --- command line --------------------------------------------------------------------------------


def test_the_command_exits_0_1_or_2(tmp_path, ledger, signer, capsys):
    entries, checkpoints = ledger
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(signer.jwks()))
    good = write_bundle(tmp_path / "good.zip", entries, checkpoints, signer)
    assert main(["bundle", str(good), "--keys", str(keys)]) == 0
    assert "OK: bundle verified: 45 entries" in capsys.readouterr().out
    bad = write_bundle(tmp_path / "bad.zip", entries[:30], checkpoints, signer)
    assert main(["bundle", str(bad), "--keys", str(keys)]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert main(["bundle", str(tmp_path / "missing.zip")]) == 2


def test_the_command_verifies_a_proof_file_and_prints_json(tmp_path, ledger, signer, capsys):
    entries, checkpoints = ledger
    keys, proof = tmp_path / "jwks.json", tmp_path / "proof.json"
    keys.write_text(json.dumps(signer.jwks()))
    proof.write_text(json.dumps(make_proof(entries, checkpoints[-1], 5)))
    assert main(["proof", str(proof), "--keys", str(keys), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_a_proof_needs_pinned_keys(tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["proof", str(tmp_path / "p.json")])
    assert caught.value.code == 2


def test_the_verifier_imports_nothing_but_cryptography_and_the_standard_library():
    probe = (
        "import sys, consentry_client.verify\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'jwt', 'psycopg', 'rest_framework'})\n"
        "print(bad)\n"
    )
    client_root = Path(__file__).resolve().parents[1]
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=client_root, env={}
    )
    assert output.stdout.strip() == "[]"


def test_json_reports_carry_the_first_bad_entry(tmp_path, ledger, signer):
    entries, checkpoints = ledger
    broken = [dict(line) for line in entries]
    broken[POSITION - 1] = {**broken[POSITION - 1], "hash": "0" * 64}
    result = verify_bundle(write_bundle(tmp_path / "b.zip", broken, checkpoints, signer), jwks=signer.jwks())
    assert result.as_json()["first_bad_entry"] == POSITION
    assert canonical({"b": 1, "a": 2}) == b'{"a":2,"b":1}'


# --- how long entries waited for a signed checkpoint -------------------------------------------------

# Entry #n is written at 09:00:00 + n seconds on 2026-03-01; the deployment promised 15.5 minutes.
ALLOWANCE = {"allowance": {"seconds": 930, "entries": 1100}, "requested_at": "2026-03-01T09:02:00.000000Z"}


def _at(minute: int, second: int = 0) -> str:
    return f"2026-03-01T{9 + minute // 60:02d}:{minute % 60:02d}:{second:02d}.000000Z"


def _timed_bundle(tmp_path, signer, *, sizes, times, to_size=None, extra=ALLOWANCE):
    entries = make_entries(45)
    checkpoints = make_checkpoints(entries, sizes, signer, times=times)
    return write_bundle(tmp_path / "b.zip", entries, checkpoints, signer, to_size=to_size, manifest_extra=extra)


def test_a_bundle_whose_checkpoints_came_in_time_verifies(tmp_path, signer):
    path = _timed_bundle(tmp_path, signer, sizes=[10, 20, 30, 45], times=[_at(1), _at(1, 5), _at(1, 10), _at(1, 20)])
    result = verify_bundle(path, jwks=signer.jwks())
    assert result.ok, result.findings
    assert result.notes == []


def test_a_checkpoint_signed_past_the_allowance_fails_at_the_first_entry_it_covers(tmp_path, signer):
    """Checkpoint #3 was deleted and signed again an hour later, over entries #21 to #30."""
    path = _timed_bundle(tmp_path, signer, sizes=[10, 20, 30, 45], times=[_at(1), _at(1, 5), _at(60), _at(61)])
    problem = _first(verify_bundle(path, jwks=signer.jwks()))
    assert problem.seq == 21
    assert "written at 2026-03-01T09:00:21.000000Z, was covered by no signed checkpoint until checkpoint #3" in (
        problem.message
    )
    assert "59.6 minutes later (the allowance is 15.5 minutes or 1100 entries)" in problem.message


def test_a_checkpoint_over_more_entries_than_the_allowance_fails(tmp_path, signer):
    extra = {**ALLOWANCE, "allowance": {"seconds": 930, "entries": 12}}
    times = [_at(1), _at(1, 5), _at(1, 10), _at(1, 20)]
    path = _timed_bundle(tmp_path, signer, sizes=[10, 20, 30, 45], times=times, extra=extra)
    problem = _first(verify_bundle(path, jwks=signer.jwks()))
    assert problem.seq == 31
    assert "15 entries later" in problem.message


def test_entries_past_the_last_checkpoint_are_young_against_the_exports_signed_time(tmp_path, signer):
    path = _timed_bundle(tmp_path, signer, sizes=[10, 20, 30], times=[_at(1), _at(1, 5), _at(1, 10)], to_size=45)
    result = verify_bundle(path, jwks=signer.jwks())
    assert result.ok, result.findings
    assert result.notes[0].startswith("not yet covered: 15 entries (young): entries #31 to #45")


def test_entries_past_the_last_checkpoint_older_than_the_allowance_fail(tmp_path, signer):
    extra = {**ALLOWANCE, "requested_at": _at(60)}
    times = [_at(1), _at(1, 5), _at(1, 10)]
    path = _timed_bundle(tmp_path, signer, sizes=[10, 20, 30], times=times, to_size=45, extra=extra)
    problem = _first(verify_bundle(path, jwks=signer.jwks()))
    assert problem.seq == 31
    assert "was covered by no signed checkpoint until the export (2026-03-01T10:00:00.000000Z)" in problem.message


def test_a_checkpoint_deleted_from_the_middle_of_a_bundle_breaks_the_chain(tmp_path, signer):
    entries = make_entries(45)
    checkpoints = make_checkpoints(entries, [10, 20, 30, 45], signer, times=[_at(1), _at(1, 5), _at(1, 10), _at(1, 20)])
    del checkpoints[1]
    path = write_bundle(tmp_path / "b.zip", entries, checkpoints, signer, manifest_extra=ALLOWANCE)
    problem = _first(verify_bundle(path, jwks=signer.jwks()))
    assert problem.checkpoint == 3
    assert "a checkpoint is missing" in problem.message


def test_without_a_stated_allowance_the_bundle_says_so_and_the_auditor_can_pass_one(tmp_path, ledger, signer, capsys):
    entries, checkpoints = ledger
    path = write_bundle(tmp_path / "b.zip", entries, checkpoints, signer)
    result = verify_bundle(path, jwks=signer.jwks())
    assert result.ok
    assert any("states no checkpoint allowance" in note for note in result.notes)
    (tmp_path / "jwks.json").write_text(json.dumps(signer.jwks()))
    keys = ["--keys", str(tmp_path / "jwks.json")]
    # The ledger's checkpoints were signed about fifteen hours after their entries.
    assert main(["bundle", str(path), *keys, "--allowance-minutes", "15.5", "--allowance-entries", "1100"]) == 1
    assert "entry #1: written at 2026-03-01T09:00:01.000000Z" in capsys.readouterr().out
    assert main(["bundle", str(path), *keys, "--allowance-minutes", "1440", "--allowance-entries", "1100"]) == 0

"""The two things ``verify_audit`` checks: the live ledger, and an export bundle.

Both feed ``audit.verification``; both trust only this deployment's audit
keys (current and retired), never keys shipped inside a bundle. The
standalone verifier in ``client/`` implements the same checks for auditors
without Django or database access.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any

from audit.bundle import BUNDLE_FORMAT, CSV_HEADER
from audit.chain import HASHED_FIELDS, format_time, line_hash, stored_line
from audit.models import AuditCheckpoint, AuditEntry, AuditHead
from audit.statements import MANIFEST_HEADER, audit_public_key, signature_valid
from audit.verification import (
    CheckpointRecord,
    Entry,
    KeyLookup,
    Problem,
    Report,
    TamperDetected,
    TreeWalker,
    jsonl_entry,
    run,
    tampered,
    walk_complete,
    walk_jsonl_complete,
    walk_with_leaves,
)

CHUNK = 5000


def stored_entries(*, after: int = 0, upto: int | None = None) -> Iterator[Entry]:
    """Stored entries in order, each rehashed from its content."""
    entries = AuditEntry.objects.filter(seq__gt=after).order_by("seq")
    if upto is not None:
        entries = entries.filter(seq__lte=upto)
    with closing(entries.values_list(*HASHED_FIELDS, "hash").iterator(chunk_size=CHUNK)) as rows:
        for row in rows:
            seq = row[0]
            document = dict(zip(HASHED_FIELDS, (seq, format_time(row[1]), *row[2:10]), strict=True))
            yield seq, row[9], row[10], line_hash(stored_line(document)) == row[10]


def verify_live() -> Report:
    """Check the whole ledger in the database: entries, chain, every checkpoint, the head."""
    report = Report()

    def check() -> None:
        checkpoints = [CheckpointRecord.from_model(cp) for cp in AuditCheckpoint.objects.order_by("number")]
        walker = TreeWalker(checkpoints, key_for=audit_public_key)
        try:
            # closing(): the server-side cursor is released at once when a problem stops the walk.
            with closing(stored_entries()) as entries:
                walk_complete(entries, walker, report)
            walker.finish()
        finally:
            report.size = walker.size
            report.checkpoints = walker.checked
        head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, walker.last_entry_hash)
        if head[0] != walker.size or head[1] != walker.last_entry_hash:
            raise tampered(
                f"the chain head names entry #{head[0]} but the log ends at entry #{walker.size}: "
                "entries at the tail were removed or added, or the head was altered"
            )

    return run(report, check)


def _jsonl_entries(stream: IO[bytes]) -> Iterator[Entry]:
    for position, raw in enumerate(stream, start=1):
        yield jsonl_entry(raw[:-1] if raw.endswith(b"\n") else raw, position)


def _csv_entries(stream: IO[bytes]) -> Iterator[Entry]:
    rows = csv.reader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))
    if tuple(next(rows, ())) != CSV_HEADER:
        raise tampered("entries.csv does not start with the expected header")
    for position, row in enumerate(rows, start=2):
        try:
            seq = int(row[0])
            document = dict(zip(HASHED_FIELDS, (seq, *row[1:8], json.loads(row[8]), row[9]), strict=True))
            stored = row[10]
        except (ValueError, IndexError) as exc:
            raise tampered(f"line {position} of entries.csv is not an audit entry") from exc
        yield seq, document["prev_hash"], stored, line_hash(stored_line(document)) == stored


def _leaves(stream: IO[bytes]) -> Iterator[str]:
    for raw in stream:
        yield raw.rstrip(b"\n").decode("ascii", errors="replace")


def _file_problems(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> list[Problem]:
    problems = []
    listed = manifest.get("files") or {}
    present = set(archive.namelist())
    for name, expected in sorted(listed.items()):
        if name not in present:
            problems.append(Problem(f"{name} is listed in the manifest but missing from the bundle"))
            continue
        digest = hashlib.sha256()
        with archive.open(name) as member:
            for block in iter(lambda member=member: member.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected:
            problems.append(Problem(f"{name} does not match its SHA-256 in the signed manifest"))
    for name in sorted(present - set(listed) - {"manifest.json", "manifest.sig"}):
        problems.append(Problem(f"{name} is in the bundle but not in the manifest"))
    return problems


def _manifest(archive: zipfile.ZipFile, key_for: KeyLookup) -> tuple[dict[str, Any], list[Problem]]:
    try:
        raw = archive.read("manifest.json")
        manifest = json.loads(raw)
        signature = json.loads(archive.read("manifest.sig"))
    except (KeyError, ValueError) as exc:
        raise tampered("the bundle has no readable manifest.json and manifest.sig") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise tampered(f"the manifest is not a {BUNDLE_FORMAT} manifest")
    problems = []
    kid = str(signature.get("kid", "")) if isinstance(signature, dict) else ""
    value = str(signature.get("signature", "")) if isinstance(signature, dict) else ""
    if not signature_valid(MANIFEST_HEADER + raw, value, key_for(kid)):
        problems.append(Problem(f"the manifest's signature does not verify with a known audit key (kid {kid!r})"))
    return manifest, problems


def verify_bundle(source: str | Path | IO[bytes], *, key_for: KeyLookup = audit_public_key) -> Report:
    """Check an export bundle: the first bad entry first, then the signed manifest and file hashes."""
    report = Report()

    def check() -> None:
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise tampered(f"the bundle is not a readable zip file ({exc})") from exc
        with archive:
            manifest, manifest_problems = _manifest(archive, key_for)
            try:
                _walk_bundle(archive, manifest, key_for, report)
            except TamperDetected as exc:
                report.problems.append(exc.problem)
            report.problems.extend(manifest_problems)
            report.problems.extend(_file_problems(archive, manifest))

    return run(report, check)


def _walk_bundle(archive: zipfile.ZipFile, manifest: dict[str, Any], key_for: KeyLookup, report: Report) -> None:
    try:
        tree = manifest["tree"]
        from_size, to_size = int(tree["from_size"]), int(tree["to_size"])
        entries_file = manifest["entries"]
        entries_name, entries_format, count = entries_file["file"], entries_file["format"], int(entries_file["count"])
        leaves_name = tree.get("leaves")
    except (KeyError, TypeError, ValueError) as exc:
        raise tampered(f"the manifest lacks the tree range or entries file ({exc})") from exc
    try:
        with archive.open("checkpoints.jsonl") as stream:
            checkpoints = [CheckpointRecord.from_json(json.loads(line)) for line in stream if line.strip()]
    except (KeyError, ValueError) as exc:
        raise tampered("checkpoints.jsonl is missing or not JSON Lines") from exc
    start = None
    if from_size:
        start = next((cp for cp in checkpoints if cp.size == from_size), None)
        if start is None:
            raise tampered(f"no checkpoint in the bundle covers the starting size {from_size}")
    walker = TreeWalker(checkpoints, key_for=key_for, start=start)
    try:
        with archive.open(entries_name) as stream:
            entries = _csv_entries(stream) if entries_format == "csv" else _jsonl_entries(stream)
            if not leaves_name and entries_format != "csv":
                walk_jsonl_complete(stream, walker, report)
            elif leaves_name:
                with archive.open(leaves_name) as leaves:
                    walk_with_leaves(entries, _leaves(leaves), walker, report)
            else:
                walk_complete(entries, walker, report)
        walker.finish()
    except KeyError as exc:
        raise tampered(f"a file the manifest names is missing ({exc})") from exc
    finally:
        report.size = walker.size
        report.checkpoints = walker.checked
    if walker.size != to_size:
        raise tampered(f"the bundle should cover entries up to #{to_size} but its tree ends at #{walker.size}")
    if report.entries != count:
        raise tampered(f"the manifest counts {count} entries but the bundle holds {report.entries}")

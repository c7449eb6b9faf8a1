"""Export bundles: a zip an auditor verifies offline with nothing but the audit public key.

Format ``consentry-audit-export/v1``. Files:

- ``entries.jsonl``: one entry per line, ``{"entry": {…}, "hash": "…"}`` in
  canonical JSON, so the entry's bytes are exactly the canonical content
  its hash covers (``audit.chain``) and a verifier hashes them in place.
  Or ``entries.csv``: a header,
  then ``seq,at,event_type,actor,subject,object_type,object_id,region,
  payload,prev_hash,hash`` with the payload as canonical JSON text.
- ``checkpoints.jsonl``: the signed checkpoints from the start of the tree
  range to the one covering the last entry, each with its frontier.
- ``leaves.txt``: only when the entries are a subset (filters, or an
  auditor scoped to some regions): the hash of *every* entry in the tree
  range, one hex hash per line. The verifier rebuilds each checkpoint's
  root from it and checks every exported entry against its leaf and its
  predecessor's, so a filtered export verifies on its own while revealing
  only hashes of the entries it leaves out.
- ``keys.json``: the audit ring's public keys (JWKS). A careful auditor pins
  the keys from ``/.well-known/jwks.json`` instead of trusting these.
- ``manifest.json``: what the bundle holds (filters, scope, tree range,
  counts), the deployment's checkpoint allowance (how long and for how many
  entries an entry may wait for its first signed checkpoint, which the
  verifier holds every checkpoint to) and the SHA-256 of every file above;
  ``manifest.sig``: the Ed25519 signature over ``MANIFEST_HEADER`` + the
  manifest's bytes.

The bundle's end is signed: ``tree.to_size`` is a checkpoint the bundle
carries, and ``requested_at`` is the time any entry past its last checkpoint
would be measured against. The tree range runs from ``from_size`` (0, or the
last checkpoint before the first exported entry, whose frontier seeds the walk) to ``to_size`` (the first
checkpoint at or after the last exported entry), so a narrow time range does
not drag the whole log along. Writing streams every file; memory stays flat.
The same export, rebuilt, gives the same bytes (fixed zip times, deterministic
signatures), which is what lets a killed job simply start again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import IO, Any

from consentry_client.verify import BUNDLE_FORMAT, LINE_HASH_KEY, LINE_HEAD, not_intact
from consentry_client.verify import CSV_COLUMNS as CSV_HEADER
from django.db.models import Count, Max, Min

from audit.access import AuditAccess
from audit.chain import HASHED_FIELDS, entry_line, format_time, line_hash
from audit.models import AuditCheckpoint, AuditEntry, AuditExport, ExportFormat
from audit.selectors import EntryFilters, entries_visible
from audit.statements import MANIFEST_HEADER, audit_jwks, current_kid, sign
from audit.verifiers import checkpoint_allowance

ENTRIES_FILE = {ExportFormat.JSONL: "entries.jsonl", ExportFormat.CSV: "entries.csv"}
CHUNK = 2000


def jsonl_line(content: bytes, entry_hash: str) -> bytes:
    """One export line for an entry's canonical content and its hash (no newline), as the verifier frames it."""
    return LINE_HEAD + content + LINE_HASH_KEY + entry_hash.encode() + b'"}'


README = """Consentry audit export ({format})

Verify it offline, without trusting the operator:

    pip install ./client            # or: pip install consentry-client
    curl -o jwks.json https://<consentry>/.well-known/jwks.json
    consentry-verify bundle THIS.zip --keys jwks.json

or, with Django and the same keys: python manage.py verify_audit THIS.zip

manifest.json lists every file with its SHA-256 and is signed (manifest.sig)
with the audit key named by its kid. See audit/bundle.py for the format.
"""


@dataclass(frozen=True, slots=True)
class BundleResult:
    entries: int
    from_size: int
    to_size: int


class _HashingWriter(io.RawIOBase):
    """Passes bytes through to a zip member while hashing them for the manifest."""

    def __init__(self, target: IO[bytes]):
        self.target = target
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self.target.write(view)
        return len(view)


class _Progress:
    """Reports whole percents as work units pass; the caller stores them."""

    def __init__(self, total: int, report: Callable[[int], None]):
        self.total = max(total, 1)
        self.done = 0
        self.percent = 0
        self.report = report

    def step(self, units: int = 1) -> None:
        self.done += units
        # 99 at most: 100 means the bundle is stored and the job marked done.
        percent = min(99, self.done * 100 // self.total)
        if percent > self.percent:
            self.percent = percent
            self.report(percent)


def _entry_rows(entries) -> Generator[tuple[Any, ...], None, None]:
    """Stored rows in HASHED_FIELDS order plus the hash, ``at`` as canonical text."""
    with closing(entries.values_list(*HASHED_FIELDS, "hash").iterator(chunk_size=CHUNK)) as rows:
        for row in rows:
            yield (row[0], format_time(row[1]), *row[2:])


def _checked_line(row: tuple[Any, ...]) -> bytes:
    """The entry's canonical line; a stored entry that no longer matches its hash stops the export."""
    line = entry_line(dict(zip(HASHED_FIELDS, row[:10], strict=True)))
    if line_hash(line) != row[10]:
        raise not_intact("its content does not match its stored hash: the ledger was altered", seq=row[0])
    return line


def tree_range(
    *, covering: AuditCheckpoint, first_seq: int | None, last_seq: int | None, complete: bool
) -> tuple[AuditCheckpoint | None, AuditCheckpoint]:
    """The checkpoints a bundle starts from (None: the empty log) and ends at."""
    if complete:
        return None, covering
    if first_seq is None or last_seq is None:
        return covering, covering
    start = AuditCheckpoint.objects.filter(size__lt=first_seq).order_by("-size").first()
    end = AuditCheckpoint.objects.filter(size__gte=last_seq, size__lte=covering.size).order_by("size").first()
    return start, end or covering


def write_bundle(*, export: AuditExport, out: IO[bytes], on_progress: Callable[[int], None]) -> BundleResult:
    """Write the export's bundle to ``out`` (a seekable binary file)."""
    covering = export.checkpoint
    if covering is None:
        raise ValueError("an export is built up to a signed checkpoint")
    filters = EntryFilters.from_json(export.filters)
    access = AuditAccess.from_scope_json(export.scope)
    complete = filters.empty and access.all_regions
    entries = entries_visible(access=access, filters=filters).filter(seq__lte=covering.size)
    span = entries.aggregate(first=Min("seq"), last=Max("seq"), count=Count("seq"))
    start, end = tree_range(covering=covering, first_seq=span["first"], last_seq=span["last"], complete=complete)
    from_size = start.size if start else 0
    entries = entries.filter(seq__lte=end.size)
    count = end.size if complete else entries.count()
    progress = _Progress(count + (0 if complete else end.size - from_size), on_progress)
    stamp = export.requested_at.utctimetuple()[:6]
    hashes: dict[str, str] = {}

    @contextmanager
    def member(archive: zipfile.ZipFile, name: str) -> Iterator[_HashingWriter]:
        info = zipfile.ZipInfo(name, date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as raw:
            writer = _HashingWriter(raw)
            yield writer
        hashes[name] = writer.digest.hexdigest()

    with zipfile.ZipFile(out, "w") as archive:
        entries_name = ENTRIES_FILE[ExportFormat(export.format)]
        # closing(): a server-side cursor must be closed before its transaction ends, even on an error.
        with member(archive, entries_name) as writer, closing(_entry_rows(entries)) as rows:
            _write_entries(writer, rows, export.format, progress)
        with member(archive, "checkpoints.jsonl") as writer:
            numbers = {"number__gte": start.number if start else 1, "number__lte": end.number}
            checkpoints = AuditCheckpoint.objects.filter(**numbers).order_by("number")
            for checkpoint in checkpoints:
                record = checkpoint.record().as_json()
                writer.write(json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        if not complete:
            with member(archive, "leaves.txt") as writer:
                leaves = AuditEntry.objects.filter(seq__gt=from_size, seq__lte=end.size).order_by("seq")
                expected = from_size + 1
                # QuerySet.iterator() returns a generator, which closing() needs; its stubs say only Iterator.
                hashes_iterator = leaves.values_list("seq", "hash").iterator(chunk_size=CHUNK * 5)
                with closing(hashes_iterator) as leaf_rows:  # type: ignore[type-var]
                    for seq, entry_hash in leaf_rows:
                        if seq != expected:
                            raise not_intact("is missing from the ledger", seq=expected)
                        writer.write(entry_hash.encode() + b"\n")
                        expected += 1
                        progress.step()
        with member(archive, "keys.json") as writer:
            writer.write(json.dumps(audit_jwks(), indent=2, sort_keys=True).encode() + b"\n")
        with member(archive, "README.txt") as writer:
            writer.write(README.format(format=BUNDLE_FORMAT).encode())
        manifest = {
            "format": BUNDLE_FORMAT,
            "export_id": str(export.id),
            "requested_at": format_time(export.requested_at),
            "filters": export.filters,
            "scope": export.scope,
            "entries": {"file": entries_name, "format": export.format, "count": count},
            "tree": {"from_size": from_size, "to_size": end.size, "leaves": None if complete else "leaves.txt"},
            "checkpoints": {"file": "checkpoints.jsonl", "from": start.number if start else 1, "to": end.number},
            "keys": "keys.json",
            "allowance": checkpoint_allowance().as_json(),
            "files": hashes,
        }
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
        kid = current_kid()
        signature = {"alg": "EdDSA", "kid": kid, "signature": sign(MANIFEST_HEADER + manifest_bytes)}
        for name, data in (
            ("manifest.json", manifest_bytes),
            ("manifest.sig", json.dumps(signature, indent=2, sort_keys=True).encode() + b"\n"),
        ):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return BundleResult(entries=count, from_size=from_size, to_size=end.size)


def _write_entries(writer: _HashingWriter, rows: Iterator[tuple[Any, ...]], format: str, progress: _Progress) -> None:
    if format == ExportFormat.JSONL:
        buffered = io.BufferedWriter(writer, buffer_size=1 << 16)
        for row in rows:
            buffered.write(jsonl_line(_checked_line(row), row[10]) + b"\n")
            progress.step()
        buffered.flush()
        buffered.detach()
        return
    text = io.TextIOWrapper(io.BufferedWriter(writer, buffer_size=1 << 16), encoding="utf-8", newline="")
    table = csv.writer(text, lineterminator="\n")
    table.writerow(CSV_HEADER)
    for row in rows:
        _checked_line(row)
        table.writerow((*row[:8], entry_line(row[8]).decode(), row[9], row[10]))
        progress.step()
    text.flush()
    text.detach().detach()


__all__ = ("BUNDLE_FORMAT", "CSV_HEADER", "BundleResult", "write_bundle")

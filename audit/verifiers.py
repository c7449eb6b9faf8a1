"""The two things ``verify_audit`` checks: the live ledger, and an export bundle.

The checks are the standalone verifier's (``consentry_client.verify``), the
code auditors run offline, so the server and an auditor cannot disagree on
what intact means. In the order a problem is reported (the first one wins):
entry numbers run 1, 2, 3, … with no gap, repeat or swap; each entry's
content hashes to its hash; each ``prev_hash`` is the previous entry's hash;
at each checkpoint's size its signature, number, ``previous`` signature,
time, chain head and Merkle root; no checkpoint beyond the last entry.

Here is only what needs Django: streaming entries and checkpoints out of the
database as the plain records the shared walk reads (memory stays flat: a
server-side cursor and an RFC 9162 frontier), the live chain head, trusting
this deployment's audit keys only (current and retired, never keys a bundle
carries), and the summary ``ledger_verify`` puts on the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import IO, Any

from consentry_client import verify as shared
from consentry_client.verify import Entry, Result, Walk, not_intact, run_checks, walk_all

from audit.chain import HASHED_FIELDS, entry_line, format_time, line_hash
from audit.models import AuditCheckpoint, AuditEntry, AuditHead
from audit.statements import audit_jwks, audit_public_keys

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
            yield seq, row[9], row[10], line_hash(entry_line(document)) == row[10]


def verify_live() -> Result:
    """Check the whole ledger in the database: entries, chain, every checkpoint, the head."""
    result = Result(kind="ledger")

    def check() -> None:
        checkpoints = [checkpoint.record() for checkpoint in AuditCheckpoint.objects.order_by("number")]
        walk = Walk(checkpoints, audit_public_keys(), None)
        try:
            # closing(): the server-side cursor is released at once when a problem stops the walk.
            with closing(stored_entries()) as entries:
                walk_all(entries, walk, result)
            walk.finish()
        finally:
            result.size = walk.tree.size
            result.checkpoints = walk.checked
        head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, walk.head)
        if head[0] != walk.tree.size or head[1] != walk.head:
            raise not_intact(
                f"the chain head names entry #{head[0]} but the log ends at entry #{walk.tree.size}: "
                "entries at the tail were removed or added, or the head was altered"
            )

    return run_checks(result, check)


def verify_bundle(source: str | Path | IO[bytes]) -> Result:
    """Check an export bundle against this deployment's audit keys: the first bad entry first, then the manifest."""
    return shared.verify_bundle(source, jwks=audit_jwks())


def summary(result: Result) -> dict[str, Any]:
    """A verification's outcome as ``ledger_verify`` records it on the ledger and ``verify_audit --json`` prints it."""
    return {
        "ok": result.ok,
        "entries": result.entries,
        "size": result.size,
        "checkpoints": result.checkpoints,
        "problems": [str(finding) for finding in result.findings],
    }

"""The two things ``verify_audit`` checks: the live ledger, and an export bundle.

The checks are the standalone verifier's (``consentry_client.verify``), the
code auditors run offline, so the server and an auditor cannot disagree on
what intact means. In the order a problem is reported (the first one wins):
entry numbers run 1, 2, 3, … with no gap, repeat or swap; each entry's
content hashes to its hash; each ``prev_hash`` is the previous entry's hash;
at each checkpoint's size its signature, number, ``previous`` signature,
time, chain head and Merkle root, each stored Merkle node against the one
rebuilt from the entries, and that the checkpoint came within the allowance
(``checkpoint_allowance``); no checkpoint beyond the last entry; the entries
after the last checkpoint young enough, measured against the verifier's
clock; the latest checkpoint's root rebuilt from the stored nodes, the way
inclusion proofs are.

Here is only what needs Django: streaming entries and checkpoints out of the
database as the plain records the shared walk reads (memory stays flat: a
server-side cursor and an RFC 9162 frontier), the live chain head, trusting
this deployment's audit keys only (current and retired, never keys a bundle
carries), and the summary ``ledger_verify`` puts on the ledger.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import closing
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import IO, Any

from consentry_client import verify as shared
from consentry_client.merkle import CompactTree
from consentry_client.verify import Allowance, Entry, Result, Walk, not_intact, run_checks, walk_all
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from audit.chain import HASHED_FIELDS, entry_line, format_time, line_hash
from audit.merkle import node_hash
from audit.models import TREE_NODE_LEVEL, AuditCheckpoint, AuditEntry, AuditHead, AuditTreeNode
from audit.proofs import stored_root
from audit.statements import audit_jwks, audit_public_keys

CHUNK = 5000
_BLOCK = (1 << TREE_NODE_LEVEL) - 1


def stored_entries(*, after: int = 0, upto: int | None = None) -> Generator[Entry, None, None]:
    """Stored entries in order, each rehashed from its content."""
    entries = AuditEntry.objects.filter(seq__gt=after).order_by("seq")
    if upto is not None:
        entries = entries.filter(seq__lte=upto)
    # QuerySet.iterator() returns a generator, which closing() needs; its stubs say only Iterator.
    rows_iterator = entries.values_list(*HASHED_FIELDS, "hash").iterator(chunk_size=CHUNK)
    with closing(rows_iterator) as rows:  # type: ignore[type-var]
        for row in rows:
            seq = row[0]
            document = dict(zip(HASHED_FIELDS, (seq, format_time(row[1]), *row[2:10]), strict=True))
            yield seq, row[9], row[10], line_hash(entry_line(document)) == row[10], document["at"]


def checkpoint_allowance() -> Allowance:
    """How long, and for how many entries, an entry may wait for its first signed checkpoint here.

    The tick signs once ``CONSENTRY_CHECKPOINT_EVERY_ENTRIES`` wait or the
    oldest is ``CONSENTRY_CHECKPOINT_EVERY_MINUTES`` old, checking every
    ``CONSENTRY_CHECKPOINT_POLL_SECONDS``; the grace settings cover a busy
    worker, a restart, a burst between two ticks. Past that, the entry was
    unsigned for longer than this deployment promises.
    """
    return Allowance(
        seconds=settings.CONSENTRY_CHECKPOINT_EVERY_MINUTES * 60
        + settings.CONSENTRY_CHECKPOINT_POLL_SECONDS
        + settings.CONSENTRY_CHECKPOINT_GRACE_MINUTES * 60,
        entries=settings.CONSENTRY_CHECKPOINT_EVERY_ENTRIES + settings.CONSENTRY_CHECKPOINT_GRACE_ENTRIES,
    )


def _node_name(level: int, index: int) -> str:
    return (
        f"stored Merkle node (level {level}, index {index}) over entries "
        f"#{(index << level) + 1} to #{(index + 1) << level}"
    )


class CheckedNodes(CompactTree):
    """A compact tree that checks each perfect subtree it completes against the stored node.

    Stored nodes (``AuditTreeNode``, level ``TREE_NODE_LEVEL`` and up) are
    what inclusion proofs are built from. They stream in the order the tree
    completes them: by the last leaf they cover, then by level. Up to
    ``upto`` (the last checkpoint's size) every such subtree must be stored,
    with the hash rebuilt here; memory stays O(log n) however long the log.
    """

    __slots__ = ("pending", "stored", "upto")

    def __init__(self, size: int, stack: Sequence[bytes], *, stored: Iterator[tuple[int, int, str]], upto: int):
        super().__init__(size, stack)
        self.stored = stored
        self.upto = upto
        self.pending = next(stored, None)

    def push(self, leaf_hash: bytes) -> None:
        # Only one leaf in 2**TREE_NODE_LEVEL completes a stored subtree: the rest take the plain path.
        if ~self.size & _BLOCK or self.size >= self.upto:
            super().push(leaf_hash)
            return
        value, level, index, carry = leaf_hash, 0, self.size, self.size
        while carry & 1:
            value = node_hash(self.stack.pop(), value)
            carry >>= 1
            level += 1
            index >>= 1
            if level >= TREE_NODE_LEVEL and self.size < self.upto:
                self._compare(level, index, value)
        self.stack.append(value)
        self.size += 1

    def _compare(self, level: int, index: int, value: bytes) -> None:
        stored = self.pending
        if stored is not None and (stored[1] + 1 << stored[0], stored[0]) < (index + 1 << level, level):
            raise not_intact(f"{_node_name(stored[0], stored[1])} is not a node of the signed tree")
        if stored is None or stored[:2] != (level, index):
            raise not_intact(f"{_node_name(level, index)} is missing: inclusion proofs through it cannot be built")
        if stored[2] != value.hex():
            raise not_intact(
                f"{_node_name(level, index)} differs from the node rebuilt from those entries: "
                "the stored tree was altered, and inclusion proofs built from it would not verify"
            )
        self.pending = next(self.stored, None)

    def leftover(self) -> tuple[int, int, str] | None:
        return self.pending


def stored_nodes() -> Generator[tuple[int, int, str], None, None]:
    """Stored Merkle nodes in the order a growing tree completes them: by last leaf covered, then level."""
    # Combinable.bitleftshift takes any expression; its stubs accept only an int.
    end = (F("index") + 1).bitleftshift(F("level"))  # type: ignore[arg-type]
    nodes = AuditTreeNode.objects.annotate(end=end).order_by("end", "level").values_list("level", "index", "hash")
    # QuerySet.iterator() returns a generator, which closing() needs; its stubs say only Iterator.
    with closing(nodes.iterator(chunk_size=CHUNK)) as rows:  # type: ignore[type-var]
        yield from rows


def verify_live(*, now: datetime | None = None) -> Result:
    """Check the whole ledger in the database: entries, chain, every checkpoint, stored nodes, coverage, the head.

    ``now`` (default: this clock) is what the entries after the last
    checkpoint are measured against: a few young ones are normal and noted,
    old ones mean the checkpoints over them were deleted or never signed.
    """
    result = Result(kind="ledger")
    moment = format_time(now or timezone.now())

    def check() -> None:
        checkpoints = [checkpoint.record() for checkpoint in AuditCheckpoint.objects.order_by("number")]
        upto = max((checkpoint.size for checkpoint in checkpoints), default=0)
        # closing(): the server-side cursors are released at once when a problem stops the walk.
        with closing(stored_nodes()) as nodes:
            walk = Walk(
                checkpoints,
                audit_public_keys(),
                None,
                tree=partial(CheckedNodes, stored=nodes, upto=upto),
                allowance=checkpoint_allowance(),
            )
            try:
                with closing(stored_entries()) as entries:
                    walk_all(entries, walk, result)
                walk.finish(now=moment)
            finally:
                result.size = walk.tree.size
                result.checkpoints = walk.checked
            extra = walk.tree.leftover() if isinstance(walk.tree, CheckedNodes) else None
        head = AuditHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, walk.head)
        if head[0] != walk.tree.size or head[1] != walk.head:
            raise not_intact(
                f"the chain head names entry #{head[0]} but the log ends at entry #{walk.tree.size}: "
                "entries at the tail were removed or added, or the head was altered"
            )
        # A node past the last checkpoint read above is fine only if a checkpoint signed since stored it.
        end = (extra[1] + 1) << extra[0] if extra is not None else 0
        if extra is not None and not AuditCheckpoint.objects.filter(size__gte=end).exists():
            if end > walk.tree.size:
                raise not_intact(
                    f"{_node_name(extra[0], extra[1])} is not a node of the signed tree: "
                    f"the log ends at entry #{walk.tree.size}"
                )
            raise not_intact(
                f"{_node_name(extra[0], extra[1])} lies beyond the last signed checkpoint (size {upto}): "
                "the checkpoint that stored it was deleted"
            )
        if checkpoints:
            latest = max(checkpoints, key=lambda checkpoint: checkpoint.number)
            if stored_root(latest.size).hex() != latest.root:
                raise not_intact(
                    "the root rebuilt from the stored Merkle nodes differs from the signed root: "
                    "inclusion proofs would not verify",
                    checkpoint=latest.number,
                )
        if note := walk.young_note():
            result.notes.append(note)

    return run_checks(result, check)


def verify_bundle(source: str | Path | IO[bytes]) -> Result:
    """Check an export bundle against this deployment's audit keys and checkpoint allowance.

    The first bad entry comes first, then the manifest.
    """
    return shared.verify_bundle(source, jwks=audit_jwks(), allowance=checkpoint_allowance())


def summary(result: Result) -> dict[str, Any]:
    """A verification's outcome as ``ledger_verify`` records it on the ledger and ``verify_audit --json`` prints it."""
    return {
        "ok": result.ok,
        "entries": result.entries,
        "size": result.size,
        "checkpoints": result.checkpoints,
        "problems": [str(finding) for finding in result.findings],
        "notes": result.notes,
    }

"""Inclusion proofs: evidence that one entry is in the log a signed checkpoint commits to.

A proof carries the entry's canonical content, its RFC 9162 audit path and
the signed checkpoint. Anyone holding the audit public key checks it offline
(``consentry-verify proof``): rehash the content, climb the path to a root,
compare it with the checkpoint's root, verify the checkpoint's signature. An
employee can thus show that their withdrawal was recorded and is still there.

Building a path reads O(log n) stored subtree hashes and at most two blocks
of 256 leaf hashes, however long the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry_client.verify import NotIntact, not_intact
from django.db.models import Q, TextChoices

from audit.chain import entry_hash, format_time
from audit.merkle import inclusion_path, leaf_hash, range_hash, root_from_inclusion_path, root_of_leaves
from audit.models import TREE_NODE_LEVEL, AuditCheckpoint, AuditEntry, AuditTreeNode
from audit.selectors import checkpoint_expected_by

logger = logging.getLogger(__name__)
PROOF_FORMAT = "consentry-audit-inclusion-proof/v1"


def _subtrees(needed: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """Hashes of the perfect subtrees a path needs: stored ones, the small ones rebuilt from leaves."""
    needed = set(needed)
    stored = [position for position in needed if position[0] >= TREE_NODE_LEVEL]
    found: dict[tuple[int, int], bytes] = {}
    if stored:
        condition = Q()
        for level, index in stored:
            condition |= Q(level=level, index=index)
        for level, index, node in AuditTreeNode.objects.filter(condition).values_list("level", "index", "hash"):
            found[(level, index)] = bytes.fromhex(node)
        missing = set(stored) - found.keys()
        if missing:
            raise not_intact(f"stored Merkle subtrees {sorted(missing)} are missing")
    blocks = {index << level >> TREE_NODE_LEVEL for level, index in needed if level < TREE_NODE_LEVEL}
    leaves: dict[int, bytes] = {}
    for block in blocks:
        first = block << TREE_NODE_LEVEL
        rows = AuditEntry.objects.filter(seq__gt=first, seq__lte=first + (1 << TREE_NODE_LEVEL))
        for seq, value in rows.values_list("seq", "hash"):
            leaves[seq - 1] = leaf_hash(value)
    for level, index in needed:
        if level < TREE_NODE_LEVEL:
            span = range(index << level, (index + 1) << level)
            if any(position not in leaves for position in span):
                raise not_intact(f"entries #{span.start + 1} to #{span.stop} are not all in the ledger")
            found[(level, index)] = root_of_leaves([leaves[position] for position in span])
    return found


def _noting(needed: list[tuple[int, int]]) -> Callable[[int, int], bytes]:
    """A node source for a first pass: it records which stored nodes the hash needs and returns a blank."""

    def note(level: int, position: int) -> bytes:
        needed.append((level, position))
        return b""

    return note


def stored_root(size: int) -> bytes:
    """The root of the first ``size`` entries as proofs see it: from stored subtrees, small ones from leaves.

    The verifier compares it with the latest signed root, so a stored node
    that would make every proof through it fail is found before anyone asks.
    """
    needed: list[tuple[int, int]] = []
    range_hash(0, size, _noting(needed))
    subtrees = _subtrees(needed)
    return range_hash(0, size, lambda level, position: subtrees[(level, position)])


def inclusion_proof(seq: int, *, checkpoint: AuditCheckpoint | None = None) -> dict[str, Any] | None:
    """A proof of entry ``seq`` against ``checkpoint`` (default: the latest); None until one covers it.

    The proof is checked against the signed root before it is handed out: a
    damaged ledger yields ``NotIntact``, never a proof that fails later.
    Raises ``AuditEntry.DoesNotExist`` for an unknown entry.
    """
    entry = AuditEntry.objects.get(seq=seq)
    checkpoint = checkpoint or AuditCheckpoint.objects.order_by("-number").first()
    if checkpoint is None or checkpoint.size < seq:
        return None
    content = entry.content()
    if entry_hash(content) != entry.hash:
        raise not_intact("its content does not match its stored hash: the entry was altered", seq=seq)
    index, size = seq - 1, checkpoint.size
    needed: list[tuple[int, int]] = []
    inclusion_path(index, size, _noting(needed))
    subtrees = _subtrees(needed)
    path = inclusion_path(index, size, lambda level, position: subtrees[(level, position)])
    if root_from_inclusion_path(index, size, leaf_hash(entry.hash), path).hex() != checkpoint.root:
        raise not_intact(f"its audit path does not lead to checkpoint #{checkpoint.number}'s root", seq=seq)
    return {
        "format": PROOF_FORMAT,
        "entry": content,
        "entry_hash": entry.hash,
        "leaf_index": index,
        "tree_size": size,
        "audit_path": [node.hex() for node in path],
        "checkpoint": checkpoint.record().as_json(with_frontier=False),
    }


class InclusionStatus(TextChoices):
    PROVEN = "proven", "Proven by a signed checkpoint"
    PENDING = "pending", "Waiting for the next checkpoint"
    UNAVAILABLE = "unavailable", "The ledger could not prove it"


@dataclass(frozen=True, slots=True)
class Inclusion:
    """Where one entry stands: proven by a signed checkpoint (with the proof), pending, or unavailable."""

    status: str
    detail: str
    proof: dict[str, Any] | None = None


def entry_inclusion(seq: int, *, now: datetime) -> Inclusion:
    """The inclusion proof of entry ``seq`` against the latest checkpoint, or why there is none yet.

    For evidence handed to people (consent receipts): a pending entry says
    when the checkpoint that will cover it is due; a ledger that fails its
    own checks yields no proof, and the failure is logged for the auditors
    rather than shown in detail.
    """
    try:
        proof = inclusion_proof(seq)
    except NotIntact as exc:
        logger.error("no inclusion proof for audit entry #%s: %s", seq, exc)
        return Inclusion(
            InclusionStatus.UNAVAILABLE,
            "unavailable: the ledger could not prove this entry; the auditors have been alerted.",
        )
    if proof is not None:
        checkpoint = proof["checkpoint"]
        return Inclusion(
            InclusionStatus.PROVEN,
            f"proven: audit entry #{seq} is in the {checkpoint['size']} entries signed by checkpoint "
            f"#{checkpoint['number']} at {checkpoint['issued_at']}.",
            proof,
        )
    entry = AuditEntry.objects.values_list("event_type", "at").get(seq=seq)
    due = checkpoint_expected_by(event_type=entry[0], at=entry[1])
    if due >= now:
        return Inclusion(
            InclusionStatus.PENDING,
            f"pending: the next checkpoint is due by {format_time(due)}; fetch this again after that "
            f"to get the proof that audit entry #{seq} is in the ledger.",
        )
    return Inclusion(
        InclusionStatus.PENDING,
        f"pending: the next checkpoint was due by {format_time(due)} and is late; "
        f"fetch this again later to get the proof that audit entry #{seq} is in the ledger.",
    )

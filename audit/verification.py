"""Verifying the ledger, live or exported, in one streaming pass.

Checks, in the order a problem is reported (the first one found wins):

1. sequence continuity: entry numbers run 1, 2, 3, … with no gap, repeat or swap;
2. each entry's content hashes to its stored hash (any edited field shows);
3. each entry's ``prev_hash`` is the previous entry's hash (the chain);
4. at each checkpoint's size: its Ed25519 signature by a known audit key, its
   number following the previous one, its ``previous`` signature matching the
   previous checkpoint's, its time not going back, its chain head, and its
   Merkle root recomputed over every entry up to it. Recomputing the roots
   of consecutive checkpoints from one leaf stream is the consistency check:
   the later tree is an append-only extension of the earlier one;
5. no checkpoint covers more entries than the log holds (a truncated tail),
   and the live chain head agrees with the last entry.

Memory stays flat: entries stream through an RFC 9162 frontier.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.chain import GENESIS_HASH, HASH_TAG, format_time
from audit.merkle import LEAF_PREFIX, NODE_PREFIX, Frontier, leaf_hash
from audit.statements import Statement, signature_valid

KeyLookup = Callable[[str], Ed25519PublicKey | None]
# One entry as a verifier reads it: seq, prev_hash, its hash, and whether its content rehashes to that hash.
Entry = tuple[int, str, str, bool]


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong and where: the entry number, or the checkpoint."""

    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def __str__(self) -> str:
        if self.seq is not None:
            return f"entry #{self.seq}: {self.message}"
        if self.checkpoint is not None:
            return f"checkpoint #{self.checkpoint}: {self.message}"
        return self.message


class TamperDetected(Exception):
    def __init__(self, problem: Problem):
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Report:
    entries: int = 0
    size: int = 0
    checkpoints: int = 0
    seconds: float = 0.0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "size": self.size,
            "checkpoints": self.checkpoints,
            "problems": [str(problem) for problem in self.problems],
        }


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    number: int
    size: int
    root: str
    head: str
    prev_signature: str
    issued_at: str
    kid: str
    signature: str
    frontier: tuple[str, ...] | None = None

    def statement(self) -> Statement:
        return Statement(
            number=self.number,
            size=self.size,
            root=self.root,
            head=self.head,
            prev_signature=self.prev_signature,
            issued_at=self.issued_at,
            kid=self.kid,
        )

    def as_json(self, *, with_frontier: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "number": self.number,
            "size": self.size,
            "root": self.root,
            "head": self.head,
            "prev_signature": self.prev_signature,
            "issued_at": self.issued_at,
            "kid": self.kid,
            "signature": self.signature,
        }
        if with_frontier and self.frontier is not None:
            data["frontier"] = list(self.frontier)
        return data

    @classmethod
    def from_model(cls, checkpoint: Any) -> CheckpointRecord:
        return cls(
            number=checkpoint.number,
            size=checkpoint.size,
            root=checkpoint.root,
            head=checkpoint.head,
            prev_signature=checkpoint.prev_signature,
            issued_at=format_time(checkpoint.issued_at),
            kid=checkpoint.kid,
            signature=checkpoint.signature,
            frontier=tuple(checkpoint.frontier),
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckpointRecord:
        try:
            frontier = data.get("frontier")
            record = cls(
                number=int(data["number"]),
                size=int(data["size"]),
                root=str(data["root"]),
                head=str(data["head"]),
                prev_signature=str(data["prev_signature"]),
                issued_at=str(data["issued_at"]),
                kid=str(data["kid"]),
                signature=str(data["signature"]),
                frontier=None if frontier is None else tuple(str(node) for node in frontier),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TamperDetected(Problem(f"a checkpoint record is malformed ({exc})")) from exc
        return record


def tampered(message: str, *, seq: int | None = None, checkpoint: int | None = None) -> TamperDetected:
    return TamperDetected(Problem(message, seq=seq, checkpoint=checkpoint))


class TreeWalker:
    """Feeds entry hashes, in sequence, through the Merkle frontier and checks each checkpoint at its size.

    ``start`` is a signed checkpoint to begin from (its frontier must fold to
    its root); without it the walk starts at the empty log.
    """

    def __init__(
        self,
        checkpoints: Iterable[CheckpointRecord],
        *,
        key_for: KeyLookup,
        start: CheckpointRecord | None = None,
        keep_level: int | None = None,
    ):
        self.key_for = key_for
        self.checked = 0
        self.previous: CheckpointRecord | None = None
        self.last_entry_hash = GENESIS_HASH
        pending = sorted(checkpoints, key=lambda cp: cp.number)
        for earlier, later in itertools.pairwise(pending):
            if later.size <= earlier.size:
                raise tampered(
                    f"covers {later.size} entries, no more than checkpoint #{earlier.number}", checkpoint=later.number
                )
        if start is None:
            self.frontier = Frontier(keep_level=keep_level)
        else:
            if start.frontier is None:
                raise tampered("the starting checkpoint carries no frontier", checkpoint=start.number)
            self._check_signature(start)
            try:
                self.frontier = Frontier.from_hex(start.size, start.frontier, keep_level=keep_level)
            except ValueError as exc:
                raise tampered(f"its frontier is malformed ({exc})", checkpoint=start.number) from exc
            if self.frontier.root().hex() != start.root:
                raise tampered("its frontier does not fold to its signed root", checkpoint=start.number)
            self.previous = start
            self.last_entry_hash = start.head
            self.checked = 1
            pending = [cp for cp in pending if cp.number != start.number]
        self.pending = deque(pending)
        self.next_size = self.pending[0].size if self.pending else -1
        if self.pending and self.next_size <= self.frontier.size:
            raise tampered(
                f"covers {self.next_size} entries, before the walk's start", checkpoint=self.pending[0].number
            )

    @property
    def size(self) -> int:
        return self.frontier.size

    def add(self, entry_hash: str) -> None:
        """The next entry's hash (the caller has checked its content and link)."""
        self.frontier.append(leaf_hash(entry_hash))
        self.last_entry_hash = entry_hash
        if self.frontier.size == self.next_size:
            self.reach_checkpoint()

    def _check_signature(self, cp: CheckpointRecord) -> None:
        key = self.key_for(cp.kid)
        if key is None:
            raise tampered(f"signed with an unknown key (kid {cp.kid!r})", checkpoint=cp.number)
        if not signature_valid(cp.statement().message(), cp.signature, key):
            raise tampered(
                "its signature does not verify: the checkpoint was altered or replaced", checkpoint=cp.number
            )

    def reach_checkpoint(self) -> None:
        cp = self.pending.popleft()
        self.next_size = self.pending[0].size if self.pending else -1
        self._check_signature(cp)
        previous = self.previous
        first = (previous.size if previous else 0) + 1
        if previous is None:
            if cp.number != 1 or cp.prev_signature:
                raise tampered("is not the first checkpoint, yet none precedes it", checkpoint=cp.number)
        else:
            if cp.number != previous.number + 1:
                raise tampered(f"follows checkpoint #{previous.number}: a checkpoint is missing", checkpoint=cp.number)
            if cp.prev_signature != previous.signature:
                raise tampered(f"does not sign over checkpoint #{previous.number}'s signature", checkpoint=cp.number)
            if cp.issued_at < previous.issued_at:
                raise tampered(f"is dated before checkpoint #{previous.number}", checkpoint=cp.number)
        if cp.head != self.last_entry_hash:
            raise tampered(
                f"its chain head is not entry #{cp.size}'s hash: "
                f"entries #{first} to #{cp.size} differ from what was signed",
                checkpoint=cp.number,
            )
        if self.frontier.root().hex() != cp.root:
            raise tampered(
                f"the Merkle root of entries #1 to #{cp.size} differs from the signed root: "
                f"entries #{first} to #{cp.size} were changed, inserted, removed or reordered",
                checkpoint=cp.number,
            )
        if cp.frontier is not None and list(cp.frontier) != self.frontier.hex_nodes():
            raise tampered("its stored frontier does not match the entries", checkpoint=cp.number)
        self.previous = cp
        self.checked += 1

    def finish(self) -> None:
        if self.pending:
            cp = self.pending[0]
            raise tampered(
                f"covers {cp.size} entries but the log ends at entry #{self.size}: the tail was truncated",
                checkpoint=cp.number,
            )


def check_link(seq: int, prev_hash: str, walker: TreeWalker) -> None:
    if prev_hash != walker.last_entry_hash:
        raise tampered(
            f"its prev_hash does not link to entry #{seq - 1}: an entry before it was removed, inserted or altered",
            seq=seq,
        )


# An exported JSONL line is canonical JSON of {"entry": <content>, "hash": <hex>}:
# the content's bytes sit between a fixed prefix and a fixed-length suffix.
JSONL_PREFIX = b'{"entry":'
JSONL_SUFFIX_START = b',"hash":"'
JSONL_SUFFIX_LENGTH = len(JSONL_SUFFIX_START) + 64 + 2
_SEQ_KEY = b',"seq":'
_PREV_KEY = b'"prev_hash":"'


def jsonl_line(content: bytes, entry_hash: str) -> bytes:
    """One export line for an entry's canonical content and its hash (no newline)."""
    return JSONL_PREFIX + content + JSONL_SUFFIX_START + entry_hash.encode() + b'"}'


def jsonl_entry(line: bytes, position: int) -> Entry:
    """One exported JSONL line, rehashed, without parsing all of it.

    The hash covers the content's bytes as they are, so they are hashed in
    place. Keys are sorted, so ``prev_hash`` and ``seq`` come after the
    payload, followed only by strings and the seq; inside a JSON string every
    quote is escaped, so the last ``"prev_hash":"`` and ``,"seq":`` are the
    top-level keys. Any other reading of the bytes changes the hash.
    """
    content = line[len(JSONL_PREFIX) : -JSONL_SUFFIX_LENGTH]
    if not (
        line.startswith(JSONL_PREFIX)
        and line[-JSONL_SUFFIX_LENGTH:].startswith(JSONL_SUFFIX_START)
        and line.endswith(b'"}')
    ):
        raise tampered(f"line {position} of the entries file is not an exported audit entry")
    stored = line[-66:-2].decode("ascii", errors="replace")
    prev_at = content.rfind(_PREV_KEY)
    seq_at = content.rfind(_SEQ_KEY)
    try:
        if not 0 <= prev_at < seq_at:
            raise ValueError("no seq or prev_hash")
        seq = int(content[seq_at + len(_SEQ_KEY) : content.find(b",", seq_at + len(_SEQ_KEY))])
        prev_hash = content[prev_at + len(_PREV_KEY) : prev_at + len(_PREV_KEY) + 64].decode("ascii")
    except ValueError as exc:
        raise tampered(f"line {position} of the entries file is not an exported audit entry") from exc
    return seq, prev_hash, stored, hashlib.sha256(HASH_TAG + content).hexdigest() == stored


def check_intact(seq: int, intact: bool) -> None:
    if not intact:
        raise tampered("its content does not match its hash: the entry was altered", seq=seq)


def walk_complete(entries: Iterator[Entry], walker: TreeWalker, report: Report) -> None:
    """Every entry from the walker's start on, in order."""
    expected = walker.size + 1
    for seq, prev_hash, entry_hash, intact in entries:
        if seq > expected:
            raise tampered(f"is missing (entry #{seq} comes next): entries were removed or reordered", seq=expected)
        if seq < expected:
            raise tampered("appears a second time: an entry was inserted, repeated or reordered", seq=seq)
        check_intact(seq, intact)
        check_link(seq, prev_hash, walker)
        walker.add(entry_hash)
        report.entries += 1
        expected += 1


def walk_jsonl_complete(stream: IO[bytes], walker: TreeWalker, report: Report) -> None:
    """A complete JSON Lines export: the checks of ``walk_complete`` over ``jsonl_entry``, in one tight loop.

    A million-entry bundle takes this path, so it reads the stream in large
    blocks, keeps hashes as bytes and grows the frontier in place; a line it
    cannot read the fast way goes through ``jsonl_entry``.
    """
    sha256 = hashlib.sha256
    frontier = walker.frontier
    if frontier.keep_level is not None:
        raise ValueError("the fast walk does not collect subtrees")
    nodes = frontier.nodes
    head = walker.last_entry_hash.encode()
    expected = frontier.size + 1
    rest, position = b"", 0
    while True:
        block = stream.read(1 << 20)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        if not block and rest:
            lines.append(rest)
            rest = b""
        for line in lines:
            position += 1
            content = line[9:-JSONL_SUFFIX_LENGTH]
            stated = line[-66:-2]
            prev_at = content.rfind(_PREV_KEY)
            seq_at = content.rfind(_SEQ_KEY)
            framed = line[:9] == JSONL_PREFIX and line[-75:-66] == JSONL_SUFFIX_START and line[-2:] == b'"}'
            try:
                if not framed or not 0 <= prev_at < seq_at:
                    raise ValueError("not the canonical layout")
                seq = int(content[seq_at + 7 : content.find(b",", seq_at + 7)])
                prev_hash = content[prev_at + 13 : prev_at + 77]
            except ValueError:
                seq, prev_text, stated_text, _ = jsonl_entry(line, position)
                prev_hash, stated = prev_text.encode(), stated_text.encode()
            if seq > expected:
                raise tampered(f"is missing (entry #{seq} comes next): entries were removed or reordered", seq=expected)
            if seq < expected:
                raise tampered("appears a second time: an entry was inserted, repeated or reordered", seq=seq)
            digest = sha256(HASH_TAG + content).digest()
            check_intact(seq, digest.hex().encode() == stated)
            if prev_hash != head:
                walker.last_entry_hash = head.decode()
                check_link(seq, prev_hash.decode("ascii", "replace"), walker)
            node, carry = sha256(LEAF_PREFIX + digest).digest(), frontier.size
            while carry & 1:
                node = sha256(NODE_PREFIX + nodes.pop() + node).digest()
                carry >>= 1
            nodes.append(node)
            frontier.size += 1
            head = stated
            expected += 1
            report.entries += 1
            if frontier.size == walker.next_size:
                walker.last_entry_hash = head.decode()
                walker.reach_checkpoint()
        if not block:
            break
    walker.last_entry_hash = head.decode()


def walk_with_leaves(entries: Iterator[Entry], leaves: Iterator[str], walker: TreeWalker, report: Report) -> None:
    """A filtered export: the tree's leaves come from the leaf list, each entry must match its leaf."""
    pending = next(entries, None)
    for leaf in leaves:
        seq = walker.size + 1
        while pending is not None and pending[0] <= seq:
            if pending[0] < seq:
                raise tampered("is out of order or repeated in the entries file", seq=pending[0])
            _, prev_hash, entry_hash, intact = pending
            check_intact(seq, intact)
            if entry_hash != leaf:
                raise tampered("does not match its leaf in the tree: the entry was altered", seq=seq)
            check_link(seq, prev_hash, walker)
            report.entries += 1
            pending = next(entries, None)
        try:
            walker.add(leaf)
        except ValueError as exc:
            raise tampered("leaves.txt holds no valid hash for it", seq=seq) from exc
    if pending is not None:
        raise tampered("lies outside the tree the bundle covers", seq=pending[0])


def run(report: Report, check: Callable[[], None]) -> Report:
    started = time.perf_counter()
    try:
        check()
    except TamperDetected as exc:
        report.problems.append(exc.problem)
    report.seconds = time.perf_counter() - started
    return report

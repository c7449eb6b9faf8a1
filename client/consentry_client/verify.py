"""Offline verification of Consentry audit evidence: export bundles, inclusion proofs, consent receipts.

Needs only ``cryptography`` and the audit public keys (JWKS from
``/.well-known/jwks.json``). For a bundle (``consentry-audit-export/v1``)
it checks, reporting the first bad entry or checkpoint first:

1. entries run 1, 2, 3, … from the bundle's start with none missing, repeated
   or out of place;
2. each entry's content hashes to its hash: SHA-256 over
   ``consentry.audit.entry.v1\\0`` and the entry's canonical JSON (keys
   sorted, no white space, UTF-8);
3. each entry's ``prev_hash`` is the previous entry's hash;
4. each checkpoint, when the walk reaches its size: Ed25519 signature over its
   statement by a known key, number and ``previous`` signature chaining to
   the checkpoint before, time not going back, chain head, and the RFC 9162
   Merkle root recomputed from the leaves. Consecutive roots come from one
   leaf stream, so each tree extends the one before (consistency);
5. no checkpoint lies beyond the last entry (truncation);
6. every entry was covered by a signed checkpoint within the allowance the
   signed manifest states (or ``--allowance-minutes`` / ``--allowance-entries``):
   no checkpoint signed later than that after the first entry it covers, or
   over more entries than that; entries past the last checkpoint are measured
   against the export's signed time and reported as not yet covered while
   young. Without the signing key nobody forges a checkpoint, so deleted
   checkpoints show up here: as a gap in the numbered, signature-linked
   sequence, or as entries left, or re-signed, too late;
7. for a filtered export, each entry against its leaf in ``leaves.txt``;
8. the manifest's signature and every file's SHA-256.

For a proof (``consentry-audit-inclusion-proof/v1``): the entry's hash, the
audit path to the checkpoint's root, and the checkpoint's signature.

For a consent receipt (the file the portal downloads, or ``GET
/api/v1/me/receipts/<id>``): the JWS signature (EdDSA, typ
``consent-receipt+jwt``) by a pinned key, that the readable claims are the
signed ones, then its ``inclusion`` proof as above, and that the proven leaf
is the audit entry the signed receipt names (``record.evidence``: sequence
number and entry hash) and that this entry records this receipt.

Exit status: 0 verified, 1 not intact, 2 usage or unreadable input, 3 a
receipt whose signature verifies but whose inclusion proof is still pending
(fetch it again after the next checkpoint).
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from consentry_client.merkle import CompactTree, leaf, root_from_path

BUNDLE_FORMAT = "consentry-audit-export/v1"
PROOF_FORMAT = "consentry-audit-inclusion-proof/v1"
RECEIPT_TYP = "consent-receipt+jwt"
ENTRY_TAG = b"consentry.audit.entry.v1\x00"
MANIFEST_TAG = b"consentry-audit-export-manifest/v1\n"
GENESIS = "0" * 64
FIELDS = ("seq", "at", "event_type", "actor", "subject", "object_type", "object_id", "region", "payload", "prev_hash")
CSV_COLUMNS = (*FIELDS, "hash")
LINE_HEAD = b'{"entry":'
LINE_HASH_KEY = b',"hash":"'
LINE_TAIL_LENGTH = len(LINE_HASH_KEY) + 64 + 2
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
# One entry as read from a bundle: seq, prev_hash, its stated hash, whether its content rehashes to it, its time.
Entry = tuple[int, str, str, bool, str]
AT_KEY = b',"at":"'


# --- entry hashes --------------------------------------------------------------------------------


def entry_line(document: dict[str, Any]) -> bytes:
    """Canonical JSON of an entry's hashed document (keys sorted, no white space, UTF-8): what its hash covers."""
    return _canonical(document).encode()


def line_hash(line: bytes) -> str:
    """The entry hash over an entry's canonical bytes."""
    return hashlib.sha256(ENTRY_TAG + line).hexdigest()


# --- keys ----------------------------------------------------------------------------------------


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _thumbprint(x: str) -> str:
    """RFC 7638 thumbprint of an Ed25519 OKP key: the kid Consentry uses."""
    members = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()


def load_keys(jwks: dict[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Ed25519 keys of a JWKS by kid; each kid is recomputed from the key, never taken on trust."""
    keys = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue
        try:
            key = Ed25519PublicKey.from_public_bytes(_b64url(str(jwk["x"])))
        except (KeyError, ValueError):
            continue
        keys[_thumbprint(str(jwk["x"]))] = key
    return keys


def signature_valid(message: bytes, signature: str, key: Ed25519PublicKey | None) -> bool:
    """Whether ``signature`` (Ed25519, base64url) over ``message`` verifies with ``key``; never without a key."""
    if key is None:
        return False
    try:
        key.verify(_b64url(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _signed(keys: dict[str, Ed25519PublicKey], kid: str, message: bytes, signature: str) -> bool:
    return signature_valid(message, signature, keys.get(kid))


# --- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def __str__(self) -> str:
        if self.seq is not None:
            return f"entry #{self.seq}: {self.message}"
        if self.checkpoint is not None:
            return f"checkpoint #{self.checkpoint}: {self.message}"
        return self.message


class NotIntact(Exception):
    def __init__(self, finding: Finding):
        super().__init__(str(finding))
        self.finding = finding


def not_intact(message: str, *, seq: int | None = None, checkpoint: int | None = None) -> NotIntact:
    return NotIntact(Finding(message, seq=seq, checkpoint=checkpoint))


@dataclass
class Result:
    kind: str
    entries: int = 0
    size: int = 0
    checkpoints: int = 0
    keys_pinned: bool = True
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # A receipt signed but not yet under a checkpoint: why, in the server's words.
    pending: str = ""

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "kind": self.kind,
            "entries": self.entries,
            "size": self.size,
            "checkpoints": self.checkpoints,
            "keys_pinned": self.keys_pinned,
            "seconds": round(self.seconds, 3),
            "findings": [str(finding) for finding in self.findings],
            "first_bad_entry": next((f.seq for f in self.findings if f.seq is not None), None),
            "notes": self.notes,
            "pending": self.pending or None,
        }


def run_checks(result: Result, check: Callable[[], None]) -> Result:
    """Run ``check``, which fills ``result``; the finding that stopped it goes first, before any it left."""
    started = time.perf_counter()
    try:
        check()
    except NotIntact as exc:
        result.findings.insert(0, exc.finding)
    result.seconds = time.perf_counter() - started
    return result


# --- checkpoint coverage -------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """How long, and for how many entries, an entry may wait for the first signed checkpoint over it.

    The deployment signs a checkpoint every N entries or once the oldest
    uncovered entry is M minutes old, polling every few seconds; the allowance
    is that plus a grace. An entry that waited longer was covered by no
    signature meanwhile: the signer was stopped, or checkpoints were deleted
    (and possibly signed again over a rewritten log).
    """

    seconds: int
    entries: int

    @classmethod
    def parse(cls, data: Any) -> Allowance | None:
        if data is None:
            return None
        try:
            allowance = cls(seconds=int(data["seconds"]), entries=int(data["entries"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise not_intact(f"the checkpoint allowance is malformed ({exc})") from exc
        if allowance.seconds < 0 or allowance.entries < 1:
            raise not_intact("the checkpoint allowance is out of range")
        return allowance

    def as_json(self) -> dict[str, int]:
        return {"seconds": self.seconds, "entries": self.entries}

    def __str__(self) -> str:
        return f"{self.seconds / 60:g} minutes or {self.entries} entries"


def parse_time(text: str) -> datetime:
    """An entry or checkpoint time (RFC 3339, UTC, ``Z``) as an aware datetime."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise not_intact(f"{text!r} is not a time") from exc


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} minutes"


# --- checkpoints ---------------------------------------------------------------------------------


def checkpoint_statement(
    *, number: int, size: int, root: str, head: str, prev_signature: str, issued_at: str, kid: str
) -> bytes:
    """What a checkpoint's signature covers: a header line, then one ``name value`` line per field."""
    return (
        "consentry-audit-checkpoint/v1\n"
        f"number {number}\n"
        f"size {size}\n"
        f"root {root}\n"
        f"head {head}\n"
        f"previous {prev_signature or '-'}\n"
        f"time {issued_at}\n"
        f"kid {kid}\n"
    ).encode()


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint as exported; its ``frontier`` (not signed) lets a walk start from it."""

    number: int
    size: int
    root: str
    head: str
    prev_signature: str
    issued_at: str
    kid: str
    signature: str
    frontier: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, data: Any) -> Checkpoint:
        try:
            frontier = data.get("frontier")
            return cls(
                number=int(data["number"]),
                size=int(data["size"]),
                root=str(data["root"]),
                head=str(data["head"]),
                prev_signature=str(data["prev_signature"]),
                issued_at=str(data["issued_at"]),
                kid=str(data["kid"]),
                signature=str(data["signature"]),
                frontier=None if frontier is None else tuple(map(str, frontier)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise not_intact(f"a checkpoint record is malformed ({exc})") from exc

    def as_json(self, *, with_frontier: bool = True) -> dict[str, Any]:
        """The record ``parse`` reads: a line of a bundle's checkpoints file, or a proof's checkpoint."""
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

    def statement(self) -> bytes:
        return checkpoint_statement(
            number=self.number,
            size=self.size,
            root=self.root,
            head=self.head,
            prev_signature=self.prev_signature,
            issued_at=self.issued_at,
            kid=self.kid,
        )

    def check_signature(self, keys: dict[str, Ed25519PublicKey]) -> None:
        if self.kid not in keys:
            raise not_intact(f"signed with an unknown key (kid {self.kid!r})", checkpoint=self.number)
        if not _signed(keys, self.kid, self.statement(), self.signature):
            raise not_intact(
                "its signature does not verify: the checkpoint was altered or replaced", checkpoint=self.number
            )


class Walk:
    """Entry hashes in sequence through a compact Merkle tree, each checkpoint checked at its size.

    ``start`` is a signed checkpoint to begin from (its frontier must fold to
    its root); without it the walk starts at the empty log. ``tree`` makes the
    compact tree from a size and its subtree roots (a subclass may keep more).
    With an ``allowance``, each checkpoint must come within it of the first
    entry it newly covers (``waiting``: that entry's number and time), and
    ``finish(now=…)`` measures the entries after the last checkpoint likewise.
    """

    def __init__(
        self,
        checkpoints: list[Checkpoint],
        keys: dict[str, Ed25519PublicKey],
        start: Checkpoint | None,
        *,
        tree: Callable[[int, list[bytes]], CompactTree] = CompactTree,
        allowance: Allowance | None = None,
    ):
        self.keys = keys
        self.previous = start
        self.head = GENESIS
        self.checked = 0
        self.allowance = allowance
        self.waiting: tuple[int, str] | None = None
        self.uncovered = 0
        ordered = sorted(checkpoints, key=lambda cp: cp.number)
        for index in range(1, len(ordered)):
            if ordered[index].size <= ordered[index - 1].size:
                raise not_intact("its size does not grow", checkpoint=ordered[index].number)
        if start is None:
            self.tree = tree(0, [])
        else:
            start.check_signature(keys)
            if start.frontier is None:
                raise not_intact("the starting checkpoint carries no frontier", checkpoint=start.number)
            try:
                self.tree = tree(start.size, [bytes.fromhex(value) for value in start.frontier])
            except ValueError as exc:
                raise not_intact(f"its frontier is malformed ({exc})", checkpoint=start.number) from exc
            if self.tree.root().hex() != start.root:
                raise not_intact("its frontier does not fold to its signed root", checkpoint=start.number)
            self.head = start.head
            self.checked = 1
            ordered = [cp for cp in ordered if cp.number != start.number]
        self.pending = ordered[::-1]
        if self.pending and self.pending[-1].size <= self.tree.size:
            raise not_intact("lies before the bundle's start", checkpoint=self.pending[-1].number)

    def add(self, entry_hash: str, at: str | None = None) -> None:
        if self.waiting is None and at is not None:
            self.waiting = (self.tree.size + 1, at)
        self.tree.push(leaf(entry_hash))
        self.head = entry_hash
        if self.pending and self.pending[-1].size == self.tree.size:
            self.checkpoint_reached()

    def checkpoint_reached(self) -> None:
        self._checkpoint(self.pending.pop())

    def link(self, seq: int, prev_hash: str) -> None:
        if prev_hash != self.head:
            raise not_intact(
                f"its prev_hash does not link to entry #{seq - 1}: an entry before it was removed, inserted or altered",
                seq=seq,
            )

    def _checkpoint(self, cp: Checkpoint) -> None:
        cp.check_signature(self.keys)
        before = self.previous
        first = before.size + 1 if before else 1
        if before is None and (cp.number != 1 or cp.prev_signature):
            raise not_intact("is not the first checkpoint, yet none precedes it", checkpoint=cp.number)
        if before is not None:
            if cp.number != before.number + 1:
                raise not_intact(f"follows checkpoint #{before.number}: a checkpoint is missing", checkpoint=cp.number)
            if cp.prev_signature != before.signature:
                raise not_intact(f"does not sign over checkpoint #{before.number}'s signature", checkpoint=cp.number)
            if cp.issued_at < before.issued_at:
                raise not_intact(f"is dated before checkpoint #{before.number}", checkpoint=cp.number)
        if cp.head != self.head:
            raise not_intact(
                f"its chain head is not entry #{cp.size}'s hash: "
                f"entries #{first} to #{cp.size} differ from what was signed",
                checkpoint=cp.number,
            )
        if self.tree.root().hex() != cp.root:
            raise not_intact(
                f"the Merkle root of entries #1 to #{cp.size} differs from the signed root: "
                f"entries #{first} to #{cp.size} were changed, inserted, removed or reordered",
                checkpoint=cp.number,
            )
        if cp.frontier is not None and [value.hex() for value in self.tree.stack] != list(cp.frontier):
            raise not_intact("its frontier does not match the entries", checkpoint=cp.number)
        self._covered_in_time(cp.size, cp.issued_at, f"checkpoint #{cp.number} signed at {cp.issued_at}")
        self.previous = cp
        self.waiting = None
        self.checked += 1

    @property
    def covered(self) -> int:
        """The size the last checked checkpoint signed (0: none)."""
        return self.previous.size if self.previous else 0

    def _covered_in_time(self, size: int, moment: str, by: str) -> None:
        """Entries up to ``size``, uncovered until ``moment``, waited no longer than the allowance."""
        if self.allowance is None or size <= self.covered:
            return
        first, count = self.covered + 1, size - self.covered
        if count > self.allowance.entries:
            raise not_intact(
                f"was covered by no signed checkpoint until {by}, {count} entries later "
                f"(the allowance is {self.allowance}): checkpoints were deleted, or the signer was stopped",
                seq=first,
            )
        if self.waiting is None:
            return
        seq, at = self.waiting
        waited = (parse_time(moment) - parse_time(at)).total_seconds()
        if waited > self.allowance.seconds:
            raise not_intact(
                f"written at {at}, was covered by no signed checkpoint until {by}, {_minutes(waited)} later "
                f"(the allowance is {self.allowance}): checkpoints were deleted, or the signer was stopped",
                seq=seq,
            )

    def finish(self, *, now: str | None = None, until: str = "now") -> None:
        """No checkpoint left beyond the log; with ``now``, the uncovered tail is young enough.

        ``uncovered`` is then the number of entries after the last checkpoint:
        a fresh ledger, or a busy one between two checkpoints, has some.
        """
        if self.pending:
            cp = self.pending[-1]
            raise not_intact(
                f"covers {cp.size} entries but the log ends at entry #{self.tree.size}: the tail was truncated",
                checkpoint=cp.number,
            )
        self.uncovered = self.tree.size - self.covered
        if now is not None:
            self._covered_in_time(self.tree.size, now, f"{until} ({now}), the log's end")

    def young_note(self) -> str | None:
        if not self.uncovered:
            return None
        return (
            f"not yet covered: {self.uncovered} entries (young): entries #{self.covered + 1} to "
            f"#{self.tree.size} await the next signed checkpoint, within the allowance of {self.allowance}"
        )


# --- entries -------------------------------------------------------------------------------------


def _entry_line(raw: bytes, number: int) -> Entry:
    """One line, fully parsed; the entry's bytes are hashed exactly as exported."""
    line = raw.rstrip(b"\n")
    body = line[len(LINE_HEAD) : -LINE_TAIL_LENGTH]
    if not (line.startswith(LINE_HEAD) and line[-LINE_TAIL_LENGTH:].startswith(LINE_HASH_KEY) and line.endswith(b'"}')):
        raise not_intact(f"line {number} of the entries file is not an exported audit entry")
    stated = line[-66:-2].decode("ascii", "replace")
    try:
        entry = json.loads(body)
        seq, prev_hash, at = entry["seq"], entry["prev_hash"], entry["at"]
        if not isinstance(seq, int) or not isinstance(prev_hash, str) or not isinstance(at, str):
            raise TypeError("seq, prev_hash or at has the wrong type")
    except (ValueError, KeyError, TypeError) as exc:
        raise not_intact(f"line {number} of the entries file is not an audit entry ({exc})") from exc
    return seq, prev_hash, stated, line_hash(body) == stated, at


def _line_time(body: bytes, number: int) -> str:
    """The ``at`` of an entry's canonical bytes.

    Keys are sorted, so ``at`` comes right after ``actor``, a string, in which
    a quote is always escaped: the first ``,"at":"`` is the entry's own.
    """
    start = body.find(AT_KEY)
    end = body.find(b'"', start + len(AT_KEY))
    if start >= 0 and end >= 0:
        return body[start + len(AT_KEY) : end].decode("ascii", "replace")
    try:
        return str(json.loads(body)["at"])
    except (ValueError, KeyError, TypeError) as exc:
        raise not_intact(f"line {number} of the entries file is not an audit entry ({exc})") from exc


def _jsonl(stream: IO[bytes]) -> Iterator[Entry]:
    """Entries line by line, reading seq and prev_hash from the canonical text instead of parsing it.

    Keys are sorted, so ``prev_hash`` and ``seq`` follow the payload and only
    strings follow them; a quote inside a JSON string is always escaped, so
    the last ``"prev_hash":"`` and ``,"seq":`` are the entry's own. The bytes
    are hashed in place; any other reading of them changes the hash. A line
    where that reading fails falls back to a full parse.
    """
    sha256 = hashlib.sha256
    for number, raw in enumerate(stream, start=1):
        line = raw[:-1] if raw[-1:] == b"\n" else raw
        body = line[9:-75]
        stated = line[-66:-2]
        prev_at = body.rfind(b'"prev_hash":"')
        seq_at = body.rfind(b',"seq":')
        if line[:9] != LINE_HEAD or line[-75:-66] != LINE_HASH_KEY or line[-2:] != b'"}' or not 0 <= prev_at < seq_at:
            yield _entry_line(raw, number)
            continue
        try:
            seq = int(body[seq_at + 7 : body.find(b",", seq_at + 7)])
        except ValueError:
            yield _entry_line(raw, number)
            continue
        stated_text = stated.decode("ascii", "replace")
        prev_hash = body[prev_at + 13 : prev_at + 77].decode("ascii", "replace")
        intact = sha256(ENTRY_TAG + body).hexdigest() == stated_text
        yield seq, prev_hash, stated_text, intact, _line_time(body, number)


def _csv(stream: IO[bytes]) -> Iterator[Entry]:
    rows = csv.reader(io.TextIOWrapper(stream, encoding="utf-8", newline=""))
    if tuple(next(rows, ())) != CSV_COLUMNS:
        raise not_intact("entries.csv does not start with the expected header")
    for number, row in enumerate(rows, start=2):
        try:
            if len(row) != len(CSV_COLUMNS):
                raise ValueError(f"{len(row)} columns")
            seq = int(row[0])
            entry = dict(zip(FIELDS, (seq, *row[1:8], json.loads(row[8]), row[9]), strict=True))
        except ValueError as exc:
            raise not_intact(f"line {number} of entries.csv is not an audit entry ({exc})") from exc
        yield seq, row[9], row[10], line_hash(entry_line(entry)) == row[10], row[1]


def _intact(seq: int, intact: bool) -> None:
    if not intact:
        raise not_intact("its content does not match its hash: the entry was altered", seq=seq)


def walk_all(entries: Iterator[Entry], walk: Walk, result: Result) -> None:
    """Every entry from the walk's start on, in order: sequence, content, link, then the tree and checkpoints."""
    expected = walk.tree.size + 1
    for seq, prev_hash, entry_hash, intact, at in entries:
        if seq > expected:
            raise not_intact(f"is missing (entry #{seq} comes next): entries were removed or reordered", seq=expected)
        if seq < expected:
            raise not_intact("appears a second time: an entry was inserted, repeated or reordered", seq=seq)
        _intact(seq, intact)
        walk.link(seq, prev_hash)
        walk.add(entry_hash, at)
        result.entries += 1
        expected += 1


def _walk_jsonl(stream: IO[bytes], walk: Walk, result: Result) -> None:
    """A complete JSON Lines export: the same checks as ``walk_all`` over ``_jsonl``, in one tight loop.

    This is the path a million-entry bundle takes, so it reads the stream in
    large blocks, keeps hashes as bytes, and grows the Merkle frontier in
    place. Any line it cannot read the fast way goes through ``_entry_line``.
    """
    sha256 = hashlib.sha256
    tree, stack = walk.tree, walk.tree.stack
    head = walk.head.encode()
    expected = tree.size + 1
    next_size = walk.pending[-1].size if walk.pending else -1
    # Only the first entry after each checkpoint has its time read: the one that waited longest.
    timed = walk.allowance is not None
    want_time = timed and walk.waiting is None
    rest, number = b"", 0
    while True:
        block = stream.read(1 << 20)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        if not block and rest:
            lines.append(rest)
            rest = b""
        for line in lines:
            number += 1
            body = line[9:-75]
            stated = line[-66:-2]
            prev_at = body.rfind(b'"prev_hash":"')
            seq_at = body.rfind(b',"seq":')
            framed = line[:9] == LINE_HEAD and line[-75:-66] == LINE_HASH_KEY and line[-2:] == b'"}'
            try:
                if not framed or not 0 <= prev_at < seq_at:
                    raise ValueError
                seq = int(body[seq_at + 7 : body.find(b",", seq_at + 7)])
                prev_hash = body[prev_at + 13 : prev_at + 77]
            except ValueError:
                seq, prev_text, stated_text, _, _ = _entry_line(line, number)
                prev_hash, stated = prev_text.encode(), stated_text.encode()
            if seq != expected:
                if seq > expected:
                    raise not_intact(
                        f"is missing (entry #{seq} comes next): entries were removed or reordered", seq=expected
                    )
                raise not_intact("appears a second time: an entry was inserted, repeated or reordered", seq=seq)
            digest = sha256(ENTRY_TAG + body).digest()
            if digest.hex().encode() != stated:
                raise not_intact("its content does not match its hash: the entry was altered", seq=seq)
            if prev_hash != head:
                raise not_intact(
                    f"its prev_hash does not link to entry #{seq - 1}: an entry before it was removed, "
                    "inserted or altered",
                    seq=seq,
                )
            value, carry = sha256(b"\x00" + digest).digest(), tree.size
            while carry & 1:
                value = sha256(b"\x01" + stack.pop() + value).digest()
                carry >>= 1
            if want_time:
                walk.waiting = (seq, _line_time(body, number))
                want_time = False
            stack.append(value)
            tree.size += 1
            head = stated
            expected += 1
            result.entries += 1
            if tree.size == next_size:
                walk.head = head.decode()
                walk.checkpoint_reached()
                next_size = walk.pending[-1].size if walk.pending else -1
                want_time = timed
        if not block:
            break
    walk.head = head.decode()


def _walk_leaves(entries: Iterator[Entry], leaves: IO[bytes], walk: Walk, result: Result) -> None:
    upcoming = next(entries, None)
    for raw in leaves:
        value = raw.rstrip(b"\n").decode("ascii", "replace")
        seq = walk.tree.size + 1
        at = None
        while upcoming is not None and upcoming[0] <= seq:
            if upcoming[0] < seq:
                raise not_intact("is out of order or repeated in the entries file", seq=upcoming[0])
            _intact(seq, upcoming[3])
            if upcoming[2] != value:
                raise not_intact("does not match its leaf in the tree: the entry was altered", seq=seq)
            walk.link(seq, upcoming[1])
            result.entries += 1
            # Left-out entries show only their hash: the first exported one after a checkpoint is timed.
            at = upcoming[4]
            upcoming = next(entries, None)
        try:
            walk.add(value, at)
        except ValueError as exc:
            raise not_intact("leaves.txt holds no valid hash for it", seq=seq) from exc
    if upcoming is not None:
        raise not_intact("lies outside the tree the bundle covers", seq=upcoming[0])


# --- bundles -------------------------------------------------------------------------------------


def verify_bundle(
    source: str | Path | IO[bytes], *, jwks: dict[str, Any] | None = None, allowance: Allowance | None = None
) -> Result:
    """Verify an export bundle; ``jwks`` pins the trusted keys (else the bundle's own keys.json is used).

    ``allowance`` replaces the checkpoint allowance the signed manifest states.
    """
    result = Result(kind="bundle", keys_pinned=jwks is not None)

    def check() -> None:
        try:
            archive = zipfile.ZipFile(source)
        except (OSError, zipfile.BadZipFile) as exc:
            raise not_intact(f"the bundle is not a readable zip file ({exc})") from exc
        with archive:
            _check_bundle(archive, jwks, result, allowance)

    return run_checks(result, check)


def _check_bundle(
    archive: zipfile.ZipFile, jwks: dict[str, Any] | None, result: Result, allowance: Allowance | None
) -> None:
    try:
        raw_manifest = archive.read("manifest.json")
        manifest = json.loads(raw_manifest)
        signature = json.loads(archive.read("manifest.sig"))
        if not isinstance(manifest, dict) or not isinstance(signature, dict):
            raise ValueError("not JSON objects")
    except (KeyError, ValueError) as exc:
        raise not_intact(f"the bundle has no readable manifest.json and manifest.sig ({exc})") from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise not_intact(f"the manifest is not a {BUNDLE_FORMAT} manifest")
    if jwks is None:
        result.notes.append(
            "keys were taken from the bundle itself; pin them with --keys (from /.well-known/jwks.json) "
            "to know the bundle comes from the deployment you trust"
        )
        try:
            jwks = json.loads(archive.read(str(manifest.get("keys", "keys.json"))))
        except (KeyError, ValueError) as exc:
            raise not_intact("the bundle carries no readable keys.json") from exc
    keys = load_keys(jwks)
    later: list[Finding] = []
    kid, value = str(signature.get("kid", "")), str(signature.get("signature", ""))
    if not _signed(keys, kid, MANIFEST_TAG + raw_manifest, value):
        later.append(Finding(f"the manifest's signature does not verify with a trusted key (kid {kid!r})"))
    later.extend(_file_findings(archive, manifest))
    try:
        _walk_bundle(archive, manifest, keys, result, allowance)
    finally:
        result.findings.extend(later)


def _file_findings(archive: zipfile.ZipFile, manifest: dict[str, Any]) -> list[Finding]:
    findings = []
    files = manifest.get("files")
    listed: dict[str, Any] = files if isinstance(files, dict) else {}
    present = set(archive.namelist())
    for name, expected in sorted(listed.items()):
        if name not in present:
            findings.append(Finding(f"{name} is listed in the manifest but missing from the bundle"))
            continue
        digest = hashlib.sha256()
        with archive.open(name) as member:
            while block := member.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != expected:
            findings.append(Finding(f"{name} does not match its SHA-256 in the signed manifest"))
    for name in sorted(present - set(listed) - {"manifest.json", "manifest.sig"}):
        findings.append(Finding(f"{name} is in the bundle but not in the manifest"))
    return findings


def _walk_bundle(
    archive: zipfile.ZipFile,
    manifest: dict[str, Any],
    keys: dict[str, Ed25519PublicKey],
    result: Result,
    allowance: Allowance | None,
) -> None:
    try:
        from_size = int(manifest["tree"]["from_size"])
        to_size = int(manifest["tree"]["to_size"])
        leaves_name = manifest["tree"].get("leaves")
        entries_name = str(manifest["entries"]["file"])
        entries_format = manifest["entries"]["format"]
        count = int(manifest["entries"]["count"])
        checkpoints_name = str(manifest["checkpoints"]["file"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise not_intact(f"the manifest lacks the tree range or the file names ({exc})") from exc
    try:
        with archive.open(checkpoints_name) as stream:
            checkpoints = [Checkpoint.parse(json.loads(line)) for line in stream if line.strip()]
    except (KeyError, ValueError) as exc:
        raise not_intact(f"{checkpoints_name} is missing or not JSON Lines") from exc
    # The export's signed request time ends the log the bundle describes: entries after its last
    # checkpoint are measured against it, as the live ledger's are against the clock.
    allowance = allowance or Allowance.parse(manifest.get("allowance"))
    end_at = manifest.get("requested_at")
    if allowance is None:
        result.notes.append(
            "the manifest states no checkpoint allowance, so how long entries waited for a signed checkpoint "
            "was not checked; pass --allowance-minutes and --allowance-entries to check it"
        )
    start = None
    if from_size:
        start = next((cp for cp in checkpoints if cp.size == from_size), None)
        if start is None:
            raise not_intact(f"no checkpoint in the bundle covers its starting size {from_size}")
    walk = Walk(checkpoints, keys, start, allowance=allowance)
    try:
        with archive.open(entries_name) as stream:
            entries = _csv(stream) if entries_format == "csv" else _jsonl(stream)
            if not leaves_name and entries_format != "csv":
                _walk_jsonl(stream, walk, result)
            elif leaves_name:
                with archive.open(str(leaves_name)) as leaves:
                    _walk_leaves(entries, leaves, walk, result)
            else:
                walk_all(entries, walk, result)
        walk.finish(now=str(end_at) if allowance and end_at else None, until="the export")
    except KeyError as exc:
        raise not_intact(f"a file the manifest names is missing ({exc})") from exc
    finally:
        result.size = walk.tree.size
        result.checkpoints = walk.checked
    if walk.tree.size != to_size:
        raise not_intact(f"the bundle should cover entries up to #{to_size} but its tree ends at #{walk.tree.size}")
    if result.entries != count:
        raise not_intact(f"the manifest counts {count} entries but the bundle holds {result.entries}")
    if allowance is not None and (note := walk.young_note()):
        result.notes.append(note)


# --- proofs --------------------------------------------------------------------------------------


def verify_proof(proof: dict[str, Any], *, jwks: dict[str, Any]) -> Result:
    """Verify an inclusion proof: the entry is in the log its signed checkpoint commits to."""
    result = Result(kind="proof")
    return run_checks(result, lambda: _check_proof(proof, load_keys(jwks), result))


def _check_proof(proof: Any, keys: dict[str, Ed25519PublicKey], result: Result) -> None:
    if not isinstance(proof, dict) or proof.get("format") != PROOF_FORMAT:
        raise not_intact(f"this is not a {PROOF_FORMAT} document")
    try:
        entry = proof["entry"]
        seq = int(entry["seq"])
        stated = str(proof["entry_hash"])
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        path = [bytes.fromhex(value) for value in proof["audit_path"]]
        document = {name: entry[name] for name in FIELDS}
    except (KeyError, TypeError, ValueError) as exc:
        raise not_intact(f"the proof is malformed ({exc})") from exc
    checkpoint = Checkpoint.parse(proof.get("checkpoint"))
    if line_hash(entry_line(document)) != stated:
        raise not_intact("its content does not match its hash: the entry was altered", seq=seq)
    if index != seq - 1:
        raise not_intact(f"the proof is for leaf {index}, not this entry's leaf {seq - 1}", seq=seq)
    if size != checkpoint.size:
        raise not_intact(f"the proof is for a tree of {size} entries, the checkpoint covers {checkpoint.size}", seq=seq)
    root = root_from_path(index, size, leaf(stated), path)
    if root is None or root.hex() != checkpoint.root:
        raise not_intact(f"its audit path does not lead to checkpoint #{checkpoint.number}'s root", seq=seq)
    checkpoint.check_signature(keys)
    result.entries, result.size, result.checkpoints = 1, size, 1
    result.notes.append(
        f"entry #{seq} is entry {seq} of the {size} entries signed by checkpoint #{checkpoint.number} "
        f"at {checkpoint.issued_at} (key {checkpoint.kid})"
    )


# --- consent receipts ----------------------------------------------------------------------------


def verify_receipt(document: dict[str, Any], *, jwks: dict[str, Any]) -> Result:
    """Verify a consent receipt and the inclusion proof of its audit entry against pinned keys.

    ``ok`` with ``pending`` set means the signature holds but no checkpoint
    covered the entry when the file was fetched: nothing is proven about the
    ledger yet.
    """
    result = Result(kind="receipt")
    return run_checks(result, lambda: _check_receipt(document, load_keys(jwks), result))


def _receipt_claims(token: Any, keys: dict[str, Ed25519PublicKey]) -> tuple[dict[str, Any], str]:
    """The claims of a receipt JWS signed by a pinned key, and that key's kid."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise not_intact("the receipt's jws is not a compact JWS")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
    except ValueError as exc:
        raise not_intact(f"the receipt's JWS header or claims are not JSON ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise not_intact("the receipt's JWS header and claims must be JSON objects")
    # Only EdDSA, and only a receipt: a capture grant or any other token never passes for one.
    if header.get("alg") != "EdDSA" or "crit" in header or header.get("typ") != RECEIPT_TYP:
        raise not_intact(f"the JWS is not a consent receipt (alg {header.get('alg')!r}, typ {header.get('typ')!r})")
    kid = str(header.get("kid", ""))
    if kid not in keys:
        raise not_intact(f"the receipt is signed with an unknown key (kid {kid!r})")
    if not _signed(keys, kid, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"), parts[2]):
        raise not_intact("the receipt's signature does not verify: it was altered or signed by another key")
    return claims, kid


def _check_receipt(document: Any, keys: dict[str, Ed25519PublicKey], result: Result) -> None:
    if not isinstance(document, dict) or "jws" not in document:
        raise not_intact("this is not a consent receipt (no jws)")
    claims, kid = _receipt_claims(document["jws"], keys)
    if "receipt" in document and document["receipt"] != claims:
        raise not_intact("the readable claims in the file differ from the signed ones")
    receipt_id = str(claims.get("jti", ""))
    try:
        evidence = claims["record"]["evidence"]
        seq, entry_hash = int(evidence["ledger_seq"]), str(evidence["ledger_entry_hash"])
        event = claims["record"]["event"]
        purpose = claims["record"]["processing"]["purposes"][0]["id"]
        category = claims["record"]["processing"]["pii_categories"][0]["id"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise not_intact(f"the signed receipt lacks its ledger evidence ({exc})") from exc
    result.notes.append(
        f"receipt {receipt_id} is signed by key {kid}: consent {event.get('type')} for {category} "
        f"under {purpose} by {claims.get('sub')} at {event.get('timestamp')}, recorded as audit entry #{seq}"
    )
    inclusion = document.get("inclusion")
    if inclusion is None:
        result.pending = str(document.get("inclusion_detail") or "the file carries no inclusion proof")
        return
    _check_proof(inclusion, keys, result)
    proven = str(inclusion.get("entry_hash"))
    if proven != entry_hash or int(inclusion["entry"]["seq"]) != seq:
        raise not_intact(
            f"the proven leaf is not the receipt's audit entry: the receipt names entry #{seq} ({entry_hash[:16]}…), "
            f"the proof entry #{inclusion['entry']['seq']} ({proven[:16]}…)"
        )
    payload = inclusion["entry"].get("payload")
    recorded = payload.get("receipt_id") if isinstance(payload, dict) else None
    if recorded != receipt_id:
        raise not_intact(f"audit entry #{seq} records receipt {recorded!r}, not {receipt_id!r}", seq=seq)


# --- command line --------------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consentry-verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["bundle", "proof", "receipt"], help="what to verify")
    parser.add_argument("path", help="the export zip, the proof JSON file, or the downloaded receipt JSON file")
    parser.add_argument(
        "--keys", "--jwks", dest="keys", help="JWKS file with the trusted keys (from /.well-known/jwks.json)"
    )
    parser.add_argument(
        "--allowance-minutes",
        type=float,
        help="how long an entry may wait for a signed checkpoint (default: what the bundle's manifest states)",
    )
    parser.add_argument(
        "--allowance-entries", type=int, help="how many entries may wait for a signed checkpoint (likewise)"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    args = parser.parse_args(argv)
    allowance = None
    if args.allowance_minutes is not None or args.allowance_entries is not None:
        if args.allowance_minutes is None or args.allowance_entries is None:
            parser.error("pass --allowance-minutes and --allowance-entries together")
        if args.allowance_minutes < 0 or args.allowance_entries < 1:
            parser.error("the allowance is at least 0 minutes and 1 entry")
        allowance = Allowance(seconds=round(args.allowance_minutes * 60), entries=args.allowance_entries)
    try:
        jwks = _read_json(args.keys) if args.keys else None
        if args.kind == "bundle":
            if not Path(args.path).is_file():
                raise OSError(f"{args.path}: no such file")
            result = verify_bundle(args.path, jwks=jwks, allowance=allowance)
        else:
            if jwks is None:
                parser.error(f"a {args.kind} is verified against pinned keys: pass --keys")
            verifier = verify_proof if args.kind == "proof" else verify_receipt
            result = verifier(_read_json(args.path), jwks=jwks)
    except (OSError, ValueError) as exc:
        print(f"consentry-verify: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        _print(result)
    if not result.ok:
        return 1
    return 3 if result.pending else 0


def _print(result: Result) -> None:
    if result.ok and result.kind == "receipt":
        print("OK: receipt signature verified" if result.pending else "OK: receipt verified and proven in the ledger")
    elif result.ok:
        print(
            f"OK: {result.kind} verified: {result.entries} entries, tree of {result.size}, "
            f"{result.checkpoints} signed checkpoints ({result.seconds:.2f} s)"
        )
    else:
        print(f"FAILED: the {result.kind} is not intact")
        for finding in result.findings:
            print(f"  {finding}")
    for note in result.notes:
        print(f"note: {note}")
    if result.pending:
        print(f"NOT YET PROVEN: {result.pending}")


if __name__ == "__main__":
    sys.exit(main())

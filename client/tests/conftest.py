"""Bundles and proofs built from the published format alone, with a throwaway key: no Django here."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from consentry_client.merkle import CompactTree, leaf, node, tree_root
from consentry_client.verify import ENTRY_TAG, MANIFEST_TAG, Checkpoint, _thumbprint
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(ENTRY_TAG + canonical(entry)).hexdigest()


@dataclass
class Signer:
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def x(self) -> str:
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return b64url(raw)

    @property
    def kid(self) -> str:
        return _thumbprint(self.x)

    def jwks(self) -> dict:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def sign(self, message: bytes) -> str:
        return b64url(self.key.sign(message))


def make_entries(count: int) -> list[dict]:
    entries, previous = [], "0" * 64
    for seq in range(1, count + 1):
        entry = {
            "seq": seq,
            "at": f"2026-03-01T09:{seq // 60:02d}:{seq % 60:02d}.000000Z",
            "event_type": ("consent.granted", "consent.withdrawn")[seq % 2],
            "actor": f"user:u{seq % 3}",
            "subject": f"E{1000 + seq % 4}",
            "object_type": "consent_event",
            "object_id": str(seq),
            "region": ("US-NY", "DE", "")[seq % 3],
            "payload": {"n": seq, "note": 'quote " and \\"prev_hash\\":\\"x'},
            "prev_hash": previous,
        }
        previous = entry_hash(entry)
        entries.append({"entry": entry, "hash": previous})
    return entries


def make_checkpoints(
    entries: list[dict], sizes: list[int], signer: Signer, *, times: list[str] | None = None
) -> list[dict]:
    hashes = [line["hash"] for line in entries]
    checkpoints, previous = [], ""
    for number, size in enumerate(sizes, start=1):
        tree = CompactTree()
        for value in hashes[:size]:
            tree.push(leaf(value))
        cp = Checkpoint(
            number=number,
            size=size,
            root=tree.root().hex(),
            head=hashes[size - 1],
            prev_signature=previous,
            issued_at=times[number - 1] if times else f"2026-03-02T00:00:{number:02d}.000000Z",
            kid=signer.kid,
            signature="",
            frontier=tuple(value.hex() for value in tree.stack),
        )
        previous = signer.sign(cp.statement())
        checkpoints.append({**cp.__dict__, "frontier": list(cp.frontier), "signature": previous})
    return checkpoints


def write_bundle(
    path: Path,
    entries: list[dict],
    checkpoints: list[dict],
    signer: Signer,
    *,
    selected: list[int] | None = None,
    from_size: int = 0,
    to_size: int | None = None,
    manifest_extra: dict | None = None,
    render: Callable[[dict], bytes] = canonical,
) -> Path:
    """A bundle in the consentry-audit-export/v1 layout; ``selected`` seqs make it a filtered one.

    ``to_size`` past the last checkpoint leaves entries uncovered; ``manifest_extra`` adds signed
    manifest fields (``allowance``, ``requested_at``); ``render`` writes each entry's line.
    """
    to_size = to_size or checkpoints[-1]["size"]
    lines = [line for line in entries if selected is None or line["entry"]["seq"] in selected]
    files = {
        "entries.jsonl": b"".join(render(line) + b"\n" for line in lines),
        "checkpoints.jsonl": b"".join(canonical(cp) + b"\n" for cp in checkpoints if cp["size"] >= (from_size or 1)),
        "keys.json": json.dumps(signer.jwks()).encode(),
    }
    if selected is not None:
        files["leaves.txt"] = b"".join(line["hash"].encode() + b"\n" for line in entries[from_size:to_size])
    manifest = {
        "format": "consentry-audit-export/v1",
        "entries": {"file": "entries.jsonl", "format": "jsonl", "count": len(lines)},
        "tree": {"from_size": from_size, "to_size": to_size, "leaves": "leaves.txt" if selected is not None else None},
        "checkpoints": {"file": "checkpoints.jsonl"},
        "keys": "keys.json",
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        **(manifest_extra or {}),
    }
    raw = json.dumps(manifest, indent=2, sort_keys=True).encode()
    files["manifest.json"] = raw
    files["manifest.sig"] = json.dumps({"kid": signer.kid, "signature": signer.sign(MANIFEST_TAG + raw)}).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def audit_path(hashes: list[str], index: int, size: int) -> list[str]:
    """RFC 9162 PATH(index, D[size]) by the recursive definition."""
    leaves = [leaf(value) for value in hashes[:size]]

    def path(m: int, nodes: list[bytes]) -> list[bytes]:
        if len(nodes) <= 1:
            return []
        k = 1 << ((len(nodes) - 1).bit_length() - 1)
        if m < k:
            return [*path(m, nodes[:k]), tree_root(nodes[k:])]
        return [*path(m - k, nodes[k:]), tree_root(nodes[:k])]

    return [value.hex() for value in path(index, leaves)]


def make_proof(entries: list[dict], checkpoint: dict, seq: int) -> dict:
    hashes = [line["hash"] for line in entries]
    return {
        "format": "consentry-audit-inclusion-proof/v1",
        "entry": entries[seq - 1]["entry"],
        "entry_hash": hashes[seq - 1],
        "leaf_index": seq - 1,
        "tree_size": checkpoint["size"],
        "audit_path": audit_path(hashes, seq - 1, checkpoint["size"]),
        "checkpoint": {k: v for k, v in checkpoint.items() if k != "frontier"},
    }


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def ledger(signer):
    """45 entries; checkpoints #1 to #4 at sizes 10, 20, 30, 45."""
    entries = make_entries(45)
    return entries, make_checkpoints(entries, [10, 20, 30, 45], signer)


__all__ = ("canonical", "entry_hash", "make_proof", "node", "write_bundle")

"""RFC 9162 Merkle trees over Consentry audit entry hashes (standard library only).

Leaf = SHA-256(0x00 || entry-hash bytes); node = SHA-256(0x01 || left || right);
a tree of n > 1 leaves splits at the largest power of two below n.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf(entry_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(entry_hash_hex)).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """MTH by the RFC's recursive definition (small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node(tree_root(leaves[:split]), tree_root(leaves[split:]))


class CompactTree:
    """A tree grown leaf by leaf, keeping only its perfect-subtree roots (one per set bit of the size)."""

    __slots__ = ("size", "stack")

    def __init__(self, size: int = 0, stack: Sequence[bytes] = ()):
        if len(stack) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} subtree roots, not {len(stack)}")
        self.size = size
        self.stack = list(stack)

    def push(self, leaf_hash: bytes) -> None:
        value, carry = leaf_hash, self.size
        while carry & 1:
            value = node(self.stack.pop(), value)
            carry >>= 1
        self.stack.append(value)
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        value = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            value = node(left, value)
        return value


def root_from_path(index: int, size: int, leaf_hash: bytes, path: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2: the root an inclusion path leads to, or None if it cannot fit the tree."""
    if index >= size or index < 0:
        return None
    fn, sn, value = index, size - 1, leaf_hash
    for sibling in path:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            value = node(sibling, value)
            while fn % 2 == 0 and fn != 0:
                fn //= 2
                sn //= 2
        else:
            value = node(value, sibling)
        fn //= 2
        sn //= 2
    return value if sn == 0 else None

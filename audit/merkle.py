"""RFC 9162 Merkle tree hashing over the ledger's entry hashes.

The tree's leaves are the entries' hashes in sequence order. Hashing follows
RFC 9162 §2.1.1: a leaf is SHA-256(0x00 || entry-hash bytes), an interior
node SHA-256(0x01 || left || right) (the two prefixes keep a leaf from ever
passing for a node), and a tree of n leaves splits at the largest power of two
below n, so every left subtree is perfect and aligned.

That shape lets the tree grow without rereading it: the roots of the perfect
subtrees that make up the first n leaves (one per set bit of n, the *compact
range* or frontier) are all a checkpoint keeps to extend the tree by the next
entries, and folding them from the right gives the root. A verifier streams a
million entries through a frontier in one pass with O(log n) memory.

No Django imports: the standalone verifier in ``client/`` implements the same
rules independently, and tests hold the two to the same answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# MTH of the empty tree (RFC 9162 §2.1.1): the hash of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry_hash_hex: str) -> bytes:
    """The tree leaf of one entry, from its hex entry hash."""
    return _sha256(LEAF_PREFIX + bytes.fromhex(entry_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) by the RFC's recursive definition; for small trees and tests."""
    n = len(leaves)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[0]
    k = largest_power_of_two_below(n)
    return node_hash(root_of_leaves(leaves[:k]), root_of_leaves(leaves[k:]))


def largest_power_of_two_below(n: int) -> int:
    """The RFC 9162 split point: the largest power of two strictly less than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def fold(nodes: Sequence[bytes]) -> bytes:
    """The root over consecutive perfect subtrees of decreasing size, folded from the right."""
    if not nodes:
        return EMPTY_ROOT
    root = nodes[-1]
    for node in reversed(nodes[:-1]):
        root = node_hash(node, root)
    return root


class Frontier:
    """The compact range of a growing tree: perfect-subtree roots, one per set bit of ``size``.

    ``append`` costs one leaf hash plus one node hash per trailing one-bit of
    the old size (amortised two hashes per leaf). When ``keep_level`` is set,
    every completed perfect subtree of at least that height is reported in
    ``completed`` as (level, index, hash), so callers can store them for proofs.
    """

    __slots__ = ("completed", "keep_level", "nodes", "size")

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = (), *, keep_level: int | None = None):
        self.size = size
        self.nodes = list(nodes)
        if len(self.nodes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} nodes, not {len(self.nodes)}")
        self.keep_level = keep_level
        self.completed: list[tuple[int, int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        node, level, index = leaf, 0, self.size
        remaining = self.size
        while remaining & 1:
            node = node_hash(self.nodes.pop(), node)
            level += 1
            index >>= 1
            remaining >>= 1
            if self.keep_level is not None and level >= self.keep_level:
                self.completed.append((level, index, node))
        self.nodes.append(node)
        self.size += 1

    def extend_hex(self, entry_hashes: Iterable[str]) -> None:
        for entry_hash in entry_hashes:
            self.append(leaf_hash(entry_hash))

    def root(self) -> bytes:
        return fold(self.nodes)

    def hex_nodes(self) -> list[str]:
        return [node.hex() for node in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Iterable[str], *, keep_level: int | None = None) -> Frontier:
        return cls(size, [bytes.fromhex(node) for node in nodes], keep_level=keep_level)


# A perfect, aligned subtree: its height and index at that height.
PerfectHash = Callable[[int, int], bytes]


def range_hash(start: int, end: int, perfect: PerfectHash) -> bytes:
    """MTH(D[start:end]) for a range the RFC recursion produces (start aligned to its size).

    Such a range is a run of aligned perfect subtrees, one per set bit of its
    length, largest first; ``perfect(level, index)`` supplies each.
    """
    nodes = []
    position, length = start, end - start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            nodes.append(perfect(level, position >> level))
            position += 1 << level
    return fold(nodes)


def inclusion_path(index: int, size: int, perfect: PerfectHash) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    # Walk down from the root, noting each sibling; the RFC lists them bottom-up.
    while end - start > 1:
        k = largest_power_of_two_below(end - start)
        if index - start < k:
            path.append(range_hash(start + k, end, perfect))
            end = start + k
        else:
            path.append(range_hash(start, start + k, perfect))
            start += k
    path.reverse()
    return path


def root_from_inclusion_path(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or ValueError if it cannot fit."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is outside a tree of {size}")
    fn, sn = index, size - 1
    root = leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("the audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            root = node_hash(root, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the audit path is shorter than the tree is deep")
    return root

"""RFC 9162 Merkle trees over the ledger's entry hashes: what the server adds to the shared verifier's.

The tree's leaves are the entries' hashes in sequence order; leaf and node
hashing, the compact tree a verifier streams entries through, and checking an
audit path are ``consentry_client.merkle``'s, the code auditors run offline.
A tree of n leaves splits at the largest power of two below n, so every left
subtree is perfect and aligned: the roots of the perfect subtrees making up
the first n leaves (the frontier) are all a checkpoint keeps to extend the
tree, and a verifier streams a million entries through them in O(log n)
memory.

Here only what the server needs besides: a frontier that reports the perfect
subtrees it completes (stored, so an inclusion proof reads O(log n) rows), and
building audit paths from those subtrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from consentry_client.merkle import EMPTY_ROOT, CompactTree, root_from_path, tree_root
from consentry_client.merkle import leaf as leaf_hash
from consentry_client.merkle import node as node_hash

root_of_leaves = tree_root

__all__ = (
    "EMPTY_ROOT",
    "Frontier",
    "inclusion_path",
    "leaf_hash",
    "node_hash",
    "range_hash",
    "root_from_inclusion_path",
    "root_of_leaves",
)


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


class Frontier(CompactTree):
    """A compact tree that, with ``keep_level`` set, reports each perfect subtree it completes.

    A completed subtree of at least that height lands in ``completed`` as
    (level, index, hash), for the caller to store for inclusion proofs.
    """

    __slots__ = ("completed", "keep_level")

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = (), *, keep_level: int | None = None):
        super().__init__(size, list(nodes))
        self.keep_level = keep_level
        self.completed: list[tuple[int, int, bytes]] = []

    def push(self, leaf: bytes) -> None:
        if self.keep_level is None:
            super().push(leaf)
            return
        node, level, index, remaining = leaf, 0, self.size, self.size
        while remaining & 1:
            node = node_hash(self.stack.pop(), node)
            level += 1
            index >>= 1
            remaining >>= 1
            if level >= self.keep_level:
                self.completed.append((level, index, node))
        self.stack.append(node)
        self.size += 1

    def hex_nodes(self) -> list[str]:
        return [node.hex() for node in self.stack]

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
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or ValueError if it cannot fit the tree."""
    root = root_from_path(index, size, leaf, path)
    if root is None:
        raise ValueError(f"the audit path does not fit leaf {index} of a tree of {size}")
    return root

from __future__ import annotations

import hashlib

import pytest

from audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    inclusion_path,
    leaf_hash,
    node_hash,
    range_hash,
    root_from_inclusion_path,
    root_of_leaves,
)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(hashlib.sha256(str(i).encode()).hexdigest()) for i in range(n)]


def _perfect(leaves: list[bytes]):
    return lambda level, index: root_of_leaves(leaves[index << level : (index + 1) << level])


def test_leaf_and_node_hashes_are_domain_separated_as_in_rfc_9162():
    entry = "ab" * 32
    assert leaf_hash(entry) == hashlib.sha256(b"\x00" + bytes.fromhex(entry)).digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert root_of_leaves([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_seven_leaves_split_at_four_then_two_then_one():
    a, b, c, d, e, f, g = _leaves(7)
    expected = node_hash(node_hash(node_hash(a, b), node_hash(c, d)), node_hash(node_hash(e, f), g))
    assert root_of_leaves([a, b, c, d, e, f, g]) == expected


@pytest.mark.parametrize("size", [*range(0, 70), 255, 256, 257, 1000])
def test_a_growing_frontier_gives_the_rfc_root_at_every_size(size):
    leaves = _leaves(size)
    frontier = Frontier()
    for leaf in leaves:
        frontier.push(leaf)
    assert frontier.root() == root_of_leaves(leaves)
    assert len(frontier.stack) == size.bit_count()


def test_a_frontier_restored_from_hex_continues_where_it_stopped():
    leaves = _leaves(45)
    first = Frontier()
    for leaf in leaves[:29]:
        first.push(leaf)
    resumed = Frontier.from_hex(29, first.hex_nodes())
    for leaf in leaves[29:]:
        resumed.push(leaf)
    assert resumed.root() == root_of_leaves(leaves)


def test_a_frontier_with_the_wrong_number_of_nodes_is_refused():
    with pytest.raises(ValueError):
        Frontier(5, [b"x" * 32])


def test_completed_subtrees_are_reported_with_their_position():
    leaves = _leaves(20)
    frontier = Frontier(keep_level=2)
    for leaf in leaves:
        frontier.push(leaf)
    expected = {
        (level, index): root_of_leaves(leaves[index << level : (index + 1) << level])
        for level in (2, 3, 4)
        for index in range(20 >> level)
    }
    assert {(level, index): node for level, index, node in frontier.completed} == expected


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33, 64, 100])
def test_every_inclusion_path_leads_to_the_root(size):
    leaves = _leaves(size)
    root = root_of_leaves(leaves)
    for index in range(size):
        path = inclusion_path(index, size, _perfect(leaves))
        assert root_from_inclusion_path(index, size, leaves[index], path) == root


def test_an_inclusion_path_for_another_leaf_or_size_fails():
    leaves = _leaves(13)
    root = root_of_leaves(leaves)
    path = inclusion_path(5, 13, _perfect(leaves))
    assert root_from_inclusion_path(5, 13, leaves[6], path) != root
    assert root_from_inclusion_path(6, 13, leaves[5], path) != root
    with pytest.raises(ValueError):
        root_from_inclusion_path(5, 3, leaves[5], path)
    with pytest.raises(ValueError):
        root_from_inclusion_path(5, 13, leaves[5], path[:-1])


def test_range_hash_composes_aligned_perfect_subtrees():
    leaves = _leaves(48)
    assert range_hash(32, 45, _perfect(leaves)) == root_of_leaves(leaves[32:45])

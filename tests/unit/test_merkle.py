"""RFC 9162 tree hashing, proofs and their checks, against an independent computation:
the recursive definitions of RFC 6962 §2.1 written out naively here."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketflow.domain.merkle import (
    EMPTY_ROOT,
    Node,
    StoredTree,
    Tree,
    append_leaves,
    appended_nodes,
    frontier,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over the entries themselves (RFC 6962 §2.1)."""
    if not d:
        return h(b"")
    if len(d) == 1:
        return h(b"\x00" + d[0])
    k = k_of(len(d))
    return h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = k_of(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    if m == len(d):
        return [] if b else [mth(d)]
    k = k_of(len(d))
    if m <= k:
        return [*subproof(m, d[:k], b), mth(d[k:])]
    return [*subproof(m - k, d[k:], False), mth(d[:k])]


def entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(n)]


def test_the_empty_tree_hashes_the_empty_string() -> None:
    assert Tree([]).root() == EMPTY_ROOT == h(b"")


def test_the_rfc_6962_test_vector_of_one_empty_leaf() -> None:
    # RFC 6962 / CT test data: MTH of one empty entry
    assert Tree([leaf_hash(b"")]).root().hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")


@pytest.mark.parametrize("n", range(1, 34))
def test_heads_and_proofs_match_the_recursive_definitions(n: int) -> None:
    d = entries(n)
    tree = Tree([leaf_hash(e) for e in d])
    assert tree.root() == mth(d)
    for m in range(n):
        proof = tree.inclusion_proof(m)
        assert proof == path(m, d)
        assert verify_inclusion(leaf_hash(d[m]), m, n, proof, tree.root())
        assert tree.root(m + 1) == mth(d[:m + 1])
    for m in range(1, n):
        proof = tree.consistency_proof(m)
        assert proof == subproof(m, d, True)
        assert verify_consistency(m, n, mth(d[:m]), mth(d), proof)


@given(st.integers(2, 70), st.data())
def test_proofs_fail_for_another_leaf_root_or_position(n: int, data: st.DataObject) -> None:
    d = entries(n)
    tree = Tree([leaf_hash(e) for e in d])
    m = data.draw(st.integers(0, n - 1))
    proof = tree.inclusion_proof(m)
    assert not verify_inclusion(leaf_hash(b"forged"), m, n, proof, tree.root())
    assert not verify_inclusion(leaf_hash(d[m]), (m + 1) % n, n, proof, tree.root())
    old = data.draw(st.integers(1, n - 1))
    consistency = tree.consistency_proof(old)
    forged = mth([*d[:old - 1], b"forged"])
    assert not verify_consistency(old, n, forged, tree.root(), consistency)
    assert not verify_consistency(old, n, tree.root(old), h(b"other"), consistency)
    if consistency:
        assert not verify_consistency(old, n, tree.root(old), tree.root(), consistency[:-1])


def stored(appends: list[list[bytes]]) -> tuple[dict[Node, bytes], list[int]]:
    """The perfect subtree roots a store keeps after these appends, each one started
    from the frontier the nodes stored so far hold; and the fetches made."""
    nodes: dict[Node, bytes] = {}
    size = 0
    for leaves in appends:
        start = [nodes[node] for node in frontier(size)]
        nodes.update({(level, index): found
                      for level, index, found in appended_nodes(size, start, leaves)})
        size += len(leaves)
    return nodes, []


def stored_tree(nodes: dict[Node, bytes], size: int, reads: list[int]) -> StoredTree:
    def fetch(wanted: object) -> dict[Node, bytes]:
        asked = set(wanted)  # type: ignore[call-overload]
        reads.append(len(asked))
        return {node: nodes[node] for node in asked if node in nodes}
    return StoredTree(size, fetch)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.data())
def test_stored_subtree_roots_give_the_heads_and_proofs_of_the_recursive_definitions(
        batches: list[int], data: st.DataObject) -> None:
    d = entries(sum(batches))
    appends, start = [], 0
    for count in batches:  # appended in transactions of random sizes
        appends.append([leaf_hash(e) for e in d[start:start + count]])
        start += count
    nodes, reads = stored(appends)
    n = len(d)
    tree = stored_tree(nodes, n, reads)
    assert tree.root() == mth(d) == Tree([leaf_hash(e) for e in d]).root()
    m = data.draw(st.integers(0, n - 1), label="leaf")
    assert tree.leaf(m) == leaf_hash(d[m])
    assert tree.inclusion_proof(m) == path(m, d)
    assert tree.inclusion_proofs([m, n - 1 - m]) == [path(m, d), path(n - 1 - m, d)]
    size = data.draw(st.integers(1, n), label="size")
    assert tree.root(size) == mth(d[:size])
    old = data.draw(st.integers(1, size), label="old size")
    assert tree.consistency_proof(old, size) == (subproof(old, d[:size], True)
                                                 if old < size else [])
    assert verify_consistency(old, size, mth(d[:old]), mth(d[:size]),
                              tree.consistency_proof(old, size))


@given(st.integers(1, 3000), st.integers(0, 2999))
def test_a_head_or_proof_reads_logarithmically_many_stored_nodes(n: int, m: int) -> None:
    leaves = [leaf_hash(e) for e in entries(n)]
    nodes, reads = stored([leaves])
    assert len(nodes) == 2 * n - bin(n).count("1")  # every perfect subtree, leaves too
    tree = stored_tree(nodes, n, reads)
    tree.root()
    tree.inclusion_proof(m % n)
    tree.consistency_proof(m % n)
    assert max(reads) <= 2 * n.bit_length()
    assert tree.inclusion_proof(m % n) == Tree(leaves).inclusion_proof(m % n)


def test_a_missing_stored_root_is_a_lookup_error_not_a_wrong_proof() -> None:
    nodes, reads = stored([[leaf_hash(e) for e in entries(5)]])
    del nodes[(2, 0)]
    with pytest.raises(LookupError, match=r"\(2, 0\)"):
        stored_tree(nodes, 5, reads).root()


def test_an_append_to_a_frontier_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier of 2 hashes, not 1"):
        append_leaves(3, [h(b"one")], [h(b"leaf")])

"""RFC 9162 tree hashing, proofs and their checks, against an independent computation:
the recursive definitions of RFC 6962 §2.1 written out naively here."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketflow.domain.merkle import (
    EMPTY_ROOT,
    Tree,
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

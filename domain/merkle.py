"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing, proofs and their checks.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the tree head of
n leaves splits them at the largest power of two below n (RFC 9162 §2.1.1). Proofs are
made from the leaf hashes (§2.1.3.1, §2.1.4.1) and checked with the verifier's
algorithms of §2.1.3.2 and §2.1.4.2, which need nothing but the proof: that is what a
third party runs.

Every hash a head or a proof needs is the root of a range of leaves whose size, written
in binary, splits it into perfect subtrees (2**level leaves, aligned): a `Node`. A store
keeps every perfect subtree's root as its leaves arrive (`appended_nodes`, from the
current tree's `frontier`), so `StoredTree` answers a head or a proof with O(log n) of
them instead of every leaf. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    """The Merkle tree over a sequence of leaf hashes. Its perfect subtrees' roots are
    computed once, level by level (a million leaves: a second, not the three of a
    recursion), so many proofs of one tree cost little more than its head."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.leaves = leaves
        self._levels: list[Sequence[bytes]] = []

    @property
    def size(self) -> int:
        return len(self.leaves)

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (all of them by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")
        return EMPTY_ROOT if size == 0 else self._mth(0, size)

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH of leaves lo..hi-1, a range of RFC 9162's splits: its pieces folded."""
        if not self._levels:
            self._levels = _perfect_levels(self.leaves)
        return fold([self._levels[level][index] for level, index in pieces(lo, hi)])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        proof: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = lo + _split(hi - lo)
            if index < k:
                proof.append(self._mth(k, hi))
                hi = k
            else:
                proof.append(self._mth(lo, k))
                lo = k
        return proof[::-1]

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """PROOF(old_size, D[0:size]) of RFC 9162 §2.1.4.1."""
        size = self.size if size is None else size
        if not 0 <= old_size <= size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {size}")
        if old_size in (0, size):
            return []
        return self._subproof(old_size, 0, size, True)

    def _subproof(self, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
        if m == hi - lo:
            return [] if whole else [self._mth(lo, hi)]
        k = _split(hi - lo)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, whole), self._mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self._mth(lo, lo + k)]


def _perfect_levels(leaves: Sequence[bytes]) -> list[Sequence[bytes]]:
    """Level by level, the roots of every perfect aligned subtree of `leaves`."""
    sha256 = hashlib.sha256
    levels = [leaves]
    row = leaves
    while len(row) > 1:
        row = [sha256(b"\x01" + row[at] + row[at + 1]).digest()
               for at in range(0, len(row) - 1, 2)]
        levels.append(row)
    return levels


#: (level, index): the perfect subtree of the 2**level leaves from index * 2**level on.
Node = tuple[int, int]


def pieces(lo: int, hi: int) -> list[Node]:
    """The perfect subtrees that make up leaves lo..hi-1 in RFC 9162's tree, largest
    first (hi - lo in binary); MTH of the range is their hashes folded from the right."""
    found: list[Node] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        if lo % (1 << level):
            raise ValueError(f"leaves {lo}..{hi - 1} are not a subtree of the log")
        found.append((level, lo >> level))
        lo += 1 << level
    return found


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its pieces' hashes (largest first)."""
    found = hashes[-1]
    for left in reversed(hashes[:-1]):
        found = node_hash(left, found)
    return found


def frontier(size: int) -> list[Node]:
    """The perfect subtrees of a tree of `size` leaves that are still to be completed:
    what an append starts from, and what its head folds."""
    return pieces(0, size)


def appended_nodes(size: int, frontier_hashes: Sequence[bytes],
                   leaves: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
    """Every perfect subtree root (level, index, hash) that `leaves` complete when
    appended to a tree of `size` leaves whose frontier has `frontier_hashes`: each leaf
    itself (level 0), and each node above it that it completes."""
    return append_leaves(size, frontier_hashes, leaves)[0]


def append_leaves(size: int, frontier_hashes: Sequence[bytes], leaves: Iterable[bytes],
                  ) -> tuple[list[tuple[int, int, bytes]], list[bytes]]:
    """`appended_nodes`, and the frontier's hashes once they are appended."""
    levels, hashes = _stack(size, frontier_hashes)
    made: list[tuple[int, int, bytes]] = []
    sha256 = hashlib.sha256
    for index, leaf in enumerate(leaves, start=size):
        level, found = 0, leaf
        made.append((0, index, leaf))
        while levels and levels[-1] == level:
            levels.pop()
            found = sha256(b"\x01" + hashes.pop() + found).digest()
            level += 1
            made.append((level, index >> level, found))
        levels.append(level)
        hashes.append(found)
    return made, hashes


def _stack(size: int, frontier_hashes: Sequence[bytes]) -> tuple[list[int], list[bytes]]:
    """The levels of a tree's frontier (the set bits of its size, largest first) and a
    copy of their hashes: what an append pushes onto and merges."""
    levels = [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]
    if len(levels) != len(frontier_hashes):
        raise ValueError(f"a tree of {size} leaves has a frontier of {len(levels)} hashes,"
                         f" not {len(frontier_hashes)}")
    return levels, list(frontier_hashes)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are PATH(index, D[0:size]), in the proof's order."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = lo + _split(hi - lo)
        if index < k:
            ranges.append((k, hi))
            hi = k
        else:
            ranges.append((lo, k))
            lo = k
    return ranges[::-1]


def consistency_ranges(old_size: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes are PROOF(old_size, D[0:size]), in the proof's order
    (SUBPROOF of RFC 9162 §2.1.4.1 unrolled)."""
    if not 0 <= old_size <= size:
        raise ValueError(f"no consistency proof from {old_size} to {size}")
    if old_size in (0, size):
        return []
    outer: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            outer.append((lo + k, hi))
            hi = lo + k
        else:
            outer.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    return ([] if whole else [(lo, hi)]) + outer[::-1]


class StoredTree:
    """The tree of `size` leaves as a store keeps it: the roots of its perfect subtrees,
    fetched by `fetch` (which answers the nodes it holds among those asked for). A head,
    an inclusion proof or a consistency proof reads O(log size) nodes, in one fetch."""

    def __init__(self, size: int,
                 fetch: Callable[[Collection[Node]], Mapping[Node, bytes]]) -> None:
        self.size = size
        self.fetch = fetch

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")
        return self._hashes([(0, size)])[0] if size else EMPTY_ROOT

    def leaf(self, index: int) -> bytes:
        return self._hashes([(index, index + 1)])[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not size <= self.size:
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        return self._hashes(inclusion_ranges(index, size))

    def inclusion_proofs(self, indexes: Sequence[int]) -> list[list[bytes]]:
        """Many leaves' proofs in the tree as it stands, with one fetch."""
        ranges = [inclusion_ranges(index, self.size) for index in indexes]
        found = iter(self._hashes([r for proof in ranges for r in proof]))
        return [[next(found) for _ in proof] for proof in ranges]

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        if not size <= self.size:
            raise ValueError(f"no consistency proof from {old_size} to {size}")
        return self._hashes(consistency_ranges(old_size, size))

    def _hashes(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        split = [pieces(lo, hi) for lo, hi in ranges]
        wanted = {node for nodes in split for node in nodes}
        found = self.fetch(wanted) if wanted else {}
        missing = wanted - set(found)
        if missing:
            raise LookupError(f"{len(missing)} subtree roots are not stored, e.g."
                              f" (level, index) {min(missing)}")
        return [fold([found[node] for node in nodes]) for nodes in split]


def root_of(leaves: Sequence[bytes]) -> bytes:
    return Tree(leaves).root()


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: whether `leaf` is leaf `index` of the tree of `size` with `root`."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, size: int, old_root: bytes, root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree (`size`, `root`) extends (`old_size`, `old_root`)."""
    if not 0 <= old_size <= size:
        return False
    if old_size == size:
        return not proof and old_root == root
    if old_size == 0:
        return not proof  # every tree extends the empty one
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == root

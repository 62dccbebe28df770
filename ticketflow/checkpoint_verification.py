"""What `ticketflow checkpoint` signs and `ticketflow verify --checkpoint` checks (SPEC §13).

verify, in order: the checkpoint's signature; a consistency proof (RFC 9162) from the
checkpoint's tree to the log as stored now (the log was not rewritten or cut); then every
leaf recomputed from the stored ticket and session events, compared with the log's, and
the tree head of those recomputed leaves with the checkpoint's root. Each difference is
named: an event edited (rewritten, if its ticket's hash chain still links), deleted,
inserted or moved to another position. Leaves past the checkpoint are compared too, but
only the log vouches for them until the next checkpoint.
"""

from __future__ import annotations

import difflib
import multiprocessing
import os
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid5

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ticketflow.audit_log import AuditLog, Recomputed, StoredLeaf
from ticketflow.checkpoints import Checkpoint, CheckpointError, sign
from ticketflow.domain.chain import chain_hash
from ticketflow.domain.merkle import StoredTree, Tree, verify_consistency
from ticketflow.event_log import Store

#: From this many records on, the stored events' leaves are recomputed in two processes
#: (a quarter of a second to start the second one).
PARALLEL_FROM = 200_000


@dataclass(frozen=True)
class LogFinding:
    problem: str  # signature | log | edited | rewritten | deleted | inserted | moved | root
    detail: str
    leaf: int | None = None  # the position in the log it concerns
    event: str | None = None  # "tenant/ticket@version"
    signed: bool = True  # within the checkpoint's tree (False: after it, only logged)

    def as_dict(self) -> dict[str, Any]:
        return {"problem": self.problem, "detail": self.detail, "leaf": self.leaf,
                "event": self.event, "signed": self.signed}


def checkpoint(store: Store, private_key: Ed25519PrivateKey, at: datetime) -> Checkpoint:
    """The signed head of the audit log as it stands."""
    tree = AuditLog(store.event_log).tree()  # O(log n) stored roots
    return sign(tree.size, tree.root(), at, private_key)


def audit(store: Store, text: str, public_key: Ed25519PublicKey,
          workers: int | None = None) -> list[LogFinding]:
    """Findings ([] when the store holds exactly what the checkpoint signed, and more).
    `workers`: processes recomputing the stored events' leaves (by default two on a
    machine with more than one core once the store holds `PARALLEL_FROM` records)."""
    try:
        signed = Checkpoint.parse(text)
        signed.verify(public_key)
    except CheckpointError as exc:
        return [LogFinding("signature", str(exc))]
    audit_log = AuditLog(store.event_log)
    shares = _shares(store, workers)
    with _Others(store, shares[:-1]) as others:  # the first shares, read meanwhile
        logged = audit_log.logged()
        as_logged = Tree(logged.leaves)
        findings = _consistency(signed, as_logged) + _roots(audit_log.tree(), as_logged)
        mine = audit_log.recomputed(*shares[-1])
        found = others.joined(mine)
    recomputed = found.leaves
    if recomputed != logged.leaves:  # orjson may write a float otherwise: canonically
        known = set(logged.leaves)
        for index, leaf in enumerate(recomputed):
            if leaf not in known:
                recomputed[index] = audit_log.stored_at(found.positions[index]).leaf
    findings += _differences(store, audit_log, logged.leaves, logged.labels, found,
                             signed.size)
    tree = as_logged if recomputed == logged.leaves else Tree(recomputed)
    if len(recomputed) < signed.size or tree.root(signed.size) != signed.root:
        findings.append(LogFinding(
            "root", f"the stored events up to leaf {signed.size} do not hash to the"
            f" checkpoint's root {signed.root.hex()}: the history it signed was changed"
            + ("" if findings else " together with the log (every leaf rewritten to match)")))
    return findings


def _shares(store: Store, workers: int | None) -> list[tuple[int, int]]:
    """The notification ids each process recomputes (the last share: this process's,
    two thirds of another's, as it also reads the log and hashes its tree meanwhile)."""
    end = store.event_log.max_position()
    if workers is None:
        workers = 2 if end >= PARALLEL_FROM and (os.cpu_count() or 1) > 1 else 1
    weights = [3] * (workers - 1) + [2]
    bounds = [1 + end * sum(weights[:n]) // sum(weights) for n in range(workers)] + [2**62]
    return [(bounds[n], bounds[n + 1] - 1) for n in range(workers)]


class _Others:
    """The shares of the leaves recomputed in other processes (spawned: each opens the
    store from its environment, as the read-model rebuild's processes do)."""

    def __init__(self, store: Store, shares: Sequence[tuple[int, int]]) -> None:
        self.store, self.shares = store, shares

    def __enter__(self) -> _Others:
        self.pool = None
        if self.shares:
            self.pool = multiprocessing.get_context("spawn").Pool(len(self.shares))
            env = dict(self.store.env)
            self.pending = [self.pool.apply_async(_recompute_share, (env, *share))
                            for share in self.shares]
        return self

    def joined(self, mine: Recomputed) -> Recomputed:
        if self.pool is None:
            return mine
        leaves: list[bytes] = []
        positions = array("q")
        for pending in self.pending:
            blob, where = pending.get()
            leaves += [blob[at:at + 32] for at in range(0, len(blob), 32)]
            positions.frombytes(where)
        return Recomputed(leaves + mine.leaves, positions + mine.positions)

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _recompute_share(env: dict[str, str], start: int, stop: int) -> tuple[bytes, bytes]:
    """One other process's share: its leaves, 32 bytes each, and where they are stored."""
    from ticketflow.store import ReadStore  # noqa: PLC0415 - a spawned process's import

    with ReadStore({}, env) as store:
        found = AuditLog(store.event_log).recomputed(start, stop)
    return b"".join(found.leaves), found.positions.tobytes()


def _consistency(signed: Checkpoint, tree: Tree) -> list[LogFinding]:
    if tree.size < signed.size:
        return [LogFinding("log", f"the log holds {tree.size} leaves, fewer than the"
                           f" {signed.size} of the checkpoint: it was cut")]
    proof = tree.consistency_proof(signed.size)
    if not verify_consistency(signed.size, tree.size, signed.root, tree.root(), proof):
        return [LogFinding("log", f"the log of {tree.size} leaves does not extend the"
                           f" checkpoint's tree of {signed.size}: it was rewritten")]
    return []


def _roots(stored: StoredTree | Tree, as_logged: Tree) -> list[LogFinding]:
    """The stored subtree roots (what checkpoints and bundles are made from) against the
    tree of the log's own leaves: a wrong one would make a wrong proof, never hide a change."""
    if stored is as_logged or isinstance(stored, Tree):
        return []
    try:
        same = stored.size == as_logged.size and stored.root() == as_logged.root()
    except LookupError:
        same = False
    if same:
        return []
    return [LogFinding("log", f"the stored subtree roots (a tree of {stored.size} leaves) do"
                       f" not hash to the log's {as_logged.size} leaves: they were changed")]


def _differences(store: Store, audit_log: AuditLog, logged: list[bytes], labels: list[str],
                 stored: Recomputed, size: int) -> list[LogFinding]:
    """Each stored event that is not where the log has it, named."""
    found = stored.leaves
    if found == logged:
        return []
    start = 0
    while start < min(len(found), len(logged)) and found[start] == logged[start]:
        start += 1
    where_logged = {leaf: index for index, leaf in enumerate(logged)}
    where_stored = {leaf: index for index, leaf in enumerate(found)}
    matcher = difflib.SequenceMatcher(None, logged[start:], found[start:], autojunk=False)
    findings: list[LogFinding] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        olds, news = range(start + i1, start + i2), range(start + j1, start + j2)
        for index in olds:  # a logged leaf no longer stored where the log has it
            label = labels[index] if index < len(labels) else "?"
            moved = where_stored.get(logged[index])
            if moved is not None:
                findings.append(LogFinding(
                    "moved", f"event {label} (leaf {index}) is stored at position"
                    f" {moved} of the log instead: reordered", index, label, index < size))
            elif tag == "replace" and index - olds.start < len(news):
                leaf = audit_log.stored_at(
                    stored.positions[news.start + index - olds.start])
                findings.append(_edited(store, leaf, index, label, index < size))
            else:
                findings.append(LogFinding(
                    "deleted", f"event {label} (leaf {index}) is no longer stored", index,
                    label, index < size))
        for offset, position in enumerate(news):  # a stored event not logged there
            paired = tag == "replace" and offset < len(olds)
            if paired or found[position] in where_logged:
                continue  # named above, as edited or moved
            leaf = audit_log.stored_at(stored.positions[position])
            findings.append(LogFinding(
                "inserted", f"event {leaf.label} (position {position} of the stored"
                " events) is in no leaf of the log", position, leaf.label, position < size))
    return findings


def _edited(store: Store, leaf: StoredLeaf, index: int, label: str,
            signed: bool) -> LogFinding:
    """An event stored in a logged event's place with other contents; `rewritten` when
    its ticket's hash chain still links (every later hash recomputed to hide it)."""
    what = f"event {leaf.label} (leaf {index}, logged as {label}) differs from what was logged"
    envelope = store.event_log.envelope_at(leaf.stream, leaf.version) if leaf.readable else None
    if envelope is None:
        return LogFinding("edited", what + ": its row no longer decodes", index, label, signed)
    if envelope["event_id"] != str(uuid5(leaf.stream, str(leaf.version))):
        return LogFinding("moved", what + ": it holds the event of another version (its"
                          " event id): reordered", index, label, signed)
    previous = (store.event_log.envelope_at(leaf.stream, leaf.version - 1)
                if leaf.version > 1 else None)
    chained = chain_hash(previous["hash"] if previous else "", envelope)
    if chained == envelope["hash"]:
        return LogFinding("rewritten", what + "; its hash chain was recomputed to match",
                          index, label, signed)
    return LogFinding("edited", what + "; its hash chain breaks there", index, label, signed)


def describe(findings: Sequence[LogFinding]) -> list[str]:
    return [f"{f.problem}: {f.detail}" + ("" if f.signed else " (after the checkpoint)")
            for f in findings]

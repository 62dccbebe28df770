"""One ticket's evidence, checkable with no database (SPEC §13): its events as recorded,
each with its leaf's position and RFC 9162 inclusion proof, and the signed tree head
the proofs lead to.

    {"format": "ticketflow-bundle/1", "ticket_id", "tenant",
     "checkpoint": "<the checkpoint's text, ticketflow.checkpoints>",
     "events": [{"leaf_index": 17, "envelope": {…SPEC §5…}, "inclusion_proof": ["<hex>", …]}]}

A verifier recomputes each leaf as SHA-256(0x00 || canonical JSON of the envelope),
checks its proof against the checkpoint's size and root, the checkpoint's signature, and
the ticket's hash chain across the events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ticketflow.audit_log import AuditLog
from ticketflow.checkpoints import Checkpoint, CheckpointError, sign
from ticketflow.domain.audit_log import event_leaf, label
from ticketflow.domain.chain import find_break
from ticketflow.domain.merkle import StoredTree, verify_inclusion
from ticketflow.event_log import Store

FORMAT = "ticketflow-bundle/1"


class BundleError(ValueError):
    """A ticket whose events the log does not hold as stored: run `verify`."""


def make_bundle(store: Store, ticket_id: str, tenant: str | None,
                private_key: Ed25519PrivateKey, at: datetime) -> dict[str, Any]:
    stream = store.event_log.stream_uuid_of("ticket", ticket_id, tenant)  # NotFound if not theirs
    envelopes = [store.event_log.envelope_of(record)
                 for record in store.event_log.recorder.select_events(stream)]
    audit_log = AuditLog(store.event_log)
    tree = audit_log.tree()  # from the stored subtree roots: O(log n) per proof
    indexes: list[int] = []
    for envelope, index in zip(envelopes, audit_log.leaf_indexes(tree, stream, envelopes),
                               strict=True):
        if index is None:
            raise BundleError(f"event {label(envelope)} as stored is in no leaf of the audit"
                              " log: the store was changed (ticketflow verify --checkpoint)")
        indexes.append(index)
    proofs = (tree.inclusion_proofs(indexes) if isinstance(tree, StoredTree)
              else [tree.inclusion_proof(index) for index in indexes])
    events = [{"leaf_index": index, "envelope": envelope,
               "inclusion_proof": [p.hex() for p in proof]}
              for index, envelope, proof in zip(indexes, envelopes, proofs, strict=True)]
    head = sign(tree.size, tree.root(), at, private_key)
    return {"format": FORMAT, "ticket_id": ticket_id, "tenant": envelopes[0]["tenant"],
            "checkpoint": head.text(), "events": events}


def verify_bundle(bundle: Any, public_key: Ed25519PublicKey) -> list[str]:
    """The problems of a bundle ([]: every event is in the signed log, chained)."""
    if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
        return [f"not a bundle: its format must be {FORMAT!r}"]
    try:
        head = Checkpoint.parse(str(bundle.get("checkpoint")))
        head.verify(public_key)
    except CheckpointError as exc:
        return [str(exc)]
    problems: list[str] = []
    envelopes = []
    for number, event in enumerate(bundle.get("events") or []):
        try:
            envelope, index = event["envelope"], int(event["leaf_index"])
            proof = [bytes.fromhex(p) for p in event["inclusion_proof"]]
            name = label(envelope)
            included = verify_inclusion(event_leaf(envelope), index, head.size, proof,
                                        head.root)
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"event {number} of the bundle is malformed ({exc!r})")
            continue
        if not included:
            problems.append(f"event {name} is not leaf {index} of the signed log of"
                            f" {head.size}: it was changed, or its proof was")
        envelopes.append(envelope)
    if not envelopes:
        problems.append("the bundle holds no events")
    elif (broken := find_break(envelopes)) is not None:
        problems.append(f"event {label(envelopes[broken[0]])}: {broken[1]}")
    return problems

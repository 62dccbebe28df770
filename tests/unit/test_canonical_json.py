"""Canonical JSON (domain/chain.py) is json.dumps' text whichever encoder writes it: the
hash chain and the audit log's leaves are published definitions (README, SPEC §13)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ticketflow.domain.audit_log import event_leaf
from ticketflow.domain.chain import canonical_json, chain_hash, hash_and_leaf

SCALARS = (st.text() | st.integers(-(2**70), 2**70) | st.booleans() | st.none()
           | st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4)
                      | st.tuples(inner, inner), max_leaves=25)


def reference(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


@given(VALUES)
def test_canonical_json_is_json_dumps_text_for_any_value(value: Any) -> None:
    assert canonical_json(value) == reference(value)


def test_control_bidi_and_astral_characters_are_written_alike() -> None:
    text = "".join(chr(i) for i in range(0x250)) + "\u2028\u2029\u202e\ufeff\U0001f600"
    value = {"b": text, "a": [2**64 - 1, -(2**63), 2**64, 1.5e-7], "\x7f": {"é": None}}
    assert canonical_json(value) == reference(value)
    assert canonical_json({"k": 1e16}) == b'{"k":1e+16}'  # json.dumps' exponent


ENVELOPES = st.fixed_dictionaries({
    "event_id": st.uuids().map(str), "type": st.text(max_size=12),
    "schema_version": st.integers(1, 3), "tenant": st.text(max_size=12),
    "ticket_id": st.text(max_size=12), "version": st.integers(1, 10**6),
    "occurred_at": st.text(max_size=30), "recorded_at": st.text(max_size=30),
    "actor": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
    "causation_id": st.text(max_size=12),
    "data": st.dictionaries(st.text(max_size=8), VALUES, max_size=4)})


@given(ENVELOPES, st.sampled_from(["", "ab" * 32]))
def test_one_serialisation_gives_the_chain_hash_and_the_leaf_of_the_envelope_with_it(
        envelope: dict[str, Any], previous: str) -> None:
    found, leaf = hash_and_leaf(previous, envelope)
    assert found == chain_hash(previous, envelope)
    assert leaf == event_leaf({**envelope, "hash": found})

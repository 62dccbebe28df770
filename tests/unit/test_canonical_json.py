"""Canonical JSON (domain/chain.py) is json.dumps' text whichever encoder writes it: the
hash chain and the audit log's leaves are published definitions (README, SPEC §13)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ticketflow.domain.chain import canonical_json

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

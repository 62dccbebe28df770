"""The policy loader under random and mutated TOML (issue 7): whatever the file holds,
`load_policy_file` returns a usable Policy or raises PolicyError whose message names
the file and, for a bad value, the key; never another exception."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ticketflow.domain.policy import Policy, PolicyError, load_policy_file

SHIPPED = sorted(Path(__file__, "../../../domain/policies").resolve().glob("*.toml"))
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def toml_value(value: Any) -> str:
    """A value as inline TOML (enough for what these tests generate)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a basic string: JSON's escapes are TOML's


def toml_document(data: dict[str, Any]) -> str:
    return "".join(f"{json.dumps(key)} = {toml_value(value)}\n" for key, value in data.items())


def load(tmp_path: Path, text: str | bytes) -> Policy | PolicyError:
    """Load `text` from a file; a PolicyError is returned, anything else escapes."""
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        policy = load_policy_file(path)
    except PolicyError as error:
        assert str(error).startswith(f"{path}: "), error
        return error
    assert policy.content_hash and policy.calendar_objects  # usable, not just parsed
    return policy


def paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key path of a policy document (tables and values)."""
    if not isinstance(node, dict):
        return []
    found = []
    for key, value in node.items():
        found.append((*prefix, key))
        found += paths(value, (*prefix, key))
    return found


def edited(data: dict[str, Any], path: tuple[str, ...], value: Any = None) -> dict[str, Any]:
    """A copy with the value at `path` replaced (or removed when `value` is None)."""
    copy = tomllib.loads(toml_document(data))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return copy


policy_documents = st.sampled_from(SHIPPED).map(
    lambda path: tomllib.loads(path.read_text(encoding="utf-8")))
toml_scalars = st.one_of(st.booleans(), st.integers(), st.floats(), st.dates(),
                         st.text(max_size=12),
                         st.sampled_from(["0m", "-4h", "99999d", "1h30", "25:00-26:00",
                                          "09:00-08:00", "America", "tier9", "always"]))
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=8)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_is_a_policy_error_naming_the_file(tmp_path: Path, text: str) -> None:
    assert isinstance(load(tmp_path, text), PolicyError | Policy)


@FUZZ
@given(source=st.sampled_from(SHIPPED), data=st.data())
def test_a_mangled_policy_file_is_a_policy_error_or_a_policy(
    tmp_path: Path, source: Path, data: st.DataObject
) -> None:
    original = source.read_bytes()
    start = data.draw(st.integers(0, len(original)), label="start")
    end = data.draw(st.integers(start, min(len(original), start + 40)), label="end")
    insert = data.draw(st.binary(max_size=12) | st.text(max_size=12).map(str.encode))
    load(tmp_path, original[:start] + insert + original[end:])


@FUZZ
@given(document=policy_documents, data=st.data())
def test_a_value_of_the_wrong_shape_is_refused_with_its_key(
    tmp_path: Path, document: dict[str, Any], data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(paths(document)), label="path")
    value = data.draw(toml_values, label="value")
    assume(value != _at(document, path))
    result = load(tmp_path, toml_document(edited(document, path, value)))
    if isinstance(result, PolicyError):
        assert len(str(result).splitlines()) > 1 or "TOML" in str(result)


@FUZZ
@given(document=policy_documents, data=st.data())
def test_a_missing_required_key_is_named(
    tmp_path: Path, document: dict[str, Any], data: st.DataObject
) -> None:
    required = [name for name, field in Policy.model_fields.items() if field.is_required()]
    key = data.draw(st.sampled_from(required))
    result = load(tmp_path, toml_document(edited(document, (key,))))
    assert isinstance(result, PolicyError)
    assert f"  {key}: Field required" in str(result)


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize("text, fragment", [
    (b"\xff\xfe not UTF-8", "is UTF-8 text"),
    ("a = " + "[" * 5_000 + "]" * 5_000, "nested too deeply"),
    ('[x\nid = "p"', "not valid TOML"),
])
def test_an_unreadable_file_is_a_policy_error_that_says_why(
    tmp_path: Path, text: str | bytes, fragment: str
) -> None:
    result = load(tmp_path, text)
    assert isinstance(result, PolicyError) and fragment in str(result)


@pytest.mark.parametrize("path, value, fragment", [
    (("default_timezone",), "America", "default_timezone: unknown IANA time zone 'America'"),
    (("default_timezone",), "x" * 5_000, "default_timezone: unknown IANA time zone"),
    (("auto_close_after",), "400d", "auto_close_after: duration '400d' is longer"),
    (("auto_close_after",), 10**30, "auto_close_after: duration"),
    (("priorities",), ["high", "high", "low"], "priorities: listed more than once: high"),
    (("channel_fields",), {"fax": {"line": ["a"]}}, "channel_fields: unknown channel 'fax'"),
])
def test_a_bad_value_is_named_by_its_key(
    tmp_path: Path, path: tuple[str, ...], value: Any, fragment: str
) -> None:
    document = tomllib.loads(SHIPPED[0].read_text(encoding="utf-8"))
    result = load(tmp_path, toml_document(edited(document, path, value)))
    assert isinstance(result, PolicyError) and fragment in str(result), result


def test_an_automatic_escalation_must_name_a_known_anchor_and_priority(tmp_path: Path) -> None:
    growgrebuddy = next(p for p in SHIPPED if p.stem == "growgrebuddy")
    document = tomllib.loads(growgrebuddy.read_text(encoding="utf-8"))
    document["escalation"]["automatic"][0] |= {"since": "level:tier9", "priority": "urgent"}
    result = str(load(tmp_path, toml_document(document)))
    assert "since 'level:tier9' is neither 'created' nor 'level:<one of" in result
    assert "escalation.automatic: unknown priority 'urgent'" in result


def test_the_shipped_policies_round_trip_through_the_fuzzers_toml_writer(tmp_path: Path) -> None:
    for source in SHIPPED:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
        policy = load(tmp_path, toml_document(document))
        assert isinstance(policy, Policy) and policy.id == source.stem

"""The policy loader under random and mutated TOML (issue 7): whatever the file holds,
`load_policy_file` returns a usable Policy or raises PolicyError whose message names
the file and, for a bad value, the key; never another exception."""

from __future__ import annotations

import json
import math
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.support.builders import PAYLOAD_OF, ROLE_OF, T0, created, ctx, payload_of
from ticketflow.domain.calendar import MINUTES_PER_DAY
from ticketflow.domain.commands import COMMANDS
from ticketflow.domain.lifecycle import Role
from ticketflow.domain.policy import Policy, PolicyError, load_policy_file, policy_from_data
from ticketflow.domain.ticket import Ticket
from ticketflow.domain.timers import due_commands

SHIPPED = sorted(Path(__file__, "../../../domain/policies").resolve().glob("*.toml"))
PERSONALYSISPRO = next(path for path in SHIPPED if path.stem == "personalysispro")
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


# --- a policy that loads can be evaluated (issue 13.6) ---------------------------------
# A calendar open 2 h a week with a 90-day target once validated and then crashed the
# engine: the calendar maths gave up after ten years. Now whatever loads is served.

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/Santiago", "Pacific/Apia"]
PRIORITIES = ["critical", "high", "medium", "low"]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


#: 0-2 sorted, disjoint windows a day; short ones and none at all are likely.
day_windows = st.lists(st.integers(0, MINUTES_PER_DAY), max_size=4, unique=True).map(
    lambda bounds: [f"{_hhmm(a)}-{_hhmm(b)}" for a, b in zip(sorted(bounds)[::2],
                                                             sorted(bounds)[1::2], strict=False)])
weekly_hours = st.dictionaries(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                               day_windows, max_size=7)
holiday_lists = st.one_of(
    st.lists(st.dates(date(2020, 1, 1), date(2080, 1, 1)), max_size=30),
    # a long run of closed days from around the ticket's creation on
    st.builds(lambda first, days: [T0.date() + timedelta(days=first + n) for n in range(days)],
              st.integers(-10, 400), st.integers(0, 4000)),
)
targets = st.one_of(st.integers(1, 3 * MINUTES_PER_DAY), st.integers(1, 366 * MINUTES_PER_DAY),
                    st.sampled_from([90 * MINUTES_PER_DAY, 366 * MINUTES_PER_DAY]))


@FUZZ
@given(hours=weekly_hours, holidays=holiday_lists, minutes=st.lists(targets, min_size=8,
       max_size=8), tz=st.sampled_from(ZONES), priority=st.sampled_from(PRIORITIES),
       as_of_days=st.integers(0, 20_000))
def test_a_policy_that_loads_can_evaluate_a_ticket_under_it(
    tmp_path: Path, hours: dict[str, list[str]], holidays: list[date], minutes: list[int],
    tz: str, priority: str, as_of_days: int,
) -> None:
    """Either the loader refuses the calendar and targets (PolicyError naming the file),
    or the clocks and the due commands of a ticket under them evaluate, however sparse
    the calendar, however long the target, whatever the zone and the as-of instant."""
    document = tomllib.loads(PERSONALYSISPRO.read_text(encoding="utf-8"))
    document["calendars"]["business"] = {"hours": hours, "holidays": holidays}
    document["plans"]["standard"]["first_response"] = dict(zip(PRIORITIES[1:], minutes,
                                                               strict=False))
    document["resolution"] = dict(zip(PRIORITIES, minutes[3:], strict=False))
    document["escalation"]["automatic"] = [
        {"to": "second_level", "after": minutes[7], "calendar": "business"}]
    policy = load(tmp_path, toml_document(document))
    event("refused" if isinstance(policy, PolicyError) else "served")
    if isinstance(policy, PolicyError):
        return
    ticket = Ticket.create(ctx(T0, Role.CUSTOMER), policy, "T-9", created(
        plan="standard", timezone=tz, priority=priority))
    later = T0 + timedelta(days=as_of_days)
    ticket.sla(policy, T0, explain=True)
    for hours_after, command in ((0, None), (5, "acknowledge"), (6, "request_user_input"),
                                 (54, "receive_user_input")):
        if command:
            ticket.handle(COMMANDS[command], ctx(T0 + timedelta(hours=hours_after),
                                                 ROLE_OF[command]),
                          policy, payload_of(command, PAYLOAD_OF[command]))
        ticket.sla(policy, later)
        due_commands(ticket, policy)


def _with_calendar(hours: dict[str, list[str]], holidays: list[date] | None = None,
                   **targets: Any) -> dict[str, Any]:
    """personalysispro with `business` replaced, and some targets changed (by key)."""
    document = tomllib.loads(PERSONALYSISPRO.read_text(encoding="utf-8"))
    document["calendars"]["business"] = {"hours": hours, "holidays": holidays or []}
    for key, value in targets.items():
        section, name = key.split("__")
        document[section][name] = value
    return document


EVERY_SATURDAY = [date(2026, 1, 3) + timedelta(weeks=n) for n in range(60 * 53)]


@pytest.mark.parametrize("document, fragment", [
    # one minute a week: a 366-day target would take ten thousand years
    (_with_calendar({"sat": ["10:00-10:01"]}, resolution__low="366d"),
     "resolution.low: 527040 min may not fall due within 50 years on calendar 'business'"
     " (open 1 min a week): at most 2608 min fit"),
    # holidays on every opening day for 60 years: no open time left for any target
    (_with_calendar({"sat": ["10:00-12:00"]}, EVERY_SATURDAY),
     "plans.standard.first_response.high: 240 min may not fall due within 50 years on"
     " calendar 'business' (open 120 min a week, less 3180 holidays): at most 0 min fit"),
])
def test_a_target_that_may_not_fall_due_within_fifty_years_is_refused_with_its_key(
    tmp_path: Path, document: dict[str, Any], fragment: str
) -> None:
    result = load(tmp_path, toml_document(document))
    assert isinstance(result, PolicyError) and fragment in " ".join(str(result).split()), result


def test_an_automatic_escalation_delay_is_held_to_the_same_horizon(tmp_path: Path) -> None:
    document = _with_calendar({"sun": ["09:00-09:05"]})
    document["escalation"]["automatic"] = [{"to": "management", "after": "200d",
                                            "calendar": "business"}]
    result = str(load(tmp_path, toml_document(document)))
    assert "escalation.automatic.0.after: 288000 min may not fall due within 50 years" in result


def test_the_calendar_of_the_issue_is_served_and_a_stored_version_is_not_held_to_the_horizon(
    tmp_path: Path,
) -> None:
    issue = _with_calendar({"sat": ["10:00-12:00"]}, resolution__low="90d")
    assert isinstance(load(tmp_path, toml_document(issue)), Policy)
    unservable = _with_calendar({"sat": ["10:00-10:01"]}, resolution__low="366d")
    with pytest.raises(PolicyError):
        policy_from_data(unservable, "a new file")
    assert policy_from_data(unservable, "stored", stored=True).resolution["low"] == 527040

"""What a sender wrote prints as written (issue #13, item 7): hostile text in every
field a sender controls, through every human-readable command. Markup such as
`[/bold]` must not be read as markup; characters that act on a terminal (ESC, CR, C1
controls, bidi overrides) must show as escapes; --json stays exact.

The CLI runs in-process (`main(argv)`): a subprocess per command and example would
take minutes. Output goes to a console wide enough that no table folds a value."""

from __future__ import annotations

import json
import tempfile
import unicodedata
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tests.support.builders import T0, command_line, create_payload
from ticketflow import render
from ticketflow.cli import main
from ticketflow.schemas.commands import ID_ADAPTER

#: Markup, emoji codes and escapes a terminal or rich would act on.
FRAGMENTS = ("[/bold]", "[/]", "[bold red]", "[link=https://x]", ":smile:", "\\", "[",
             "\x1b[2J", "\x1b]8;;https://x\x07", "\r", "\n", "\t", "\x00", "\x7f", "\x9b",
             "\x85", "\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u2028",
             "\U000e0041", "\u00ad")
#: Text a sender can have stored: anything but a lone surrogate, which is no Unicode text
#: and is refused (`invalid_message`, tests/unit/test_bad_input.py).
HOSTILE = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.characters(exclude_categories=("Cs",))),
                   min_size=1, max_size=12).map("".join)
#: Ids keep markup and any script, but no hidden or space characters (item 11).
ID_CHARS = st.one_of(st.sampled_from("[]/:\\*_`<>"),
                     st.characters(categories=("L", "N", "P", "S")))
IDS = st.text(ID_CHARS, min_size=1, max_size=16).filter(
    lambda s: unicodedata.is_normalized("NFC", s))

SHOWN_AS_ESCAPES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
JOINERS = "\u200c\u200d"


def shown(text: str) -> str:
    """The oracle: a hidden character as a Python-style escape, the rest as written."""
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    out = []
    for char in text:
        if unicodedata.category(char) not in SHOWN_AS_ESCAPES or char in JOINERS:
            out.append(char)
        elif char in named:
            out.append(named[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def raw_hidden(output: str) -> list[str]:
    """Characters that reached the terminal raw and should not have (a newline is ours)."""
    return [c for c in output if unicodedata.category(c) in SHOWN_AS_ESCAPES
            and c not in JOINERS and c != "\n"]


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(render, "console", Console(width=5000))
    monkeypatch.setattr(render, "errors", Console(width=5000, stderr=True))
    monkeypatch.delenv("TICKETFLOW_TENANT", raising=False)
    yield


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def lines(ticket: str, message: str, actor: str, text: str) -> bytes:
    """A ticket created, commented on and resolved with `text`, by `actor`; a command
    whose bad instant quotes `text` (a dead letter with an id); an unreadable line."""
    at = [T0 + timedelta(minutes=n) for n in range(3)]
    bad_instant = json.loads(command_line(f"{message}-x", "acknowledge", ticket, at[2],
                                          "agent", {}, actor=actor))
    bad_instant["occurred_at"] = f"when {text}"
    commands = [
        command_line(message, "create_ticket", ticket, at[0], "customer",
                     create_payload(subject=text, description=text), actor=actor),
        command_line(f"{message}-c", "add_comment", ticket, at[1], "customer",
                     {"body": text}, actor=actor),
        command_line(f"{message}-r", "resolve", ticket, at[2], "agent",
                     {"resolution": text}, actor=actor),
        json.dumps(bad_instant).encode(),
        b"not a command: " + json.dumps(text).encode(),
    ]
    return b"\n".join(commands) + b"\n"


def valid_id(text: str) -> bool:
    try:
        ID_ADAPTER.validate_python(text)
    except ValueError:
        return False
    return True


@settings(max_examples=8, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ticket=IDS, message=IDS, actor=IDS, text=HOSTILE)
@example(ticket="[/]", message="mk-3[/x]", actor="[bold]", text="[/bold]")
@example(ticket="T-1", message="m-1", actor="a-1", text="\x1b[2J\x1b[31mred\r\u202eevil\x9b1m")
def test_every_human_readable_command_prints_what_the_sender_wrote(
    wide: None, capsys: pytest.CaptureFixture[str], ticket: str, message: str, actor: str,
    text: str,
) -> None:
    assert valid_id(ticket) and valid_id(message) and valid_id(actor)
    with tempfile.TemporaryDirectory() as folder:
        db = f"sqlite:///{Path(folder) / 'hostile.db'}"
        source = Path(folder) / "in.jsonl"
        source.write_bytes(lines(ticket, message, actor, text))
        code, out, _ = cli(capsys, "apply", str(source), "--db", db)
        statuses = [json.loads(line)["status"] for line in out.splitlines()]
        assert (code, statuses) == (1, ["accepted"] * 3 + ["rejected"] * 2)
        assert raw_hidden(out) == []
        as_of = (T0 + timedelta(days=1)).isoformat()
        shows = human_outputs(capsys, db, ticket, as_of)
        json_outputs(capsys, db, ticket, message, actor, text)
    for name, output in shows.items():
        assert raw_hidden(output) == [], name
    for name in ("ticket", "ticket --as-of", "timeline", "sla", "sla --explain"):
        assert shown(ticket) in shows[name], name
    assert f"customer:{shown(actor)}" in shows["timeline"]
    comment = json.dumps({"body": text, "visibility": "public"}, ensure_ascii=False)
    assert shown(comment[:40]) in shows["timeline"]  # the data column is clipped
    assert shown(f"{message}-x") in shows["dead-letters"]
    assert shown(f"when {text}"[:50]) in shows["dead-letters"]  # the reason clips at 60


PERIOD = ("--from", "2026-11-01", "--to", "2026-12-01")
#: Each read command: its words, then its options, then its positional arguments (after
#: `--`, as an id may begin with a dash).
READS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "ticket": (("ticket",), (), ("{ticket}",)),
    "ticket --as-of": (("ticket",), ("--as-of", "{as_of}"), ("{ticket}",)),
    "timeline": (("timeline",), (), ("{ticket}",)),
    "sla": (("sla",), ("--as-of", "{as_of}"), ("{ticket}",)),
    "sla --explain": (("sla",), ("--as-of", "{as_of}", "--explain"), ("{ticket}",)),
    "verify": (("verify",), (), ()), "verify ID": (("verify",), (), ("{ticket}",)),
    "dead-letters": (("dead-letters",), (), ()), "parked": (("parked",), (), ()),
    "report sla": (("report", "sla"), PERIOD, ()),
    "report volume": (("report", "volume"), PERIOD, ()),
    "report satisfaction": (("report", "satisfaction"), PERIOD, ()),
    "report times": (("report", "times"), PERIOD, ()),
    "missing ticket": (("ticket",), (), ("{ticket}-404",)),
}


def human_outputs(capsys: pytest.CaptureFixture[str], db: str, ticket: str,
                  as_of: str) -> dict[str, str]:
    """Each read command's standard output and error, after checking its exit code."""
    shows = {}
    for name, (words, options, positional) in READS.items():
        after = ("--", *positional) if positional else ()
        argv = [part.format(ticket=ticket, as_of=as_of)
                for part in (*words, *options, "--db", db, *after)]
        code, out, err = cli(capsys, *argv)
        assert code == (1 if name == "missing ticket" else 0), (name, err)
        shows[name] = out + err
    return shows


def json_outputs(capsys: pytest.CaptureFixture[str], db: str, ticket: str, message: str,
                 actor: str, text: str) -> None:
    """--json (and `outcome`, which prints JSON) gives back exactly what was sent, and
    what it prints holds no raw hidden character either."""
    outputs = {}
    for name, argv in {"outcome": ("outcome", message), "timeline": ("timeline", ticket),
                       "dead-letters": ("dead-letters",)}.items():
        after = ("--", *argv[1:]) if argv[1:] else ()
        code, out, _ = cli(capsys, argv[0], "--json", "--db", db, *after)
        assert code == 0, name
        assert raw_hidden(out) == [], name
        outputs[name] = json.loads(out)
    assert (outputs["outcome"]["message_id"], outputs["outcome"]["ticket_id"]) == (message,
                                                                                 ticket)
    timeline: list[dict[str, Any]] = outputs["timeline"]["events"]
    assert [e["data"].get("body") for e in timeline if e["type"] == "CommentAdded"] == [text]
    assert {e["actor"]["id"] for e in timeline} == {actor}
    assert timeline[0]["data"]["subject"] == text
    letters = {letter["message_id"]: letter for letter in outputs["dead-letters"]}
    assert json.loads(letters[f"{message}-x"]["original"])["occurred_at"] == f"when {text}"

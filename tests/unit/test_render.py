"""Human output shows data as data (issue #13, item 7): no markup, no emoji codes, and
the characters that act on a terminal or reorder text as visible escapes. The JSON the
command line prints decodes to exactly the value, with the same characters escaped."""

from __future__ import annotations

import io
import json
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console

from ticketflow import render

HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}

SHOWN = {
    "[/bold]": "[/bold]",
    "[bold red]loud[/]": "[bold red]loud[/]",
    ":smile: \\[x]": ":smile: \\[x]",
    "\x1b[2Jwiped": "\\x1b[2Jwiped",
    "line\rover": "line\\rover",
    "two\nlines\tand a tab": "two\\nlines\\tand a tab",
    "\x07\x08\x7f\x9b\x85": "\\x07\\x08\\x7f\\x9b\\x85",
    "abc\u202edcba": "abc\\u202edcba",
    "\u2066isolated\u2069": "\\u2066isolated\\u2069",
    "zero\u200bwidth\ufeff": "zero\\u200bwidth\\ufeff",
    "para\u2029graph": "para\\u2029graph",
    "tag\U000e0041": "tag\\U000e0041",
    "lone \ud800": "lone \\ud800",
    "Ünïcödé — 票 👩\u200d💻 می\u200cخواهم": "Ünïcödé — 票 👩\u200d💻 می\u200cخواهم",
}


def printed(value: object) -> str:
    out = io.StringIO()
    Console(file=out, width=500).print(render.literal(value))
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize("text, expected", SHOWN.items(), ids=[ascii(t) for t in SHOWN])
def test_a_value_prints_as_written_with_hidden_characters_escaped(
    text: str, expected: str
) -> None:
    assert printed(text) == expected


def test_a_table_cell_and_title_print_as_written() -> None:
    out = io.StringIO()
    render.console, saved = Console(file=out, width=500), render.console
    try:
        render.table("timeline of [/]", ("[b]col",), [["[/bold] and a cell wider than the title"],
                                                       [None], [3]])
    finally:
        render.console = saved
    assert "timeline of [/]" in out.getvalue()
    assert "[b]col" in out.getvalue() and "[/bold]" in out.getvalue()


def test_an_error_line_keeps_its_label_and_prints_the_message_as_written() -> None:
    out = io.StringIO()
    render.errors, saved = Console(file=out, width=500), render.errors
    try:
        render.error("not_found", "ticket [/] \x1b[31mnot found")
    finally:
        render.errors = saved
    assert out.getvalue() == "not_found: ticket [/] \\x1b[31mnot found\n"


def test_printed_json_escapes_hidden_characters_and_keeps_the_rest_readable() -> None:
    value = {"body": "\x9b2J \u202eevil \u2028 \ud800 票 \x1b"}
    text = render.json_text(value, indent=2)
    assert "\\u009b2J \\u202eevil \\u2028 \\ud800 票 \\u001b" in text
    assert text.count("\n") == 2  # the indentation's own newlines stay
    assert json.loads(text) == value


@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
@example("\x7f")  # DEL: ASCII, yet not escaped by json.dumps
def test_printed_json_decodes_to_exactly_the_value(value: object) -> None:
    for indent in (None, 2):
        text = render.json_text(value, indent)
        assert json.loads(text) == value
        assert not [c for c in text if unicodedata.category(c) in HIDDEN
                    and c not in "\n\u200c\u200d"]

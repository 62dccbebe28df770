"""Characters that do not show as themselves, in one place.

Two rules share these sets: an identifier may not hold any of them (`id_problem`, for
the wire contract), and human output shows the ones that can act on a terminal or
reorder what it shows as visible escapes (`ticketflow.render`, and the JSON the
command line prints).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

#: Control (C0, DEL, C1), format (zero-width, bidi embeddings, overrides and isolates,
#: soft hyphen, BOM, tags), lone surrogates, line and paragraph separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Default-ignorable code points outside those categories: invisible fillers (Hangul
#: U+3164 renders as nothing), variation selectors, the combining grapheme joiner, and
#: the reserved ignorable ranges (Unicode's DerivedCoreProperties).
IGNORABLE = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2065\u3164\ufe00-\ufe0f\uffa0"
    "\ufff0-\ufff8\U000e0000-\U000e0fff]"
)
#: Joiners that scripts (Persian, Indic) and emoji sequences need to read right; they
#: cannot move a terminal's cursor or reorder text, so display leaves them be.
JOINERS = frozenset({"\u200c", "\u200d"})
#: Planes that hold characters of the hidden categories (the BMP, plane 1, tags).
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def id_problem(value: str) -> str | None:
    """Why `value` cannot be an identifier, or None. Ids are compared exactly, so
    anything that makes two different ids look alike is refused, never changed: hidden
    characters, spaces other than U+0020, space at either end, a blank id, and text not
    in Unicode normalisation form NFC (é written as e + U+0301)."""
    if not value.strip():
        return "an id cannot be blank"
    if value.isascii() and value.isprintable():  # most ids: no hidden kind, always NFC
        return "an id cannot begin or end with a space" if value != value.strip() else None
    for position, char in enumerate(value, start=1):
        kind = _hidden_kind(char)
        if kind is not None:
            return (f"an id cannot hold {kind} (U+{ord(char):04X}, character {position}):"
                    " ids that look alike must be the same id")
    if value != value.strip():
        return "an id cannot begin or end with a space"
    if not unicodedata.is_normalized("NFC", value):
        return ("an id must be in Unicode normalisation form NFC; send the composed form,"
                f" {unicodedata.normalize('NFC', value)!a}")
    return None


def _hidden_kind(char: str) -> str | None:
    category = unicodedata.category(char)
    if category == "Cc":
        return "a control character"
    if category in HIDDEN_CATEGORIES or IGNORABLE.match(char):
        return "an invisible or formatting character"
    if category == "Zs" and char != " ":
        return "a space other than U+0020"
    return None


@cache
def shown_hidden() -> re.Pattern[str]:
    """Characters human output must not send raw: the hidden categories but the joiners.
    Built on first use (a scan of about 140,000 code points, some 40 ms)."""
    found = [code for plane in _SCANNED for code in plane
             if unicodedata.category(chr(code)) in HIDDEN_CATEGORIES
             and chr(code) not in JOINERS]
    return re.compile("[" + "".join(_ranges(found)) + "]")


def _ranges(codes: list[int]) -> list[str]:
    spans: list[list[int]] = []
    for code in codes:
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return [re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
            for a, b in spans]


def escape(char: str) -> str:
    """A character as a Python-style escape: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0041`."""
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"

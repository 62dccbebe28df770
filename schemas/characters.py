"""Characters that do not show as themselves, in one place.

Human output shows the ones that can act on a terminal or reorder what it shows as
visible escapes (`ticketflow.render`, and the JSON the command line prints).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

#: Control (C0, DEL, C1), format (zero-width, bidi embeddings, overrides and isolates,
#: soft hyphen, BOM, tags), lone surrogates, line and paragraph separators.
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Joiners that scripts (Persian, Indic) and emoji sequences need to read right; they
#: cannot move a terminal's cursor or reorder text, so display leaves them be.
JOINERS = frozenset({"\u200c", "\u200d"})
#: Planes that hold characters of the hidden categories (the BMP, plane 1, tags).
_SCANNED = (range(0x20000), range(0xE0000, 0xE1000))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


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

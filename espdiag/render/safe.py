"""Make text that came from a log, a file name or a rule file safe to print in any format.

The normaliser already strips control characters from log lines; file names and rule texts do not go
through it, and a format must not depend on that. What is made visible here: C0 controls other than
tab and line feed (ESC starts terminal sequences), DEL, C1 controls (an 8-bit terminal takes U+009B
for ``ESC [`` and U+009D for ``ESC ]``, which retitles the window) and the bidi controls that make
text read differently from what it is (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C).
"""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# in JSON text C0 controls are escaped by json.dumps already; the others pass through raw
_UNSAFE_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every unsafe character written as ``\\xNN`` / ``\\uNNNN``; tabs and line feeds kept."""
    return _UNSAFE.sub(_shown, text)


def one_line(text: str) -> str:
    """:func:`visible`, and a line feed shown as ``\\n``: for a value printed inside one line (a file name)."""
    return visible(text).replace("\n", "\\n")


def json_text(document: str) -> str:
    """A JSON document with C1 and bidi controls written as ``\\uNNNN`` escapes: the same data, safe to show."""
    return _UNSAFE_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", document)

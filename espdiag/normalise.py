"""Undo what terminals, serial monitors and forum pastes do to a log line.

Works on one decoded physical line and returns the logical lines in it (a carriage return inside a
line separates progress updates). Blank results are dropped: pasting often doubles every line break.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# C0 controls, DEL, C1 controls (an 8-bit terminal takes U+009B for ESC [, so a log could retitle the
# window) and the bidi controls that make text read differently from what it is (Trojan Source)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# serial-monitor / logger time stamps: "12:34:56.789 -> ", "[12:34:56]", "2024-01-02 12:34:56,123 "
_TIMESTAMP = re.compile(
    r"^(?:\d{1,2}:\d\d:\d\d(?:[.,]\d+)?\s*(?:->|\|)\s?"  # Arduino monitor "->", loggers "12:01:02 | "
    r"|\[\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?\]\s*"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\s+"
    r"|\[\d\d:\d\d:\d\d(?:[.,]\d+)?\]\s*"
    r"|\[\d{4}-\d\d-\d\dT[\d:.]+Z?\s+[A-Z]+\s*\]\s*)"  # espflash: [2025-01-01T00:00:00Z INFO ]
)
# miette diagnostics (espflash) and tree drawings put box characters before the message; miette's
# ASCII theme (a console without Unicode) writes "x " for the error and "|-> " / "`-> " for its causes
_BOX = re.compile(r"^(?:[\u2500-\u257f\u25b6\u00d7|>]+|x(?= [A-Z])|[|`]->)\s*")
# esptool's "Connecting...." gets no line break when what follows comes from elsewhere (esptool-js
# prints its error there; an IDE interleaves stderr): "Connecting...Error: Failed to execute 'open'"
_CONNECTING_TAIL = re.compile(r"^(Connecting[._]+)\s*(?=[^\s._])")
_QUOTE = re.compile(r"^(?:>\s?)+")
# status symbols that tools put before a message ("\u2139\ufe0f Running esptool ...", "\u274c Failed ...")
_SYMBOL = re.compile(r"^[\u2139\u2600-\u27bf\u2b00-\u2bff\U0001f300-\U0001faff\ufe0f\u200d]+\s*")
_FENCE = re.compile(r"^(?:```|~~~)[\w+-]*\s*$")
MAX_LINE = 4096  # longer lines are cut: no upload message is that long, and rules stay linear


def normalise(line: str) -> list[str]:
    """Clean one physical line; return its non-blank logical lines."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE]
    parts = line.split("\r") if "\r" in line else [line]
    out = []
    for part in parts:
        text = _clean(part)
        if text:
            if text[:10] == "Connecting" and (m := _CONNECTING_TAIL.match(text)):
                out.append(m.group(1))
                text = text[m.end() :]
            out.append(text)
    return out


def _clean(text: str) -> str:
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if "\u2026" in text:  # forum software turns "..." into an ellipsis ("Connecting\u2026_")
        text = text.replace("\u2026", "...")
    text = text.strip()
    if not text:
        return ""
    if text[0] == ">":
        text = _QUOTE.sub("", text)
    elif text[0] in "\u00d7\u2570\u251c\u2502x|`":
        text = _BOX.sub("", text)
    if text[:1].isdigit() or text[:1] == "[":
        text = _TIMESTAMP.sub("", text, count=1)
        if text[:1] == ">":
            text = _QUOTE.sub("", text)
    if text[:1] > "\u2000":
        text = _SYMBOL.sub("", text)
    text = text.strip()
    if text[:3] in ("```", "~~~") and _FENCE.match(text):
        return ""
    return text.replace("\ufffd", "").strip() if "\ufffd" in text else text

"""``espdiag events [FILE]``: the parsed event stream as JSON Lines, for debugging grammar and rules.

Each line is ``{"kind", "line", "text", "fields"}``; the stream comes from the same reader, normaliser
and grammar as a diagnosis (``espdiag.api.iter_events``), with nothing dropped.
"""

from __future__ import annotations

import json
import sys
from typing import BinaryIO, TextIO

from espdiag.api import iter_events
from espdiag.commands.diagnose import open_input
from espdiag.errors import ExitCode
from espdiag.output import prepare_stdout


def write_events(stream: BinaryIO, name: str, out: TextIO, kinds: frozenset[str] = frozenset()) -> int:
    count = 0
    for event in iter_events(stream, name):
        if kinds and event.kind not in kinds:
            continue
        out.write(json.dumps({"kind": event.kind, "line": event.line, "text": event.text,
                              "fields": dict(event.fields)}, ensure_ascii=False) + "\n")
        count += 1
    return count


def events(file: str, kinds: frozenset[str] = frozenset()) -> int:
    out = prepare_stdout()
    if file == "-":
        write_events(sys.stdin.buffer, "<stdin>", out, kinds)
    else:
        with open_input(file) as stream:
            write_events(stream, file, out, kinds)
    out.flush()
    return ExitCode.OK

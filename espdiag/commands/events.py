"""``espdiag events [FILE...]``: the parsed event stream as JSON Lines, for debugging grammar and rules.

Each line is ``{"kind", "line", "text", "fields"}`` (plus ``"file"`` when several files are given);
the stream comes from the same reader, normaliser and grammar as a diagnosis
(``espdiag.api.iter_events``), with nothing dropped. An unreadable file is named on stderr and the
others are still printed (exit 2).
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Collection, Sequence
from typing import BinaryIO, TextIO

from espdiag.api import iter_events
from espdiag.errors import EspdiagError, ExitCode, InputError
from espdiag.events import KINDS
from espdiag.inputs import display_name, open_input
from espdiag.output import writing_stdout


def check_kinds(kinds: Collection[str]) -> None:
    """A mistyped ``--kind`` would silently print nothing: refuse it, with the closest kind."""
    for kind in kinds:
        if kind not in KINDS:
            hint = difflib.get_close_matches(kind, KINDS, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise EspdiagError(f"--kind {kind!r}: no such event kind{extra}")


def write_events(stream: BinaryIO, name: str, out: TextIO, kinds: Collection[str] = (),
                 file: str | None = None) -> int:
    count = 0
    for event in iter_events(stream, name):
        if kinds and event.kind not in kinds:
            continue
        row = {"kind": event.kind, "line": event.line, "text": event.text, "fields": dict(event.fields)}
        if file is not None:
            row["file"] = file
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def events(files: Sequence[str], kinds: Collection[str] = ()) -> int:
    check_kinds(kinds)
    files = list(files) or ["-"]
    failed = False
    with writing_stdout() as out:
        for name in files:
            try:
                with open_input(name) as stream:
                    write_events(stream, display_name(name), out, kinds, name if len(files) > 1 else None)
            except InputError as e:
                out.flush()
                print(f"espdiag: {e}", file=sys.stderr)
                failed = True
    return ExitCode.USAGE if failed else ExitCode.OK

"""Reading logs for the commands: files and standard input, every failure as one ``InputError`` line.

Shared by ``espdiag``, ``check``, ``events`` and ``--passthrough`` (commands never import each other).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from espdiag.errors import ExitCode, InputError
from espdiag.render.safe import one_line

if TYPE_CHECKING:
    from espdiag.report import Report
    from espdiag.rules import RuleSet

STDIN_NAME = "<stdin>"
PROMPT = ("espdiag: paste the upload log, then press Enter and Ctrl-D (Windows: Ctrl-Z, then Enter) "
          "to diagnose it")
# Shown when a log stops inside an upload attempt: the usual reason is esptool v4.8+ writing its
# error to stderr while only stdout was piped in.
INCOMPLETE_NOTE = (
    "The log stops inside an upload attempt, before its result. esptool v4.8 and later print the "
    "error on stderr, which a plain pipe leaves out: pipe both streams with "
    "'esptool.py ... 2>&1 | espdiag', or let espdiag run the upload: 'espdiag run -- esptool.py ...'."
)


class _TerminalInput:
    """Standard input on a terminal: the first end-of-input (Ctrl-D, Ctrl-Z) ends it for good.

    A buffered reader asks the terminal again after an end-of-input that came mid-read, so a
    person would have to press Ctrl-D twice; this one remembers it. It reads the unbuffered
    stream under ``sys.stdin.buffer``, which on a Windows console turns Ctrl-Z into the end.
    """

    def __init__(self, raw: Callable[[int], bytes | None]) -> None:
        self.raw_read = raw
        self.eof = False

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes] = []
        got = 0
        while not self.eof and (n < 0 or got < n):
            piece = self.raw_read(1 << 16 if n < 0 else n - got)
            if not piece:
                self.eof = True
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def readable(self) -> bool:
        return True


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def stdin_stream(err: TextIO | None = None) -> BinaryIO:
    """Standard input as bytes; on a terminal, first say on stderr what is expected and how to end it."""
    stdin = sys.stdin
    if stdin is None:  # started with stdin closed
        raise InputError(f"{STDIN_NAME}: standard input is closed; give a log FILE")
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return stdin.buffer
    if not _isatty(fd):
        return stdin.buffer
    err = err or sys.stderr
    if err is not None:
        with contextlib.suppress(OSError, ValueError):
            print(PROMPT, file=err, flush=True)
    raw = getattr(stdin.buffer, "raw", None)
    return _TerminalInput(raw.read if raw is not None else stdin.buffer.read)  # type: ignore[return-value]


@contextlib.contextmanager
def open_input(name: str) -> Iterator[BinaryIO]:
    """Open a log file (``-`` is standard input); every way the opening fails is a one-line InputError.

    Only the opening is guarded: an error while the caller writes its output is not the input's.
    """
    if name == "-":
        yield stdin_stream()
        return
    path = Path(name)
    shown = one_line(name)  # a file name can hold terminal controls too
    try:
        if path.is_dir():
            raise InputError(f"{shown}: is a directory, not a log file")
        f = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{shown}: no such file") from None
    except PermissionError:
        raise InputError(f"{shown}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{shown}: is a directory, not a log file") from None
    except OSError as e:
        raise InputError(f"{shown}: cannot read: {e.strerror or e}") from None
    with f:
        yield f


def display_name(name: str) -> str:
    return STDIN_NAME if name == "-" else name


def stops_inside_attempt(report: Report) -> bool:
    """The log shows a flasher at work (its banner or command line) but no result at all.

    Judged from the report alone: ``tool`` is only ever set from a flasher's own output or command
    line, never from build output or a boot log, so an ``unknown`` verdict with a tool is an upload
    that was started and whose end is not in the log.
    """
    return report.verdict == "unknown" and report.tool is not None


def note_incomplete(report: Report) -> Report:
    if stops_inside_attempt(report) and INCOMPLETE_NOTE not in report.notes:
        report.notes.append(INCOMPLETE_NOTE)
    return report


def exit_code(reports: Sequence[Report], exit_zero: bool = False) -> int:
    """1 when an upload failed or a log stops inside an upload attempt (so a CI step does not pass)."""
    if not exit_zero and any(r.verdict == "failure" or stops_inside_attempt(r) for r in reports):
        return ExitCode.FAILURE
    return ExitCode.OK


def diagnose_files(files: Sequence[str], rules: RuleSet) -> tuple[list[Report], list[InputError]]:
    """Diagnose every file (``-`` or none: standard input); an unreadable one does not stop the others."""
    from espdiag.api import diagnose_stream  # the pipeline loads only once the arguments are good

    reports: list[Report] = []
    errors: list[InputError] = []
    for name in files or ["-"]:
        try:
            with open_input(name) as stream:
                reports.append(note_incomplete(diagnose_stream(stream, display_name(name), rules)))
        except InputError as e:
            errors.append(e)
    return reports, errors

"""``espdiag [FILE...]``: diagnose upload logs (standard input when no file is given)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from espdiag.api import diagnose_stream
from espdiag.errors import ExitCode, InputError
from espdiag.output import prepare_stdout, write_reports
from espdiag.report import Report
from espdiag.rules import RuleSet


def read_reports(files: Sequence[str], rules: RuleSet) -> list[Report]:
    reports = []
    for name in files or ["-"]:
        if name == "-":
            reports.append(diagnose_stream(sys.stdin.buffer, "<stdin>", rules))
            continue
        with open_input(name) as f:
            reports.append(diagnose_stream(f, name, rules))
    return reports


@contextlib.contextmanager
def open_input(name: str) -> Iterator[BinaryIO]:
    """Open a log file; every way that can fail becomes a one-line InputError."""
    path = Path(name)
    if path.is_dir():
        raise InputError(f"{name}: is a directory, not a log file")
    try:
        with path.open("rb") as f:
            yield f
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a log file") from None
    except BrokenPipeError:
        raise  # our reader went away (espdiag events x.log | head): not a problem with the input
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from None


def diagnose(files: Sequence[str], rules: RuleSet, fmt: str, colour: str, verbose: bool, exit_zero: bool) -> int:
    reports = read_reports(files, rules)
    write_reports(reports, fmt, colour, verbose, prepare_stdout())
    if not exit_zero and any(r.verdict == "failure" for r in reports):
        return ExitCode.FAILURE
    return ExitCode.OK

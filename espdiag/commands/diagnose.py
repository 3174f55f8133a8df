"""``espdiag [FILE...]``: diagnose upload logs (standard input when no file is given).

Every readable file gets its report even when another one cannot be read; the unreadable ones are
named on stderr and make the exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from espdiag.errors import ExitCode
from espdiag.inputs import diagnose_files, exit_code
from espdiag.output import write_reports, writing_stdout
from espdiag.rules import RuleSet


def diagnose(files: Sequence[str], rules: RuleSet, fmt: str, colour: str, verbose: bool, exit_zero: bool) -> int:
    reports, errors = diagnose_files(files, rules)
    if reports:
        with writing_stdout() as out:
            write_reports(reports, fmt, colour, verbose, out)
    for error in errors:
        print(f"espdiag: {error}", file=sys.stderr)
    return ExitCode.USAGE if errors else exit_code(reports, exit_zero)

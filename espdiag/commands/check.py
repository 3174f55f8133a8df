"""``espdiag check FILE...``: non-interactive verdicts for CI and pre-commit.

One line per file (``path: verdict top-cause (confidence)``). A file *fails the check* when

* the upload failed — whatever the cause: when no cause reaches ``--fail-on`` the line says
  ``unexplained``, and it still fails because the upload did; or
* the log stops inside an upload attempt, with no result (usually ``2>&1`` was left out); or
* the log did not fail (success or no upload result) but a cause reaches ``--fail-on`` (boot output
  showing a brownout or a strapping problem, a chip left in download mode after flashing).

Exit 1 if any file fails the check, 0 otherwise, 2 if a file cannot be read (every file is still
checked; the unreadable ones are reported on stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from espdiag.errors import ExitCode
from espdiag.inputs import diagnose_files, stops_inside_attempt
from espdiag.output import RENDERERS, write_reports, writing_stdout
from espdiag.render import github
from espdiag.render.safe import one_line
from espdiag.report import Report
from espdiag.rules import RuleSet

DEFAULT_FAIL_ON = 0.5
# "line" is check's own; the others are report formats (rich needs a terminal, so it is left out)
FORMATS = ("line", *(name for name in RENDERERS if name != "rich"))


def fails(report: Report, fail_on: float) -> bool:
    top = report.causes[0].confidence if report.causes else 0.0
    return report.verdict == "failure" or stops_inside_attempt(report) or top >= fail_on


def line(report: Report, fail_on: float) -> str:
    confident = [c for c in report.causes if c.confidence >= fail_on]
    if confident:
        top = confident[0]
        return f"{report.source}: {report.verdict} {top.id} ({top.confidence:.2f})"
    if report.verdict == "failure":
        guess = f" (best guess {report.causes[0].id} {report.causes[0].confidence:.2f})" if report.causes else ""
        return f"{report.source}: failure unexplained{guess}"
    if stops_inside_attempt(report):
        return f"{report.source}: unknown, the log stops before the upload's result (pipe it with 2>&1)"
    return f"{report.source}: {report.verdict}"


def check(files: Sequence[str], rules: RuleSet, fmt: str = "line", fail_on: float = DEFAULT_FAIL_ON,
          err: TextIO | None = None) -> int:
    err = err or sys.stderr
    reports, errors = diagnose_files(files, rules)
    for error in errors:
        print(f"espdiag: {error}", file=err)
    with writing_stdout() as out:
        if fmt in ("line", "github"):
            summaries = [line(report, fail_on) for report in reports]
            if fmt == "github":
                out.write(github.render(reports, fail_on))  # annotation levels follow --fail-on
                summaries = github.plain_lines(summaries)  # a file name cannot inject a workflow command
            else:
                summaries = [one_line(s) for s in summaries]  # nor act on a terminal
            out.write("".join(s + "\n" for s in summaries))
        elif reports:
            write_reports(reports, fmt, "never", False, out)
    if errors:
        return ExitCode.USAGE
    return ExitCode.FAILURE if any(fails(r, fail_on) for r in reports) else ExitCode.OK

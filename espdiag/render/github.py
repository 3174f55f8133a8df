"""``--format github``: GitHub Actions workflow commands, so causes appear as annotations on the log.

One ``::error`` per likely cause (confidence >= ``--fail-on``, 0.5 by default; ``::warning`` below that) placed on the cause's
first evidence line, with the other evidence lines, the explanation and the fixes in the message.
An unexplained failure is one ``::error`` on the last line of the attempt; a success is a ``::notice``.
GitHub shows at most 10 errors and 10 warnings per step, so only the top causes are annotated.
"""

from __future__ import annotations

import secrets

from espdiag.ranking import Cause
from espdiag.render.safe import one_line, visible
from espdiag.report import Report

MAX_CAUSES = 5
LIKELY = 0.5


def escape_data(text: str) -> str:
    """A workflow command's message: line breaks can end the command, so they are encoded; other
    control characters (ESC, C1, bidi) are made visible."""
    return visible(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **props: str | int | None) -> str:
    given = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None and v != "")
    return f"::{kind}{' ' + given if given else ''}::{escape_data(message)}"


def _file(report: Report) -> str | None:
    return None if report.source.startswith("<") else report.source


def _message(cause: Cause) -> str:
    parts = [f"{cause.title} ({cause.id}, {cause.confidence:.0%})"]
    if cause.explain:
        parts.append(cause.explain)
    if len(cause.evidence) > 1:
        parts.append("Evidence: " + "; ".join(f"line {e.line}: {e.text[:200]}" for e in cause.evidence))
    if cause.fixes:
        parts.append("Fix:\n" + "\n".join(f"{i}. {f}" for i, f in enumerate(cause.fixes, 1)))
    if cause.docs:
        parts.append("Docs: " + " ".join(cause.docs))
    return "\n".join(parts)


def plain_lines(lines: list[str]) -> list[str]:
    """Lines of plain text that hold file names or log text (``espdiag check``'s summary lines), safe
    to print into a workflow log: a line break in a name is shown as ``\\n``, and when a line could
    still be read as a workflow command (a file named ``::error::x``), command processing is stopped
    around them with a token nobody can guess."""
    safe = [one_line(line) for line in lines]
    if not any(line.lstrip().startswith(("::", "##[")) for line in safe):
        return safe
    token = secrets.token_hex(16)
    return [f"::stop-commands::{token}", *safe, f"::{token}::"]


def lines(report: Report, fail_on: float = LIKELY) -> list[str]:
    """The annotations for one report; a cause at or above ``fail_on`` (``check --fail-on``) is an
    ``::error`` when the upload failed, a lower one a ``::warning``."""
    file = _file(report)
    out = []
    if report.verdict == "success" and not report.causes:
        return [command("notice", report.summary, file=file, title="espdiag: upload succeeded")]
    for cause in report.causes[:MAX_CAUSES]:
        kind = "error" if cause.confidence >= fail_on and report.verdict == "failure" else "warning"
        first = cause.evidence[0].line if cause.evidence else (report.last_line or None)
        last = cause.evidence[-1].line if cause.evidence else None
        # a range is only given for contiguous evidence; otherwise the message lists the lines
        contiguous = last is not None and first is not None and last - first + 1 == len(cause.evidence)
        out.append(command(kind, _message(cause), file=file, line=first,
                           endLine=last if contiguous and last != first else None,
                           title=f"espdiag: {cause.title}"))
    if report.verdict == "failure" and not any(c.confidence >= fail_on for c in report.causes):
        steps = "\n".join(f"{i}. {s}" for i, s in enumerate(report.checklist, 1))
        out.append(command("error", f"{report.summary}\n{steps}".strip(), file=file,
                           line=report.last_line or None, title="espdiag: upload failed, cause unknown"))
    if report.verdict == "unknown" and not report.causes:
        out.append(command("notice", report.summary, file=file, title="espdiag: no upload result"))
    return out


def render(reports: list[Report], fail_on: float = LIKELY) -> str:
    return "".join(line + "\n" for report in reports for line in lines(report, fail_on))

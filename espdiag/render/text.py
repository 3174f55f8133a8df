"""Plain text report: for pipes, files, NO_COLOR and consoles without colour."""

from __future__ import annotations

from espdiag.render.layout import layout
from espdiag.report import Report


def render(reports: list[Report], verbose: bool = False, width: int | None = None) -> str:
    """The report as plain text; ``width`` (see ``layout.terminal_width``) wraps it for a terminal."""
    parts = []
    for report in reports:
        parts.append("".join(text for _style, text in layout(report, verbose, width)))
    return "\n".join(parts)

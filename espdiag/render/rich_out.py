"""Colour report for terminals. rich is imported only here, so other formats start faster."""

from __future__ import annotations

from typing import TextIO

from espdiag.render.colour import use_colour
from espdiag.render.layout import layout, terminal_width
from espdiag.report import Report

THEME = {
    "heading": "bold", "danger": "bold red", "success": "bold green", "warning": "bold yellow",
    "summary": "bold", "dim": "dim", "rank": "bold", "cause": "bold cyan", "confidence": "magenta",
    "title": "", "text": "", "label": "underline", "lineno": "dim", "log": "yellow", "fix": "",
}
DEFAULT_WIDTH = 80  # what rich is told off a terminal; with soft_wrap it wraps nothing itself


def write(reports: list[Report], stream: TextIO, verbose: bool = False, colour: str = "auto") -> None:
    """Write the report in colour, wrapped to the terminal's width (``COLUMNS`` if set).

    ``colour`` is the ``--color`` choice: ``always`` colours even into a pipe (``| less -R``),
    ``never`` gives the same layout with no escape codes at all, ``auto`` asks the stream (and
    ``NO_COLOR``, ``FORCE_COLOR``, ``TERM=dumb``). rich's own detection is not used: it would ignore
    the option.
    """
    from rich.console import Console
    from rich.text import Text
    from rich.theme import Theme

    coloured = use_colour(stream, colour)
    width = terminal_width(stream)  # None into a file or a pipe (even in colour): lines are not wrapped
    # soft_wrap: the layout wrapped the lines already; rich must not break them again (or a URL)
    console = Console(file=stream, theme=Theme({k: v or "none" for k, v in THEME.items()}),
                      soft_wrap=True, emoji=False, highlight=False, width=width or DEFAULT_WIDTH,
                      force_terminal=coloured, no_color=not coloured,
                      color_system="auto" if coloured else None)
    for i, report in enumerate(reports):
        if i:
            console.print()
        text = Text()
        for style, part in layout(report, verbose, width):
            text.append(part, style=style or None)  # Text never interprets markup in log lines
        console.print(text, end="")

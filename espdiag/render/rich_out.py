"""Colour report for terminals. rich is imported only here, so other formats start faster."""

from __future__ import annotations

from typing import TextIO

from espdiag.render.layout import layout
from espdiag.report import Report

THEME = {
    "heading": "bold", "danger": "bold red", "success": "bold green", "warning": "bold yellow",
    "summary": "bold", "dim": "dim", "rank": "bold", "cause": "bold cyan", "confidence": "magenta",
    "title": "", "text": "", "label": "underline", "lineno": "dim", "log": "yellow", "fix": "",
}


def write(reports: list[Report], stream: TextIO, verbose: bool = False) -> None:
    from rich.console import Console
    from rich.text import Text
    from rich.theme import Theme

    console = Console(file=stream, theme=Theme({k: v or "none" for k, v in THEME.items()}),
                      soft_wrap=True, emoji=False, highlight=False)
    for i, report in enumerate(reports):
        if i:
            console.print()
        text = Text()
        for style, part in layout(report, verbose):
            text.append(part, style=style or None)  # Text never interprets markup in log lines
        console.print(text, end="")

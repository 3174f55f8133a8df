"""Choosing a format and writing results to stdout safely on any console."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

from espdiag.report import Report


def prepare_stdout() -> TextIO:
    # A Windows console may use a legacy code page; never die on a character it cannot show.
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="replace")
    return stream


def use_colour(stream: TextIO, colour: str) -> bool:
    if colour == "always":
        return True
    if colour == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def write_reports(reports: list[Report], fmt: str, colour: str, verbose: bool, stream: TextIO) -> None:
    if fmt == "auto":
        fmt = "rich" if use_colour(stream, colour) else "text"
    if fmt == "rich":
        from espdiag.render import rich_out

        rich_out.write(reports, stream, verbose)
        return
    if fmt == "json":
        from espdiag.render import json_out

        stream.write(json_out.render(reports))
    elif fmt == "markdown":
        from espdiag.render import markdown

        stream.write(markdown.render(reports))
    elif fmt == "github":
        from espdiag.render import github

        stream.write(github.render(reports))
    elif fmt == "sarif":
        from espdiag.render import sarif

        stream.write(sarif.render(reports))
    else:
        from espdiag.render import text

        stream.write(text.render(reports, verbose))
    stream.flush()

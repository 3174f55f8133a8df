"""The human report layout, as (style, text) segments: text.py prints them plain, rich.py colours them.

Keeping one layout means the plain and the colour reports never drift apart. Given a width, every
line is wrapped at word boundaries with a hanging indent (a fix continues under its own text, not
under its number), and evidence lines are cut with ``…`` so that their line numbers stay in view.
A URL is never broken (it must stay clickable and copyable): when it does not fit, it gets a line of
its own at the indent and may run past the width.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from espdiag.checks import answer_summary
from espdiag.render.safe import one_line, visible
from espdiag.report import Report

Segment = tuple[str, str]  # (semantic style name, text); "\n" ends a line
MAX_CAUSES = 5
MIN_WIDTH = 40  # narrower than this and wrapping does more harm than good
_TOKEN = re.compile(r"\s+|\S+")


@dataclass
class Line:
    """One line of the report before wrapping: its segments, where continuation lines start, and
    whether it is a log line (cut at the width, never wrapped)."""

    segments: list[Segment] = field(default_factory=list)
    hang: int = 0
    cut: bool = False


def _setup(report: Report) -> str:
    ctx = report.context
    bits = []
    if report.tool:
        version = ctx.get("tool_version")
        bits.append(f"{report.tool} {version}" if version else report.tool)
    for key in ("env", "chip", "port", "os"):
        if ctx.get(key) and str(ctx[key]) not in bits:
            bits.append(str(ctx[key]))
    if ctx.get("baud"):
        bits.append(f"{ctx['baud']} baud")
    if ctx.get("reset_method"):
        bits.append(f"reset {ctx['reset_method']}")
    return ", ".join(bits)


setup_line = _setup


def _checks(report: Report) -> Iterator[Line]:
    checks = report.checks
    if not checks:
        return
    yield Line()
    yield Line([("label", "The log cannot tell these apart; check, cheapest first:")])
    for i, sel in enumerate(checks, 1):
        yield Line([("fix", f"  {i}. [{sel.check.cost}] {sel.ask}")], hang=4 + len(str(i)))
        for a in sel.answers:
            parts: list[Segment] = [("text", f"     - {a.answer}: {a.means}")]
            summary = answer_summary(a, sel.candidates)
            if summary:
                parts.append(("dim", f" ({summary})"))
            yield Line(parts, hang=7)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def report_lines(report: Report, verbose: bool = False) -> Iterator[Line]:
    verdict_style = {"failure": "danger", "success": "success"}.get(report.verdict, "warning")
    head = Line([("heading", f"{one_line(report.source)}: "), (verdict_style, report.headline)], hang=2)
    setup = _setup(report)
    if setup:
        head.segments.append(("dim", f"  ({setup})"))
    yield head
    yield Line([("summary", report.summary)])
    for note in report.notes:
        yield Line([("dim", note)])
    causes = report.causes if verbose else report.causes[:MAX_CAUSES]
    for rank, cause in enumerate(causes, 1):
        yield Line()
        yield Line([("rank", f"{rank}. "), ("cause", cause.id), ("confidence", f"  {cause.confidence:.0%}"),
                    ("", "  "), ("title", cause.title)], hang=3)
        if cause.explain:
            yield Line([("text", f"   {cause.explain}")], hang=3)
        if cause.evidence:
            yield Line([("label", "   Evidence:")])
            width = len(str(max(e.line for e in cause.evidence)))
            for e in cause.evidence:
                line = Line([("lineno", f"     {e.line:>{width}} | "), ("log", e.text)], cut=True)
                n = cause.evidence_counts.get(e.text, 1)
                if n > 1:
                    line.segments.append(("dim", f"  (x{n})"))
                yield line
        if cause.fixes:
            yield Line([("label", "   Fix:")])
            for i, fix in enumerate(cause.fixes, 1):
                yield Line([("fix", f"     {i}. {fix}")], hang=7 + len(str(i)))
        for note in cause.notes:
            yield Line([("dim", f"   Note: {note}")], hang=9)
        for doc in cause.docs:
            yield Line([("dim", f"   Docs: {doc}")], hang=9)
    hidden = len(report.causes) - len(causes)
    if hidden > 0:
        yield Line()
        yield Line([("dim", f"({plural(hidden, 'less likely cause')} not shown; use --verbose)")], hang=1)
    yield from _checks(report)
    if report.checklist:
        yield Line()
        yield Line([("label", "Nothing in the log pins the cause down. Work through this checklist:")])
        for i, step in enumerate(report.checklist, 1):
            yield Line([("fix", f"  {i}. {step}")], hang=4 + len(str(i)))


def layout(report: Report, verbose: bool = False, width: int | None = None) -> Iterator[Segment]:
    """The report as segments; with ``width``, wrapped and cut to that many columns."""
    for line in report_lines(report, verbose):
        segments = [(style, visible(text)) for style, text in line.segments]
        if width is None:
            yield from segments
        elif line.cut:
            yield from _cut(segments, max(width, MIN_WIDTH))
        else:
            yield from _merged(_wrap(segments, max(width, MIN_WIDTH), line.hang))
        yield "", "\n"


def _merged(segments: Iterator[Segment]) -> Iterator[Segment]:
    """Neighbours of one style joined: wrapping cuts text into words, a terminal needs no code per word."""
    style, text = "", ""
    for s, t in segments:
        if s == style or not text:
            style, text = (s, text + t) if text else (s, t)
        else:
            yield style, text
            style, text = s, t
    if text:
        yield style, text


def _is_url(token: str) -> bool:
    return token.startswith(("http://", "https://", "<http"))


def _wrap(segments: list[Segment], width: int, hang: int) -> Iterator[Segment]:
    hang = min(hang, width // 2)
    col = 0
    pending: list[Segment] = []  # the spaces before the next word: dropped when the line breaks there
    for style, text in segments:
        for token in _TOKEN.findall(text.replace("\n", " ")):
            if token.isspace():
                pending.append((style, token))
                continue
            spaces = sum(len(t) for _, t in pending)
            if col > hang and col + spaces + len(token) > width:
                yield "", "\n" + " " * hang
                col = hang
            else:
                yield from pending
                col += spaces
            pending = []
            if not _is_url(token):
                while col + len(token) > width:  # a word longer than a whole line: split it at the edge
                    n = max(width - col, 1)
                    yield style, token[:n]
                    yield "", "\n" + " " * hang
                    col, token = hang, token[n:]
            yield style, token
            col += len(token)


def _cut(segments: list[Segment], width: int) -> Iterator[Segment]:
    """A log line cut to ``width`` with ``…``; its line number (first segment) and count (a last
    segment after the log text) are kept whole."""
    fixed = sum(len(t) for s, t in segments if s != "log")
    for style, text in segments:
        if style == "log":
            room = max(width - fixed, 10)
            if len(text) > room:
                text = text[: room - 1] + "…"
        yield style, text


def terminal_width(stream: TextIO) -> int | None:
    """The width to wrap a report for ``stream``: ``COLUMNS`` if set, the terminal's width if the
    stream is one, else ``None`` (a file or a pipe: lines are not wrapped)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (OSError, ValueError, AttributeError):
        return shutil.get_terminal_size().columns

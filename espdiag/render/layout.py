"""The human report layout, as (style, text) segments: text.py prints them plain, rich.py colours them.

Keeping one layout means the plain and the colour reports never drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator

from espdiag.checks import answer_summary
from espdiag.report import Report

Segment = tuple[str, str]  # (semantic style name, text); "\n" ends a line
MAX_CAUSES = 5


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


def _checks(report: Report) -> Iterator[Segment]:
    checks = report.checks
    if not checks:
        return
    yield "", "\n"
    yield "label", "The log cannot tell these apart; check, cheapest first:"
    yield "", "\n"
    for i, sel in enumerate(checks, 1):
        yield "fix", f"  {i}. [{sel.check.cost}] {sel.ask}"
        yield "", "\n"
        for a in sel.answers:
            yield "text", f"     - {a.answer}: {a.means}"
            summary = answer_summary(a, sel.candidates)
            if summary:
                yield "dim", f" ({summary})"
            yield "", "\n"  # "tool version, env, chip, port, os, baud, reset": shared with the other formats


def layout(report: Report, verbose: bool = False) -> Iterator[Segment]:
    verdict_style = {"failure": "danger", "success": "success"}.get(report.verdict, "warning")
    yield "heading", f"{report.source}: "
    yield verdict_style, report.verdict.upper()
    setup = _setup(report)
    if setup:
        yield "dim", f"  ({setup})"
    yield "", "\n"
    yield "summary", report.summary
    yield "", "\n"
    for note in report.notes:
        yield "dim", note
        yield "", "\n"
    causes = report.causes if verbose else report.causes[:MAX_CAUSES]
    for rank, cause in enumerate(causes, 1):
        yield "", "\n"
        yield "rank", f"{rank}. "
        yield "cause", cause.id
        yield "confidence", f"  {cause.confidence:.0%}"
        yield "", "  "
        yield "title", cause.title
        yield "", "\n"
        if cause.explain:
            yield "text", f"   {cause.explain}"
            yield "", "\n"
        if cause.evidence:
            yield "label", "   Evidence:"
            yield "", "\n"
            width = len(str(max(e.line for e in cause.evidence)))
            for e in cause.evidence:
                yield "lineno", f"     {e.line:>{width}} | "
                yield "log", e.text
                n = cause.evidence_counts.get(e.text, 1)
                if n > 1:
                    yield "dim", f"  (x{n})"
                yield "", "\n"
        if cause.fixes:
            yield "label", "   Fix:"
            yield "", "\n"
            for i, fix in enumerate(cause.fixes, 1):
                yield "fix", f"     {i}. {fix}"
                yield "", "\n"
        for note in cause.notes:
            yield "dim", f"   Note: {note}"
            yield "", "\n"
        for doc in cause.docs:
            yield "dim", f"   Docs: {doc}"
            yield "", "\n"
    hidden = len(report.causes) - len(causes)
    if hidden > 0:
        yield "dim", f"\n({hidden} less likely causes not shown; use --verbose)"
        yield "", "\n"
    yield from _checks(report)
    if report.checklist:
        yield "", "\n"
        yield "label", "Nothing in the log pins the cause down. Work through this checklist:"
        yield "", "\n"
        for i, step in enumerate(report.checklist, 1):
            yield "fix", f"  {i}. {step}"
            yield "", "\n"

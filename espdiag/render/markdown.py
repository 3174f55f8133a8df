"""``--format markdown``: a reply to paste into a Discourse or GitHub thread as is.

Verdict, ranked causes with confidence, evidence in a fenced block with line numbers, numbered fixes
and docs links. No terminal escape codes. The top three causes are shown in full; the rest, and
evidence longer than a screenful, fold into ``<details>`` so the reply stays short.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from espdiag import __version__
from espdiag.checks import answer_summary
from espdiag.ranking import Cause
from espdiag.render.layout import setup_line
from espdiag.report import Report

SHOWN = 3  # causes shown in full; the rest are folded
LONG_EVIDENCE = 6  # more evidence lines than this are folded
MAX_LINE = 240  # evidence lines are cut here: a forum reply is not the place for a 4 KiB line
_BACKTICKS = re.compile(r"`+")


def prose(text: str) -> str:
    """Text that came from a rule or a log, made safe for Markdown prose.

    ``<`` would start an HTML tag (and hide ``<port>``); ``&`` could start an entity. Nothing else is
    escaped so that the source of the reply stays readable.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", " ")


def _fence(lines: list[str]) -> str:
    longest = max((len(m) for line in lines for m in _BACKTICKS.findall(line)), default=0)
    return "`" * max(3, longest + 1)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 1] + "…"


def evidence_block(cause: Cause) -> list[str]:
    width = len(str(max(e.line for e in cause.evidence)))
    body = []
    for e in cause.evidence:
        n = cause.evidence_counts.get(e.text, 1)
        body.append(f"{e.line:>{width}} | {_cut(e.text)}" + (f"   (x{n})" if n > 1 else ""))
    fence = _fence(body)
    return [f"{fence}text", *body, fence]


def _cause(rank: int, cause: Cause) -> Iterator[str]:
    yield f"### {rank}. {prose(cause.title)} — `{cause.id}`, {cause.confidence:.0%}"
    yield ""
    if cause.explain:
        yield prose(cause.explain)
        yield ""
    if cause.evidence:
        block = evidence_block(cause)
        if len(cause.evidence) > LONG_EVIDENCE:
            yield f"<details><summary>Evidence ({len(cause.evidence)} log lines)</summary>"
            yield ""
            yield from block
            yield ""
            yield "</details>"
        else:
            yield "Evidence (line numbers of the log):"
            yield ""
            yield from block
        yield ""
    if cause.fixes:
        yield "**Fix:**"
        yield ""
        for i, fix in enumerate(cause.fixes, 1):
            yield f"{i}. {prose(fix)}"
        yield ""
    for note in cause.notes:
        yield f"_Note: {prose(note)}_"
        yield ""
    if cause.docs:
        yield "Docs: " + ", ".join(f"<{d}>" for d in cause.docs)
        yield ""


def _checks(report: Report) -> Iterator[str]:
    """The questions an expert would ask next, each answer with what it means for each candidate."""
    checks = report.checks
    if not checks:
        return
    yield "**The log cannot tell these apart. A few questions, cheapest first:**"
    yield ""
    for i, sel in enumerate(checks, 1):
        yield f"{i}. {prose(sel.ask)} _({sel.check.cost})_"
        for a in sel.answers:
            summary = answer_summary(a, sel.candidates)
            yield f"   - **{prose(a.answer)}** → {prose(a.means)}" + (f" ({prose(summary)})" if summary else "")
    yield ""


def _report(report: Report) -> Iterator[str]:
    setup = setup_line(report)
    source = report.source.replace("`", "'")
    yield f"**espdiag:** `{source}`: **{report.verdict.upper()}**" + (f" ({prose(setup)})" if setup else "")
    yield ""
    yield f"**{prose(report.summary)}**"
    yield ""
    for note in report.notes:
        yield f"_{prose(note)}_"
        yield ""
    shown, rest = report.causes[:SHOWN], report.causes[SHOWN:]
    for rank, cause in enumerate(shown, 1):
        yield from _cause(rank, cause)
    if rest:
        listed = prose(", ".join(f"{c.id} {c.confidence:.0%}" for c in rest))
        yield f"<details><summary>{len(rest)} less likely cause{'s' if len(rest) > 1 else ''}: {listed}</summary>"
        yield ""
        for rank, cause in enumerate(rest, SHOWN + 1):
            yield from _cause(rank, cause)
        yield "</details>"
        yield ""
    yield from _checks(report)
    if report.checklist:
        yield "Nothing in the log pins the cause down. Work through this checklist:"
        yield ""
        for i, step in enumerate(report.checklist, 1):
            yield f"{i}. {prose(step)}"
        yield ""


def render(reports: list[Report]) -> str:
    parts = ["\n".join(_report(r)).rstrip() + "\n" for r in reports]
    footer = f"\n<sub>Diagnosed with espdiag {__version__}.</sub>\n"
    return "\n---\n\n".join(parts) + footer

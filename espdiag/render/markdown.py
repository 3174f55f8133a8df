"""``--format markdown``: a reply to paste into a Discourse or GitHub thread as is.

Verdict, ranked causes with confidence, evidence in a fenced block with line numbers, numbered fixes
and docs links. No terminal escape codes. The top three causes are shown in full; the rest, and
evidence longer than a screenful, fold into ``<details>`` so the reply stays short.

Log text is untrusted: evidence sits in fences longer than any backtick run in it, values from the
log are code spans wherever they appear in prose, and the rest of the prose is escaped, so nothing
in a log can add an image, a link or HTML to the reply. The log is named by its base name only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from espdiag import __version__
from espdiag.checks import answer_summary
from espdiag.ranking import Cause
from espdiag.render.layout import plural, setup_line
from espdiag.render.safe import visible
from espdiag.report import Report

SHOWN = 3  # causes shown in full; the rest are folded
LONG_EVIDENCE = 6  # more evidence lines than this are folded
MAX_LINE = 240  # evidence lines are cut here: a forum reply is not the place for a 4 KiB line
_BACKTICKS = re.compile(r"`+")
_SPECIAL = re.compile(r"[\\`*_\[\]|~]")  # backslash-escaped: links, images, emphasis, code, tables
_LINE_START = re.compile(r"^(\s*)([#>+=-])")  # a heading, quote or list marker where a line starts
# a log value like these (COM3, 115200, 5.1.0) cannot start anything; "esptool.py" could be autolinked
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9 -]*(?:\.[0-9][A-Za-z0-9 -]*)*")
# what linkify (GitHub, Discourse) turns into a link: "https:" before "//", and with fuzzy links
# every "name.tld" dot and an e-mail's "@"; their last character gets a backslash
_LINKISH = re.compile(r"(?i)[a-z][a-z0-9+.-]*:(?=//)|(?<=[a-z0-9])[.@](?=[a-z])")
Values = tuple[str, ...]


def _escape(text: str, line_start: bool = True) -> str:
    text = _SPECIAL.sub(r"\\\g<0>", text.replace("&", "&amp;").replace("<", "&lt;"))
    # an escaped ":", "." or "@" reads the same but is no part of a link any more
    text = _LINKISH.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], text)
    return _LINE_START.sub(r"\1\\\2", text) if line_start else text


def code(text: str) -> str:
    """``text`` as a code span: nothing in it is Markdown, HTML or a link, whatever it holds."""
    text = text.replace("\n", " ").replace("\r", " ")
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def log_values(report: Report) -> Values:
    """The values taken from the log that rule texts may quote: the context (port, chip, tool, ...)
    and the fields of the evidence lines, whose {placeholders} are filled with them."""
    fields = (v for c in report.causes for e in c.evidence for v in e.fields.values())
    values = {str(v) for v in (*report.context.values(), *fields) if not isinstance(v, bool)}
    return tuple(sorted((v for v in values if len(v) > 1 and not _PLAIN_VALUE.fullmatch(v)), key=len, reverse=True))


def prose(text: str, values: Values = ()) -> str:
    """Text that came from a rule or a log, made safe for Markdown prose.

    Every value from the log in it becomes a code span, so a port named
    ``![x](https://evil.example/t.png)[Click here](...)`` is shown, not rendered as an image, a link
    or an autolink. The rest is escaped: HTML (``<``, ``&``), link and emphasis brackets, backticks,
    and line-start markers. Line breaks become spaces.
    """
    text = text.replace("\n", " ")
    if not values:
        return _escape(text)
    pattern = re.compile("(?<![\\w-])(" + "|".join(re.escape(v) for v in values) + ")(?![\\w-])")
    out: list[str] = []
    last = 0
    for m in pattern.finditer(text):
        out.append(_escape(text[last:m.start()], not out))
        out.append(code(m.group()))
        last = m.end()
    out.append(_escape(text[last:], not out))
    return "".join(out)


def _autolink(url: str) -> str:
    # backslash escapes do not work inside <...>: what would end the autolink is percent-encoded
    return re.sub(r"[\s<>]", lambda m: f"%{ord(m.group()):02X}", url)


def source_name(source: str) -> str | None:
    """The name to show for a log: its base name (a reply must not show the helper's local paths);
    ``None`` for standard input and other inputs without a file."""
    if source.startswith("<") and source.endswith(">"):
        return None
    return re.split(r"[\\/]", source.rstrip("/\\"))[-1] or None


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


def _cause(rank: int, cause: Cause, values: Values) -> Iterator[str]:
    yield f"### {rank}. {prose(cause.title, values)} — {code(cause.id)}, {cause.confidence:.0%}"
    yield ""
    if cause.explain:
        yield prose(cause.explain, values)
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
            yield f"{i}. {prose(fix, values)}"
        yield ""
    for note in cause.notes:
        yield f"_Note: {prose(note, values)}_"
        yield ""
    if cause.docs:
        yield "Docs: " + ", ".join(f"<{_autolink(d)}>" for d in cause.docs)
        yield ""


def _checks(report: Report, values: Values) -> Iterator[str]:
    """The questions an expert would ask next, each answer with what it means for each candidate."""
    checks = report.checks
    if not checks:
        return
    yield "**The log cannot tell these apart. A few questions, cheapest first:**"
    yield ""
    for i, sel in enumerate(checks, 1):
        yield f"{i}. {prose(sel.ask, values)} _({sel.check.cost})_"
        for a in sel.answers:
            summary = answer_summary(a, sel.candidates)
            yield f"   - **{prose(a.answer, values)}** → {prose(a.means, values)}" + (f" ({prose(summary)})" if summary else "")
    yield ""


def _report(report: Report) -> Iterator[str]:
    values = log_values(report)
    setup = setup_line(report)
    name = source_name(report.source)
    shown_name = f"{code(name)}: " if name else ""
    yield f"**espdiag:** {shown_name}**{report.headline}**" + (f" ({prose(setup, values)})" if setup else "")
    yield ""
    yield f"**{prose(report.summary, values)}**"
    yield ""
    for note in report.notes:
        yield f"_{prose(note, values)}_"
        yield ""
    shown, rest = report.causes[:SHOWN], report.causes[SHOWN:]
    for rank, cause in enumerate(shown, 1):
        yield from _cause(rank, cause, values)
    if rest:
        listed = prose(", ".join(f"{c.id} {c.confidence:.0%}" for c in rest))
        yield f"<details><summary>{plural(len(rest), 'less likely cause')}: {listed}</summary>"
        yield ""
        for rank, cause in enumerate(rest, SHOWN + 1):
            yield from _cause(rank, cause, values)
        yield "</details>"
        yield ""
    yield from _checks(report, values)
    if report.checklist:
        yield "Nothing in the log pins the cause down. Work through this checklist:"
        yield ""
        for i, step in enumerate(report.checklist, 1):
            yield f"{i}. {prose(step, values)}"
        yield ""


def render(reports: list[Report]) -> str:
    parts = ["\n".join(_report(r)).rstrip() + "\n" for r in reports]
    footer = f"\n<sub>Diagnosed with espdiag {__version__}.</sub>\n"
    return visible("\n---\n\n".join(parts) + footer)

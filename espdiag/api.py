"""Library entry points: diagnose a log given as a path, bytes, text or binary stream."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from espdiag import engine, ranking, scanner, sessions
from espdiag.events import Event, FieldValue
from espdiag.reader import iter_lines
from espdiag.report import Report
from espdiag.rules import RuleSet, load_rules
from espdiag.sessions import Tracker

_CACHE_LIMIT = 100_000  # distinct physical lines remembered per log
_default_rules: RuleSet | None = None


def default_rules() -> RuleSet:
    global _default_rules
    if _default_rules is None:
        _default_rules = load_rules()
    return _default_rules


Parts = tuple[tuple[str, str, dict[str, FieldValue]], ...]  # (text, kind, fields) per logical line


def parse_stream(stream: BinaryIO, name: str = "<stdin>") -> Iterator[tuple[int, Parts]]:
    """Read, normalise and parse a log: yield ``(line_number, parts)`` per physical line.

    The single read → normalise → parse path, shared by :func:`scan` and ``espdiag events``.
    """
    cache: dict[bytes, Parts] = {}
    for number, raw in iter_lines(stream, name):
        items = cache.get(raw)
        if items is None:
            items = scanner.parse_raw(raw)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[raw] = items
        yield number, items


def iter_events(stream: BinaryIO, name: str = "<stdin>") -> Iterator[Event]:
    """Every event of a log in input order (nothing is dropped or summarised)."""
    for number, items in parse_stream(stream, name):
        for text, kind, fields in items:
            yield Event(kind, number, text, fields)


def scan(stream: BinaryIO, name: str = "<stdin>") -> tuple[Tracker, int]:
    """Read, normalise and parse a whole log into a session tracker; return it and the line count.

    The same result as feeding every event of :func:`parse_stream` to ``Tracker.add``, computed a
    block at a time: see espdiag/scanner.py.
    """
    return scanner.scan(stream, name)


def diagnose_stream(stream: BinaryIO, name: str = "<stdin>", rules: RuleSet | None = None) -> Report:
    ruleset = rules if rules is not None else default_rules()
    tracker, lines = scan(stream, name)
    session, attempts, failed, unfinished = tracker.result()
    ctx = session.context
    judgement = sessions.judge(session)
    notes = []
    if unfinished:
        notes.append(f"The paste holds {attempts} upload attempts ({failed} failed); the last one ends before "
                     "it failed or finished (the log is cut short, or the upload was still running), so this "
                     f"diagnoses attempt {session.index}, the last that failed.")
    elif attempts > 1:
        which = f"attempt {session.index} of {attempts}"
        notes.append(f"The paste holds {attempts} upload attempts ({failed} failed); this diagnoses {which}.")
    matches = engine.run(ruleset, session, ctx, judgement.verdict)
    causes = ranking.rank(matches, session, ctx)
    judgement.after_rules(session, any(c.confidence >= 0.5 for c in causes))
    verdict = judgement.verdict
    if judgement.failed_after_rules:
        failed = max(failed, 1)  # this attempt counts as failed: the verdict and the count agree
    notes = [*judgement.notes, *notes, *judgement.late_notes]
    boot_only = judgement.boot_only
    return Report(
        source=name, verdict=verdict, context=dict(sorted(ctx.items())), causes=causes,
        attempts=0 if boot_only else attempts, failed_attempts=0 if boot_only else failed,
        first_line=session.first_line, last_line=session.last_line, lines=lines, notes=notes,
        upload=not boot_only,
    )


def diagnose_path(path: str | Path, rules: RuleSet | None = None) -> Report:
    with open(path, "rb") as f:
        return diagnose_stream(f, str(path), rules)


def diagnose_bytes(data: bytes, name: str = "<bytes>", rules: RuleSet | None = None) -> Report:
    return diagnose_stream(io.BytesIO(data), name, rules)


def diagnose_text(text: str, name: str = "<text>", rules: RuleSet | None = None) -> Report:
    return diagnose_bytes(text.encode("utf-8"), name, rules)

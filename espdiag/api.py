"""Library entry points: diagnose a log given as a path, bytes, text or binary stream."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from espdiag import engine, ranking, scanner, sessions, stages
from espdiag.calibration import Model
from espdiag.events import KINDS, Event, FieldValue
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


# a tool's own words decide a failure in a short paste, or once the log shows an upload under way: a long
# text that no flasher wrote (a README, a chat) is not an upload log for its words "failed" or "error"
_WORDS_ALONE = 200


def _progressed(session: sessions.Session) -> bool:
    return any(KINDS[k].role in ("start", "progress") for k in session.kinds)


def diagnose_stream(
    stream: BinaryIO, name: str = "<stdin>", rules: RuleSet | None = None, model: Model | None = None,
    calibrated: bool = True,
) -> Report:
    """``calibrated=False`` keeps the rules' own scores (for text that is not an upload log, such as the
    probe's transcript: the confidence model was fitted on upload logs)."""
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
    boot_only = judgement.boot_only
    if boot_only and stages.boot_failing_lines(session):
        # the boot output reports errors of its own (ESP-IDF's "E (64) boot: ... error"): not a healthy result
        judgement.verdict = "failure"
    elif judgement.verdict == "unknown" and not boot_only:
        # no line the grammar knows decided it: the tool's own words still may (a GUI, an unknown flasher)
        if stages.failing_lines(session) and (lines <= _WORDS_ALONE or _progressed(session)):
            judgement.verdict = "failure"
            attempts, failed = max(attempts, 1), max(failed, 1)  # the verdict and the counts agree
            notes.append("No line of a known flasher says how the upload ended; lines of the tool's own "
                         "say that it failed.")
        elif stages.succeeding_lines(session):
            judgement.verdict = "success"
            notes.append("No line of a known flasher says how the upload ended; the tool's own words say it succeeded.")
    matches = engine.run(ruleset, session, ctx, judgement.verdict)
    stage = stages.infer(session, judgement.verdict)
    named = any(v >= ranking.MIN_CONFIDENCE for v in ranking.rule_confidences(matches).values())
    # a log with no result where no rule spoke (rules that read boot output keep their own scores)
    if judgement.verdict == "unknown" and not named and (stage := stages.cut_short(session)) is not None:
        if stage.id == "boot":
            notes.append("The log shows the chip's boot output and no upload result; the causes below are what "
                         "that output points at.")
        else:
            notes.append(f"The log ends while {stage.name}, before the upload failed or finished; if it failed "
                         "there, these are the usual causes.")
    if judgement.verdict == "failure" and stage is not None:
        where = ", ".join(str(e.line) for e in stage.evidence)
        notes.append(f"{stage.sentence[:-1]}" + (f" (line {where})." if where else "."))
    hints = stages.hints(session) if judgement.verdict == "failure" and calibrated else {}
    causes = ranking.rank(matches, session, ctx, stage if calibrated else None, model, hints)
    judgement.after_rules(session, any(c.confidence >= 0.5 for c in causes))
    verdict = judgement.verdict
    if judgement.failed_after_rules:
        failed = max(failed, 1)  # this attempt counts as failed: the verdict and the count agree
    if verdict == "failure" and stage is None:
        stage = stages.infer(session, verdict)
    notes = [*judgement.notes, *notes, *judgement.late_notes]
    return Report(
        source=name, verdict=verdict, context=dict(sorted(ctx.items())), causes=causes,
        attempts=0 if boot_only else attempts, failed_attempts=0 if boot_only else failed,
        first_line=session.first_line, last_line=session.last_line, lines=lines, notes=notes,
        upload=not boot_only, stage=stage, rule_scores=ranking.rule_confidences(matches, hints),
    )


def diagnose_path(path: str | Path, rules: RuleSet | None = None, model: Model | None = None) -> Report:
    with open(path, "rb") as f:
        return diagnose_stream(f, str(path), rules, model)


def diagnose_bytes(
    data: bytes, name: str = "<bytes>", rules: RuleSet | None = None, calibrated: bool = True
) -> Report:
    return diagnose_stream(io.BytesIO(data), name, rules, calibrated=calibrated)


def diagnose_text(text: str, name: str = "<text>", rules: RuleSet | None = None, calibrated: bool = True) -> Report:
    return diagnose_bytes(text.encode("utf-8"), name, rules, calibrated)

"""Combine rule matches into ranked causes with a confidence in 0..1."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from espdiag.context import KEYS as CONTEXT_KEYS
from espdiag.engine import Match, evaluate
from espdiag.events import Event, FieldValue
from espdiag.rules import MISSING_FIELD, Fix, fill
from espdiag.sessions import Session

MAX_EVIDENCE = 8
MIN_CONFIDENCE = 0.05


@dataclass(frozen=True)
class Cause:
    id: str
    confidence: float
    title: str
    explain: str
    evidence: tuple[Event, ...]
    evidence_counts: Mapping[str, int]  # text -> how often that line occurred in the attempt
    fixes: tuple[str, ...]
    docs: tuple[str, ...]
    rules: tuple[str, ...]
    notes: tuple[str, ...]


def _values(ctx: Mapping[str, FieldValue], quoted: Iterable[Event]) -> Callable[[str], str]:
    """What a rule's {name} reads: the context key, else the field of the first quoted event that has it.

    The loader allows only these names, so no "{name}" or "<name>" can reach a report.
    """
    def value(name: str) -> str:
        if name in ctx:
            return str(ctx[name])
        found = next((e.fields[name] for e in quoted if name in e.fields), None)
        return str(found) if found is not None else CONTEXT_KEYS.get(name, MISSING_FIELD)

    return value


_ASIDE = re.compile(r"\([^()]*\)")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fix_meaning(text: str) -> str:
    """A fix reduced to what it asks for: lower case, no asides in parentheses, no punctuation.

    "Lower the upload speed to 115200 baud." and "Lower the upload speed to 115200 baud (460800 if
    that works, to save time)." are one step, given once (the first, from the best-scoring rule).
    """
    return _NON_WORD.sub(" ", _ASIDE.sub(" ", text.lower())).strip()


def _fix_text(fix: Fix, env: str) -> str:
    variant = fix.variants.get(env)
    if variant is None and env == "arduino-cli":
        variant = fix.variants.get("arduino-ide")
    return f"{fix.text} {variant}".strip() if variant else fix.text


def rank(matches: list[Match], session: Session, ctx: Mapping[str, FieldValue]) -> list[Cause]:
    by_cause: dict[str, list[Match]] = {}
    for m in matches:
        by_cause.setdefault(m.rule.cause, []).append(m)
    env = str(ctx.get("env", ""))
    causes = []
    for cause_id, group in by_cause.items():
        group.sort(key=lambda m: -m.score)
        miss = 1.0
        for m in group:
            miss *= 1.0 - m.score
        confidence = round(min(0.99, 1.0 - miss), 3)
        if confidence < MIN_CONFIDENCE:
            continue
        best = group[0]
        value = _values(ctx, best.evidence)
        evidence: dict[int, Event] = {}
        for m in group:
            for e in m.evidence:
                evidence.setdefault(e.line, e)
        shown = _pick_evidence(sorted(evidence.values(), key=lambda e: e.line))
        counts = {e.text: session.text_counts.get(e.text, 1) for e in shown}
        fixes: list[str] = []
        said: set[str] = set()  # the meaning of each fix given (two rules often share one)
        for m in group:
            for fix in m.rule.fixes:
                if fix.unless is not None and evaluate(fix.unless, session, ctx)[0]:
                    continue
                values = _values(ctx, m.evidence)
                key = fix_meaning(fill(fix.text, values))
                if key not in said:
                    said.add(key)
                    fixes.append(fill(_fix_text(fix, env), values))
        docs = tuple(dict.fromkeys(d for m in group for d in m.rule.docs))
        causes.append(Cause(
            id=cause_id, confidence=confidence, title=fill(best.rule.title, value),
            explain=fill(best.rule.explain, value), evidence=tuple(shown), evidence_counts=counts,
            fixes=tuple(fixes), docs=docs, rules=tuple(m.rule.id for m in group),
            notes=tuple(n for m in group for n in m.notes),
        ))
    causes.sort(key=lambda c: (-c.confidence, c.id))
    return causes


def _pick_evidence(events: list[Event]) -> list[Event]:
    """Distinct lines first (a retry loop repeats itself), keeping the first and the last."""
    seen: dict[str, Event] = {}
    for e in events:
        seen.setdefault(e.text, e)
    distinct = sorted(seen.values(), key=lambda e: e.line)
    if len(distinct) <= MAX_EVIDENCE:
        return distinct
    return distinct[: MAX_EVIDENCE - 1] + distinct[-1:]

"""Evaluate compiled rules against one upload attempt and its context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from espdiag.events import Event, FieldValue
from espdiag.rules import Cond, Rule, RuleSet
from espdiag.sessions import Session


@dataclass(frozen=True)
class Match:
    rule: Rule
    score: float
    evidence: tuple[Event, ...]
    notes: tuple[str, ...]  # why the score was adjusted


def _event_matches(cond: Cond, event: Event) -> bool:
    if event.kind not in cond.kinds:
        return False
    for test in cond.tests:
        present = test.name in event.fields
        if not test.check(present, event.fields.get(test.name)):
            return False
    return cond.text is None or cond.text.search(event.text[:1024]) is not None


def _candidates(cond: Cond, session: Session, ctx: Mapping[str, FieldValue]) -> list[Event]:
    found = [e for e in session.events() if _event_matches(cond, e)]
    if cond.after is not None:
        anchors = _candidates(cond.after, session, ctx)
        start = min((a.line for a in anchors), default=None)
        found = [] if start is None else [e for e in found if e.line > start]
    if cond.before is not None:
        anchors = _candidates(cond.before, session, ctx)
        end = max((a.line for a in anchors), default=None)
        found = [] if end is None else [e for e in found if e.line < end]
    return found


def evaluate(cond: Cond, session: Session, ctx: Mapping[str, FieldValue]) -> tuple[bool, list[Event]]:
    if cond.kind == "event":
        found = _candidates(cond, session, ctx)
        simple = not (cond.tests or cond.text or cond.after or cond.before)
        # kept events are capped per kind; plain kind counts use the exact totals
        count = sum(session.count(k) for k in cond.kinds) if simple else len(found)
        ok = count >= cond.min and (cond.max is None or count <= cond.max)
        return ok, (found if ok and cond.evidence else [])
    if cond.kind == "context":
        ok = all(t.check(t.name in ctx, ctx.get(t.name)) for t in cond.tests)
        return ok, []
    if cond.kind == "not":
        ok, _ = evaluate(cond.children[0], session, ctx)
        return not ok, []
    evidence: list[Event] = []
    results = []
    for child in cond.children:
        ok, ev = evaluate(child, session, ctx)
        results.append(ok)
        if ok:
            evidence.extend(ev)
        elif cond.kind == "all":
            return False, []
    if cond.kind == "any" and not any(results):
        return False, []
    return True, evidence


def run(ruleset: RuleSet, session: Session, ctx: Mapping[str, FieldValue], verdict: str) -> list[Match]:
    matches = []
    for rule in ruleset.rules:
        if rule.verdict == "failure" and verdict != "failure":
            continue
        ok, evidence = evaluate(rule.when, session, ctx)
        if not ok:
            continue
        for cond in rule.evidence:
            _, extra = evaluate(cond, session, ctx)
            evidence.extend(extra)
        score = rule.weight
        notes = []
        for adj in rule.adjust:
            hit, _ = evaluate(adj.when, session, ctx)
            if hit:
                score *= adj.factor
                if adj.why:
                    notes.append(adj.why)
        unique = sorted({e.line: e for e in evidence}.values(), key=lambda e: e.line)
        matches.append(Match(rule, min(score, 0.99), tuple(unique), tuple(notes)))
    return matches

"""``espdiag explain ID``: what a rule (or every rule of a cause) means, what triggers it, the fixes."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any, TextIO

from espdiag.errors import EspdiagError, ExitCode
from espdiag.events import KINDS
from espdiag.output import display_path, writing_stdout
from espdiag.rules import TAXONOMY, Cond, Rule, RuleSet, Test

_OPS = {"eq": "is", "ne": "is not", "in": "is one of", "not_in": "is none of", "lt": "<", "le": "<=",
        "gt": ">", "ge": ">=", "contains": "contains", "regex": "matches", "startswith": "starts with"}


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def describe_test(test: Test) -> str:
    if test.op == "exists":
        return f"{test.name} is {'present' if test.value else 'absent'}"
    if test.op == "regex":
        return f"{test.name} matches /{test.value}/"
    return f"{test.name} {_OPS[test.op]} {_value(test.value)}"


def _count(cond: Cond) -> str:
    if cond.min == 0 and cond.max == 0:
        return ""
    if cond.max is None:
        return "" if cond.min <= 1 else f" at least {cond.min} times"
    if cond.min == cond.max:
        return f" exactly {cond.min} times"
    return f" {cond.min} to {cond.max} times"


def describe(cond: Cond, indent: int = 0) -> Iterator[str]:
    """Conditions as an indented English outline, one line per condition."""
    pad = "  " * indent
    if cond.kind in ("any", "all"):
        if len(cond.children) == 1:
            yield from describe(cond.children[0], indent)
            return
        yield f"{pad}- {'any' if cond.kind == 'any' else 'all'} of:"
        for child in cond.children:
            yield from describe(child, indent + 1)
        return
    if cond.kind == "not":
        yield f"{pad}- not:"
        yield from describe(cond.children[0], indent + 1)
        return
    if cond.kind == "context":
        yield f"{pad}- the setup (context): " + ", and ".join(describe_test(t) for t in cond.tests)
        return
    absent = cond.min == 0 and cond.max == 0
    kinds = " or ".join(cond.kinds)
    article = "no" if absent else ("an" if kinds[:1] in "aeiou" else "a")
    head = f"{pad}- {article} {kinds} line"
    details = []
    if cond.tests:
        details.append("where " + ", and ".join(describe_test(t) for t in cond.tests))
    if cond.text is not None:
        details.append(f"whose text matches /{cond.text.pattern}/")
    line = head + (" " + " ".join(details) if details else "") + _count(cond)
    if not cond.evidence and not absent:
        line += " (not quoted as evidence)"
    yield line
    if cond.after is not None:
        yield f"{pad}  after the first of:"
        yield from describe(cond.after, indent + 2)
    if cond.before is not None:
        yield f"{pad}  before the last of:"
        yield from describe(cond.before, indent + 2)


def _kinds(cond: Cond) -> Iterator[str]:
    yield from cond.kinds
    for child in (*cond.children, cond.after, cond.before):
        if child is not None:
            yield from _kinds(child)


def explain_rule(rule: Rule) -> Iterator[str]:
    yield f"{rule.id}  (cause: {rule.cause}, weight {rule.weight:g}, {display_path(rule.path)}:{rule.line})"
    yield f"  {rule.title}"
    if rule.explain:
        yield ""
        yield f"  {rule.explain}"
    yield ""
    yield "  Fires when " + ("the upload failed and all of:" if rule.verdict == "failure" else "all of (any verdict):")
    for cond in rule.when.children if rule.when.kind == "all" else (rule.when,):
        yield from describe(cond, 2)
    if rule.evidence:
        yield "  Also quoted as evidence when present:"
        for cond in rule.evidence:
            yield from describe(cond, 2)
    for adj in rule.adjust:
        yield f"  Confidence x{adj.factor:g} when" + (f" ({adj.why})" if adj.why else "") + ":"
        yield from describe(adj.when, 2)
    yield "  Fixes:"
    for i, fix in enumerate(rule.fixes, 1):
        yield f"    {i}. {fix.text}"
        for env, text in fix.variants.items():
            yield f"       {env}: {text}"
        if fix.unless is not None:
            yield "       (left out when:)"
            yield from describe(fix.unless, 4)
    for doc in rule.docs:
        yield f"  Docs: {doc}"
    used = list(dict.fromkeys(_kinds(rule.when)))
    if used:
        yield "  Event kinds:"
        for kind in used:
            yield f"    {kind}: {KINDS[kind].doc if kind in KINDS else '?'}"


def explain(rules: RuleSet, ident: str, out: TextIO | None = None) -> int:
    rule = rules.by_id(ident)
    chosen = [rule] if rule is not None else [r for r in rules.rules if r.cause == ident]
    if not chosen:
        names = [r.id for r in rules.rules] + list(TAXONOMY)
        hint = difflib.get_close_matches(ident, names, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        what = "cause with no rules" if ident in TAXONOMY else "rule or cause"
        raise EspdiagError(f"{ident!r}: no such {what}{extra}; 'espdiag rules' lists them")
    with writing_stdout() as stdout:
        out = out or stdout
        if rule is None:
            out.write(f"cause {ident}: {len(chosen)} rule(s)\n\n")
        for i, r in enumerate(sorted(chosen, key=lambda r: (-r.weight, r.id))):
            if i:
                out.write("\n")
            out.write("\n".join(explain_rule(r)) + "\n")
    return ExitCode.OK

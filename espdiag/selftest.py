"""Run the inline ``examples:`` of rules: the one place that decides whether an example passes.

An example passes when diagnosing its log with *only* its rule loaded makes the rule fire
(``match:``) or not fire (``no_match:``). Used by ``espdiag rules --test`` and by tests/test_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from espdiag.errors import RuleError, RuleErrors
from espdiag.rules import Example, Rule, RuleSet, load_file, load_rules


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    example: Example
    passed: bool
    verdict: str  # the verdict of the example log, shown when it fails

    @property
    def where(self) -> str:
        return f"{self.rule.path}:{self.example.line}"

    @property
    def expected(self) -> str:
        return "match" if self.example.match else "no_match"


def fires(rule: Rule, log: str) -> tuple[bool, str]:
    """Whether ``rule`` alone fires on ``log``; also the verdict of that log."""
    from espdiag.api import diagnose_text

    report = diagnose_text(log, name=f"<example of {rule.id}>", rules=RuleSet([rule]))
    return any(rule.id in c.rules for c in report.causes), report.verdict


def run_example(rule: Rule, example: Example) -> Outcome:
    fired, verdict = fires(rule, example.log)
    return Outcome(rule, example, fired == example.match, verdict)


def run(rules: Iterable[Rule]) -> Iterator[Outcome]:
    for rule in rules:
        for example in rule.examples:
            yield run_example(rule, example)


def load_paths(paths: Sequence[Path]) -> RuleSet:
    """Rules from rule directories and single rule files; every problem is collected, then raised."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    for path in paths:
        if path.is_dir():
            try:
                rules.extend(load_rules([path], builtin=False).rules)
            except RuleErrors as e:
                errors.extend(e.errors)
        elif path.exists():  # load_file says why a FIFO or a device is refused
            rule, errs = load_file(path)
            errors.extend(errs)
            if rule is not None:
                rules.append(rule)
        else:
            errors.append(RuleError(str(path), 0, "no such rule file or directory"))
    seen: dict[str, str] = {}
    for rule in rules:
        if rule.id in seen:
            errors.append(RuleError(rule.path, rule.line, f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})"))
        seen.setdefault(rule.id, rule.path)
    if errors:
        raise RuleErrors(errors)
    return RuleSet(rules)

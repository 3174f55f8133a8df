"""``espdiag rules``: list the loaded rules; ``espdiag rules --test [PATH...]`` runs their examples.

``--test`` without a path tests the loaded rules (built-in plus ``--rules DIR``); with paths (rule
directories or single rule files) it tests only those, which is what a rule author and the
``espdiag-rules`` pre-commit hook want. Output reads like a test runner; the last line is
``N passed, M failed``; exit 1 when an example fails, 2 when a rule file is broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from espdiag import selftest
from espdiag.errors import EspdiagError, ExitCode
from espdiag.output import display_path, writing_stdout
from espdiag.rules import RuleSet


def list_rules(rules: RuleSet, out: TextIO) -> int:
    rows = sorted(rules.rules, key=lambda r: (r.cause, r.id))
    id_w = max((len(r.id) for r in rows), default=2)
    cause_w = max((len(r.cause) for r in rows), default=5)
    out.write(f"{'id':<{id_w}}  {'cause':<{cause_w}}  title  (file)\n")
    for r in rows:
        out.write(f"{r.id:<{id_w}}  {r.cause:<{cause_w}}  {r.title}  ({display_path(r.path)})\n")
    out.write(f"{len(rows)} rules\n")
    out.flush()
    return ExitCode.OK


def test_rules(rules: RuleSet, out: TextIO, paths: Sequence[Path] = (), verbose: bool = False) -> int:
    if paths:
        rules = selftest.load_paths(paths)
    passed = failed = 0
    for outcome in selftest.run(rules.rules):
        where = f"{display_path(outcome.rule.path)}:{outcome.example.line}"
        if outcome.passed:
            passed += 1
            if verbose:
                out.write(f"PASS {where} {outcome.rule.id} {outcome.expected}\n")
            continue
        failed += 1
        did = "did not fire" if outcome.example.match else "fired"
        out.write(f"FAIL {where} {outcome.rule.id}: expected {outcome.expected}, but the rule {did} "
                  f"(log verdict: {outcome.verdict})\n")
    no_examples = [r.id for r in rules.rules if not r.examples]
    if no_examples:
        out.write(f"note: {len(no_examples)} rule(s) without examples: {', '.join(no_examples)}\n")
    out.write(f"{passed} passed, {failed} failed\n")
    out.flush()
    return ExitCode.FAILURE if failed else ExitCode.OK


def rules_command(rules: RuleSet, test: bool, paths: Sequence[Path] = (), verbose: bool = False) -> int:
    if paths and not test:
        raise EspdiagError("rule paths are only taken with --test (use --rules DIR to add rules to the list)")
    with writing_stdout() as out:
        return test_rules(rules, out, paths, verbose) if test else list_rules(rules, out)

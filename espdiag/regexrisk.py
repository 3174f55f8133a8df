"""Refuse user regexes that Python's backtracking engine could take exponential (or cubic) time on.

A pattern backtracks catastrophically when some repeated part can match the same text in more than
one way: ``(a+)+``, ``(a|ab)*``, ``(?:a?a?)*``, ``(?:\\w\\w?)*``, ``(?:a?){28}``. The check is
deliberately simple and strict: inside anything repeated more than once, every item must have a
fixed count, alternatives must start with distinct literal characters, and the repeated part must
not be able to match the empty string. Back-references are refused, and so are more than
``UNBOUNDED_LIMIT`` unbounded repeats in one pattern (``.*.*.*`` is cubic on a 1 KB line).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

UNBOUNDED_LIMIT = 2  # three greedy ".*" in one pattern already take seconds on a 1 KB line
# optional or repeated items that follow each other multiply the ways to match: "\w?" x 4 + "\w*" take
# 50 ms on a 1 KB line, "a?" x 28 + "a" x 28 for ever
VARIABLE_LIMIT = 4

_NESTED = ("repeats an optional or repeated part inside a repeat, which can match the same text in many "
           "ways and backtrack catastrophically")
_ALTERNATIVES = "repeats alternatives that can match the same text, which backtracks catastrophically"
_EMPTY = "repeats a part that can match the empty string, which backtracks catastrophically"


def _parse(pattern: str) -> tuple[list[tuple[Any, Any]], int] | None:
    """The stdlib's parse tree of ``pattern`` and its "unbounded" count, None when the pattern is invalid.

    The one use of the stdlib's private regex parser (``re._parser``, ``sre_parse`` before 3.11):
    opcodes are compared by name, so nothing else depends on its module layout.
    """
    sre: Any = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
    try:
        return list(sre.parse(pattern)), int(sre.MAXREPEAT)
    except Exception:  # invalid patterns are reported by re.compile
        return None


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}
_ZERO_WIDTH = {"AT", "ASSERT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS"}


def regex_risk(pattern: str) -> str | None:
    """Why a user regex could take very long on a 1 KB line, or None when it cannot."""
    parsed = _parse(pattern)
    if parsed is None:
        return None
    tree, maxrepeat = parsed
    problem = _walk(tree, in_repeat=False)
    unbounded = _count(tree, lambda lo, hi: hi >= maxrepeat)
    if problem is None and unbounded > UNBOUNDED_LIMIT:
        problem = (f"has {unbounded} unbounded repeats (*, +, {{n,}}) on one path; more than {UNBOUNDED_LIMIT} "
                   "can take seconds per line")
    variable = _count(tree, lambda lo, hi: lo != hi)
    if problem is None and variable > VARIABLE_LIMIT:
        problem = (f"has {variable} optional or repeated items (?, *, +, {{m,n}}) on one path; more than "
                   f"{VARIABLE_LIMIT} can take seconds per line")
    return problem


def _walk(items: Any, in_repeat: bool) -> str | None:
    """The first construct that can match the same text in many ways, or a back-reference."""
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            problem = _repeat(av, in_repeat)
        elif name == "BRANCH":
            problem = _ALTERNATIVES if in_repeat and not _distinct_starts(av[1]) else None
            problem = problem or next((p for b in av[1] if (p := _walk(b, in_repeat))), None)
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            problem = "uses a back-reference, which can take exponential time"
        else:
            sub = _inner(name, av)
            problem = _walk(sub, in_repeat) if sub is not None else None
        if problem:
            return problem
    return None


def _repeat(av: Any, in_repeat: bool) -> str | None:
    lo, hi, sub = av
    if in_repeat and lo != hi:
        return _NESTED
    many = hi > 1
    if many and _nullable(sub):
        return _EMPTY
    return _walk(sub, in_repeat or many)


def _inner(op: str, av: Any) -> Any:
    """The sub-pattern of a group or look-around, None for anything else."""
    if op == "SUBPATTERN":
        return av[-1]
    if op in ("ASSERT", "ASSERT_NOT"):
        return av[1]
    return av if op == "ATOMIC_GROUP" else None


def _nullable(items: Any) -> bool:
    """Whether the sequence can match the empty string."""
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            empty = av[0] == 0 or _nullable(av[2])
        elif name == "BRANCH":
            empty = any(_nullable(b) for b in av[1])
        elif name in _ZERO_WIDTH:
            empty = True
        else:
            sub = _inner(name, av)
            empty = sub is not None and _nullable(sub)
        if not empty:
            return False
    return True


def _count(items: Any, counts: Callable[[int, int], bool]) -> int:
    """How many repeats that ``counts`` (min, max) one path through the pattern passes (the worst branch)."""
    total = 0
    for op, av in items:
        name = str(op)
        if name in _REPEATS:
            total += counts(av[0], av[1]) + _count(av[2], counts)
        elif name == "BRANCH":
            total += max(_count(b, counts) for b in av[1])
        elif (sub := _inner(name, av)) is not None:
            total += _count(sub, counts)
    return total


def _first_char(items: Any) -> str | None:
    """The literal first character of a branch, None when it can start with a class or nothing."""
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            return chr(av).lower()
        return _first_char(av[-1]) if name == "SUBPATTERN" else None
    return None


def _distinct_starts(branches: Any) -> bool:
    starts = [_first_char(b) for b in branches]
    return None not in starts and len(set(starts)) == len(starts)

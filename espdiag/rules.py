"""Load and validate YAML rule files into typed, compiled rules.

Every problem is collected and reported as ``file:line: message`` (exit code 2) instead of stopping
at the first. The rule format is documented in rules/README.md.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from espdiag.context import KEYS as CONTEXT_KEYS
from espdiag.errors import RuleError, RuleErrors
from espdiag.events import KINDS, fields_of
from espdiag.regexrisk import regex_risk
from espdiag.ruleyaml import LineDict, LineList, parse, read_text

__all__ = ["LineDict", "RuleSet", "load_file", "load_rules", "parse_rule_text", "read_rule_text", "regex_risk"]

TAXONOMY = (
    "port-missing", "port-busy", "port-permission", "port-write-failure", "driver", "usb-cable",
    "boot-mode", "strapping-gpio15", "strapping-gpio2", "strapping-gpio12", "strapping-gpio0-held",
    "uart-pins-loaded", "baud-too-high", "serial-noise", "power-supply", "wrong-chip", "flash-config",
    "image-too-large", "usb-native-reenumeration", "secure-download", "hardware-damaged", "tool-bug",
    "success", "unknown",
)
ENVIRONMENTS = (
    "arduino-ide", "arduino-cli", "arduino-cloud", "platformio", "esp-idf", "esphome", "esptool",
    "esptool-ck", "espflash", "esptool-js",
)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
MAX_REGEX = 300
# what a placeholder of an event field reads when no quoted event carries it
MISSING_FIELD = "?"

_RULE_KEYS = {"id", "cause", "title", "weight", "when", "adjust", "fixes", "docs", "examples", "explain", "verdict",
              "evidence"}
_COND_KEYS = {"event", "where", "text", "min", "max", "after", "before", "evidence", "absent", "context",
              "any", "all", "not"}
_OPS = {"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "contains", "regex", "startswith", "exists"}


# ----------------------------------------------------------------------------- placeholders
# "{name}" is a placeholder, "{{" and "}}" are literal braces; any other brace is refused at load, so a
# rule can never reach str.format's field syntax ("{port:>100000000}", "{port.__class__}")
_BRACES = re.compile(r"\{\{|\}\}|\{(\w+)\}|\{[^{}]*\}?|\}")


def placeholders(text: str) -> Iterator[tuple[str, str | None]]:
    """Each brace construct of ``text``: (its text, the placeholder name or None when it is not one)."""
    for m in _BRACES.finditer(text):
        if m.group(0) not in ("{{", "}}"):
            yield m.group(0), m.group(1)


def fill(text: str, value: Callable[[str], str]) -> str:
    """``text`` with each ``{name}`` replaced by ``value(name)``: plain substitution, nothing else."""
    def one(m: re.Match[str]) -> str:
        whole = m.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        return value(m.group(1)) if m.group(1) else whole

    return _BRACES.sub(one, text)


def _suggest(word: object, choices: Iterable[str]) -> str:
    import difflib  # only for error messages: it costs start-up time

    hint = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _line(obj: Any, key: str | None = None, default: int = 1) -> int:
    if isinstance(obj, LineDict):
        if key is not None and key in obj.key_lines:
            return obj.key_lines[key]
        return obj.line
    return obj.line if isinstance(obj, LineList) else default


def _lines(items: list[Any], default: int) -> list[tuple[Any, int]]:
    """Each item of a YAML list with its line (scalars have none of their own)."""
    lines = items.item_lines if isinstance(items, LineList) else [default] * len(items)
    return [(item, _line(item, None, ln)) for item, ln in zip(items, lines, strict=True)]


def _col(obj: Any, key: str) -> int:
    # (a LineDict from the rule cache knows its lines but not its columns)
    return getattr(obj, "key_cols", {}).get(key, 0) if isinstance(obj, LineDict) else 0


def _number(value: Any) -> bool:
    """A real, finite number (YAML's true/false are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_kinds(cond: Cond) -> set[str]:
    """Event kinds whose events a match of ``cond`` can quote (not those under absent: or not:)."""
    if cond.kind == "event":
        return set(cond.kinds) if cond.max != 0 else set()
    if cond.kind in ("any", "all"):
        return set().union(*(_positive_kinds(c) for c in cond.children))
    return set()


# ----------------------------------------------------------------------------- compiled model
@dataclass(frozen=True)
class Test:
    """One comparison of a value (an event field or a context key)."""

    name: str
    op: str
    value: Any
    pattern: re.Pattern[str] | None = None

    def check(self, present: bool, actual: Any) -> bool:
        if self.op == "exists":
            return present == bool(self.value)
        if not present:
            return self.op in ("ne", "not_in")
        if self.op == "eq":
            return _eq(actual, self.value)
        if self.op == "ne":
            return not _eq(actual, self.value)
        if self.op == "in":
            return any(_eq(actual, v) for v in self.value)
        if self.op == "not_in":
            return not any(_eq(actual, v) for v in self.value)
        if self.op in ("lt", "le", "gt", "ge"):
            try:
                a, b = float(actual), float(self.value)
            except (TypeError, ValueError):
                return False
            return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[self.op]
        text = str(actual)
        if self.op == "contains":
            return str(self.value).lower() in text.lower()
        if self.op == "startswith":
            return text.lower().startswith(str(self.value).lower())
        assert self.pattern is not None
        return self.pattern.search(text[:1024]) is not None


def _eq(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    if isinstance(actual, bool) or isinstance(expected, bool):
        return bool(actual) == bool(expected)
    if isinstance(actual, (int, float)) and isinstance(expected, (int, float)):
        return actual == expected
    return str(actual).lower() == str(expected).lower()


@dataclass(frozen=True)
class Cond:
    kind: str  # event | context | any | all | not
    kinds: tuple[str, ...] = ()
    tests: tuple[Test, ...] = ()
    text: re.Pattern[str] | None = None
    min: int = 1
    max: int | None = None
    after: Cond | None = None
    before: Cond | None = None
    evidence: bool = True
    children: tuple[Cond, ...] = ()


@dataclass(frozen=True)
class Adjust:
    when: Cond
    factor: float
    why: str


@dataclass(frozen=True)
class Fix:
    text: str
    variants: Mapping[str, str]
    unless: Cond | None


@dataclass(frozen=True)
class Example:
    log: str
    match: bool
    line: int


@dataclass(frozen=True)
class Rule:
    id: str
    cause: str
    title: str
    weight: float
    when: Cond
    evidence: tuple[Cond, ...]  # supporting lines shown when present; they do not decide the match
    adjust: tuple[Adjust, ...]
    fixes: tuple[Fix, ...]
    docs: tuple[str, ...]
    examples: tuple[Example, ...]
    explain: str
    verdict: str  # which verdicts the rule runs on: failure (default) or any
    path: str
    line: int


@dataclass
class RuleSet:
    rules: list[Rule] = field(default_factory=list)

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


# ----------------------------------------------------------------------------- compiler
_HEADS = ("event", "absent", "context", "any", "all", "not")
_TEXT_LINES = 200  # how far below its key a placeholder is looked for (a folded text spans a few lines)
MAX_ERRORS = 50  # per file: a broken 1 MB file must not flood the terminal


class _Compiler:
    """Turns one rule file's data into a ``Rule``, collecting every problem as ``file:line:col``.

    One method per rule section; each checks the types it needs, so a malformed file is reported,
    never a crash.
    """

    def __init__(self, path: str, text: str = "") -> None:
        self.path = path
        self.lines = text.splitlines()
        self.errors: list[RuleError] = []
        self.texts: list[tuple[str, int]] = []  # title, explain and fix texts with their lines: placeholders

    def err(self, line: int, message: str, col: int = 0) -> None:
        self.errors.append(RuleError(self.path, line, message, col))

    def suggest(self, word: object, choices: Iterable[str]) -> str:
        # difflib is slow: a file with thousands of unknown names gets hints for the ones shown only
        return _suggest(word, choices) if len(self.errors) < MAX_ERRORS else ""

    def unknown_keys(self, obj: dict[str, Any], allowed: set[str], what: str) -> None:
        for key in obj:
            if key not in allowed:
                extra = self.suggest(key, allowed)
                self.err(_line(obj, key), f"unknown key {key!r} in {what}{extra}", _col(obj, key))

    def string(self, data: dict[str, Any], key: str, default: str = "") -> str:
        value = data.get(key, default)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value).strip()
        self.err(_line(data, key), f"{key}: must be a string", _col(data, key))
        return default

    def text(self, data: dict[str, Any], key: str) -> str:
        """A text shown to the user (title, explain, fix): a string whose placeholders are checked later."""
        value = self.string(data, key)
        self.texts.append((value, _line(data, key)))
        return value

    # ------------------------------------------------------------------------- the whole rule
    def rule(self, data: Any) -> Rule | None:
        if not isinstance(data, dict):
            self.err(1, "a rule file must hold one mapping (id:, cause:, title:, when:, fixes:, ...)")
            return None
        self.unknown_keys(data, _RULE_KEYS, "rule")
        for key in ("id", "cause", "title", "when", "fixes", "examples"):
            if key not in data:
                self.err(_line(data), f"missing required key {key!r}")
        rule_id, cause = self.identity(data)
        weight, verdict = self.weight(data), self.verdict(data)
        when = self.cond(data["when"], _line(data, "when")) if "when" in data else None
        adjust, evidence = self.adjust(data), self.evidence(data)
        fixes, docs, examples = self.fixes(data), self.docs(data), self.examples(data)
        title, explain = self.text(data, "title"), self.text(data, "explain")
        if when is not None:
            self.check_placeholders(_positive_kinds(when).union(*(_positive_kinds(c) for c in evidence)))
        if self.errors or when is None:
            return None
        return Rule(
            id=rule_id, cause=cause, title=title, weight=weight, when=when, evidence=evidence, adjust=adjust,
            fixes=fixes, docs=docs, examples=examples, explain=explain, verdict=verdict, path=self.path,
            line=_line(data),
        )

    def identity(self, data: dict[str, Any]) -> tuple[str, str]:
        rule_id = self.string(data, "id")
        if rule_id and not _ID.match(rule_id):
            self.err(_line(data, "id"), f"rule id {rule_id!r} must match {_ID.pattern}")
        cause = self.string(data, "cause")
        if cause and cause not in TAXONOMY:
            extra = self.suggest(cause, TAXONOMY)
            self.err(_line(data, "cause"), f"cause {cause!r} is not in the taxonomy{extra}")
        return rule_id, cause

    def weight(self, data: dict[str, Any]) -> float:
        weight = data.get("weight", 0.5)
        if not _number(weight) or not 0 < weight <= 1:
            self.err(_line(data, "weight"), "weight must be a number in (0, 1]")
            return 0.5
        return float(weight)

    def verdict(self, data: dict[str, Any]) -> str:
        verdict = data.get("verdict", "failure")
        if verdict not in ("failure", "any"):
            self.err(_line(data, "verdict"), "verdict must be 'failure' or 'any'")
            return "failure"
        return str(verdict)

    def items(self, data: dict[str, Any], key: str, what: str) -> list[tuple[Any, int]]:
        """The items of the list under ``key`` with their lines (missing: none), or an error naming what it must hold."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.err(_line(data, key), f"{key}: must be a list of {what}", _col(data, key))
            return []
        return _lines(value, _line(data, key))

    def adjust(self, data: dict[str, Any]) -> tuple[Adjust, ...]:
        out = []
        for item, ln in self.items(data, "adjust", "when:/factor:/why: entries"):
            if not isinstance(item, dict) or "when" not in item or "factor" not in item:
                self.err(ln, "each adjust: entry needs when: and factor:")
                continue
            self.unknown_keys(item, {"when", "factor", "why"}, "adjust")
            c = self.cond(item["when"], ln)
            factor = item["factor"]
            if not _number(factor) or factor < 0:
                self.err(_line(item, "factor", ln), "factor must be a non-negative number")
                continue
            if c:
                out.append(Adjust(c, float(factor), self.string(item, "why")))
        return tuple(out)

    def fixes(self, data: dict[str, Any]) -> tuple[Fix, ...]:
        raw = data.get("fixes", [])
        if not isinstance(raw, list) or not raw:
            self.err(_line(data, "fixes"), "fixes: needs a non-empty list")
            return ()
        out = []
        for item, ln in _lines(raw, _line(data, "fixes")):
            if isinstance(item, str):
                out.append(Fix(item.strip(), {}, None))
                self.texts.append((item, ln))
            elif isinstance(item, dict) and "text" in item:
                out.append(self.fix(item, ln))
            else:
                self.err(ln, "a fix is a string or a mapping with text: (and optional for:, unless:)")
        return tuple(out)

    def fix(self, item: dict[str, Any], ln: int) -> Fix:
        self.unknown_keys(item, {"text", "for", "unless"}, "fix")
        variants = item.get("for") or {}
        if not isinstance(variants, dict):
            self.err(_line(item, "for", ln), "for: must map an environment to text")
            variants = {}
        for env in variants:
            if env not in ENVIRONMENTS:
                self.err(_line(variants, env, ln), f"unknown environment {env!r}; use one of {', '.join(ENVIRONMENTS)}")
        unless = self.cond(item["unless"], _line(item, "unless", ln)) if "unless" in item else None
        return Fix(self.text(item, "text"), {str(k): self.text(variants, k) for k in variants}, unless)

    def evidence(self, data: dict[str, Any]) -> tuple[Cond, ...]:
        out = []
        for item, ln in self.items(data, "evidence", "event conditions"):
            c = self.cond(item, ln)
            if c is not None:
                out.append(c)
        return tuple(out)

    def docs(self, data: dict[str, Any]) -> tuple[str, ...]:
        docs = data.get("docs")
        docs = [docs] if isinstance(docs, str) else docs
        if docs is not None and not (isinstance(docs, list) and all(isinstance(d, str) for d in docs)):
            self.err(_line(data, "docs"), "docs: must be a link or a list of links")
            return ()
        return tuple(docs or ())

    def examples(self, data: dict[str, Any]) -> tuple[Example, ...]:
        out = []
        for item, ln in self.items(data, "examples", "match:/no_match: entries"):
            key = next(iter(item), None) if isinstance(item, dict) and len(item) == 1 else None
            if key not in ("match", "no_match") or not isinstance(item[key], str):
                self.err(ln, "each example is a mapping with exactly one key, match: or no_match:, and a log text")
                continue
            out.append(Example(item[key], key == "match", _line(item, key, ln)))
        if data.get("examples") and not any(e.match for e in out):
            self.err(_line(data, "examples"), "examples: needs at least one match: example")
        return tuple(out)

    # ------------------------------------------------------------------------- placeholders
    def check_placeholders(self, quotable: set[str]) -> None:
        """Every ``{name}`` must be a context key or a field of an event the rule quotes; nothing else."""
        fields = set().union(*(fields_of(k) for k in quotable))
        for text, line in self.texts:
            for whole, name in placeholders(text):
                at_line, col = self.locate(whole, line)
                if name is None or not name.isidentifier():
                    self.err(at_line, f"{whole!r} is not a placeholder: write {{name}} (or {{{{ and }}}} for "
                             "a literal brace)", col)
                elif name not in CONTEXT_KEYS and name not in fields:
                    extra = self.suggest(name, [*CONTEXT_KEYS, *fields])
                    self.err(at_line, f"unknown placeholder {whole!r}: not a context key, nor a field of "
                             f"the events this rule quotes{extra}", col)

    def locate(self, snippet: str, line: int) -> tuple[int, int]:
        """Line and column of ``snippet`` in the file at or just after ``line`` (texts may be folded)."""
        for i in range(max(line - 1, 0), min(line + _TEXT_LINES, len(self.lines))):
            col = self.lines[i].find(snippet)
            if col >= 0:
                return i + 1, col + 1
        return line, 0

    # ------------------------------------------------------------------------- conditions
    def regex(self, value: Any, line: int, col: int = 0) -> re.Pattern[str] | None:
        if not isinstance(value, str):
            self.err(line, "a regex must be a string", col)
            return None
        if len(value) > MAX_REGEX:
            self.err(line, f"regex longer than {MAX_REGEX} characters", col)
            return None
        try:
            compiled = re.compile(value, re.IGNORECASE)
        except (re.error, RecursionError, OverflowError) as e:
            self.err(line, f"invalid regex {value!r}: {e}", col)
            return None
        problem = regex_risk(value)
        if problem:
            self.err(line, f"regex {value!r} {problem}", col)
            return None
        return compiled

    def tests(self, spec: Any, line: int, what: str, names: Iterable[str], noun: str) -> tuple[Test, ...]:
        """The tests of a where: or context: mapping; each name must be one of ``names`` (a ``noun``)."""
        if not isinstance(spec, dict):
            self.err(line, f"{what} must be a mapping of name: value")
            return ()
        known = set(names)
        out: list[Test] = []
        for name, value in spec.items():
            kline, kcol = _line(spec, name, line), _col(spec, name)
            if name not in known:
                self.err(kline, f"{name!r} is not {noun}{self.suggest(name, known)}", kcol)
            elif isinstance(value, dict):
                out.extend(self.operators(name, value, kline))
            else:
                out.append(Test(name, "in" if isinstance(value, list) else "eq", value))
        return tuple(out)

    def operators(self, name: str, spec: dict[str, Any], line: int) -> Iterator[Test]:
        for op, operand in spec.items():
            oline, ocol = _line(spec, op, line), _col(spec, op)
            if op not in _OPS:
                self.err(oline, f"unknown operator {op!r}{self.suggest(op, _OPS)}", ocol)
            elif op in ("in", "not_in") and not isinstance(operand, list):
                self.err(oline, f"operator {op!r} needs a list", ocol)
            elif op != "regex":
                yield Test(name, op, operand)
            elif (pattern := self.regex(operand, oline, ocol)) is not None:
                yield Test(name, op, operand, pattern)

    def cond(self, spec: Any, line: int) -> Cond | None:
        if isinstance(spec, list):
            return self.group("all", spec, line)
        if not isinstance(spec, dict):
            self.err(line, "a condition must be a mapping (event:, absent:, context:, any:, all:, not:)")
            return None
        line = _line(spec, None, line)
        self.unknown_keys(spec, _COND_KEYS, "condition")
        heads = [k for k in _HEADS if k in spec]
        if len(heads) != 1:
            self.err(line, "a condition needs exactly one of event:, absent:, context:, any:, all:, not:")
            return None
        head = heads[0]
        if head == "absent":
            return self.absent(spec["absent"], line)
        if head == "context":
            return Cond("context", tests=self.tests(spec["context"], _line(spec, "context", line), "context",
                                                    CONTEXT_KEYS, "a context key"))
        if head == "not":
            child = self.cond(spec["not"], _line(spec, "not", line))
            return Cond("not", children=(child,)) if child else None
        if head in ("any", "all"):
            return self.group(head, spec[head], _line(spec, head, line))
        return self.event(spec, line)

    def group(self, head: str, items: Any, line: int) -> Cond | None:
        # an empty list would hold for every log: a rule would fire on every failure
        if not isinstance(items, list) or not items:
            self.err(line, f"{head}: needs a non-empty list of conditions" if head == "any" else
                     "a list of conditions (all:, or a bare list) must not be empty")
            return None
        children = [c for c in (self.cond(s, ln) for s, ln in _lines(items, line)) if c]
        return Cond(head, children=tuple(children))

    def absent(self, inner: Any, line: int) -> Cond | None:
        inner = {"event": inner} if isinstance(inner, (str, list)) else inner
        c = self.cond(inner, line)
        if c is None or c.kind != "event":
            self.err(line, "absent: takes an event kind or an event condition")
            return None
        return Cond("event", c.kinds, c.tests, c.text, 0, 0, c.after, c.before, False)

    def kinds(self, spec: dict[str, Any], line: int) -> tuple[str, ...]:
        kinds = spec["event"]
        kinds = [kinds] if isinstance(kinds, str) else kinds
        kline = _line(spec, "event", line)
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
            self.err(kline, "event: needs a kind or a list of kinds")
            return ()
        for k in kinds:
            if k not in KINDS:
                self.err(kline, f"unknown event kind {k!r}{self.suggest(k, KINDS)}", _col(spec, "event"))
        return tuple(kinds)

    def event(self, spec: dict[str, Any], line: int) -> Cond | None:
        kinds = self.kinds(spec, line)
        if not kinds:
            return None
        fields = set().union(*(fields_of(k) for k in kinds))
        noun = f"a field of {' or '.join(kinds)} events"
        tests = self.tests(spec["where"], _line(spec, "where", line), "where", fields, noun) if "where" in spec else ()
        text = self.regex(spec["text"], _line(spec, "text", line), _col(spec, "text")) if "text" in spec else None
        lo, hi = spec.get("min", 1), spec.get("max")
        if not (isinstance(lo, int) and not isinstance(lo, bool) and lo >= 0) or not (
            hi is None or (isinstance(hi, int) and not isinstance(hi, bool) and hi >= lo)
        ):
            self.err(line, "min: and max: must be whole numbers, 0 <= min <= max")
            lo, hi = 1, None
        after = self.cond(spec["after"], _line(spec, "after", line)) if "after" in spec else None
        before = self.cond(spec["before"], _line(spec, "before", line)) if "before" in spec else None
        return Cond("event", kinds, tests, text, lo, hi, after, before, spec.get("evidence", True) is not False)


# the names the rule cache (rulecache.py) uses: it passes a memoised ``parse`` to the two loaders below
read_rule_text = read_text
parse_rule_text = parse
ParseText = Callable[[str, str], tuple[Any, list[RuleError]]]


def load_file(path: Path, display: str | None = None, parse: ParseText = parse_rule_text) -> tuple[Rule | None, list[RuleError]]:
    """One rule file, or every problem in it as ``file:line:col`` in line order.

    ``parse`` turns its text into data (the rule cache passes a memoised one).
    """
    name = display or str(path)
    text, errors = read_rule_text(path, name)
    if text is None:
        return None, errors
    data, errors = parse(text, name)
    if errors:
        return None, errors
    compiler = _Compiler(name, text)
    rule = compiler.rule(data)
    if rule is not None and path.stem != rule.id:
        compiler.err(_line(data, "id"), f"rule id {rule.id!r} must match the file name {path.stem!r}")
        rule = None
    errors = sorted(compiler.errors, key=lambda e: (e.line, e.col))
    if len(errors) > MAX_ERRORS:
        more = RuleError(name, errors[MAX_ERRORS].line, f"... and {len(errors) - MAX_ERRORS} more problems")
        errors = [*errors[:MAX_ERRORS], more]
    return rule, errors


def builtin_rules_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_rules"
    return packaged if packaged.is_dir() else here.parent / "rules"


def rule_files(folder: Path) -> list[Path]:
    """The ``*.yaml``/``*.yml`` files under ``folder``, sorted; symlinked folders are not followed."""
    found = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: no loops, no surprises
        dirs.sort()
        found += [Path(root) / f for f in sorted(files) if f.endswith((".yaml", ".yml"))]
    return sorted(found, key=lambda p: (p.suffix != ".yaml", p))


def load_rules(extra_dirs: Iterable[Path] = (), builtin: bool = True, parse: ParseText = parse_rule_text) -> RuleSet:
    """Load the built-in rules and any user rule folders or files; raise RuleErrors listing every problem."""
    paths = ([builtin_rules_dir()] if builtin else []) + list(extra_dirs)
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, str] = {}
    for d in paths:
        if d.is_dir():
            files = rule_files(d)
        elif d.exists():
            files = [d]  # a single rule file; load_file refuses anything but a regular file
        else:
            errors.append(RuleError(str(d), 0, "no such rule file or directory"))
            continue
        for path in files:
            rule, errs = load_file(path, parse=parse)
            errors.extend(errs)
            if rule is None:
                continue
            if rule.id in seen:
                errors.append(RuleError(str(path), rule.line, f"duplicate rule id {rule.id!r} (also in {seen[rule.id]})"))
                continue
            seen[rule.id] = str(path)
            rules.append(rule)
    if errors:
        raise RuleErrors(errors)
    return RuleSet(rules)

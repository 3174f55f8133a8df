"""Load and validate YAML rule files into typed, compiled rules.

Every problem is collected and reported as ``file:line: message`` (exit code 2) instead of stopping
at the first. The rule format is documented in rules/README.md.
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espdiag.errors import RuleError, RuleErrors
from espdiag.events import KINDS

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
# nested quantifiers such as (a+)+ or (a|aa)* can backtrack for ever on a long line
_DANGEROUS = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)[+*{]")
_sre: Any = importlib.import_module("re._parser" if sys.version_info >= (3, 11) else "sre_parse")
_REPEATS = {_sre.MAX_REPEAT, _sre.MIN_REPEAT, getattr(_sre, "POSSESSIVE_REPEAT", _sre.MAX_REPEAT)}
_UNBOUNDED_LIMIT = 2  # three greedy ".*" in one pattern already take seconds on a 1 KB line


def regex_risk(pattern: str) -> str | None:
    """Why a user regex could take very long on a 1 KB line (None when it cannot), from its parse tree.

    Rejected: a repeat inside a repeat ((a+)+, (.*)*), alternatives that can start alike under a repeat
    ((a|a)*, (a|ab)+), back-references, and more than two unbounded repeats in one pattern.
    """
    try:
        tree = _sre.parse(pattern)
    except Exception:  # invalid patterns are reported by re.compile
        return None
    unbounded = 0

    def first_chars(seq: Any) -> set[Any] | None:
        """Literal first characters of a branch, or None when it can start with a class or nothing."""
        for op, av in seq:
            if op == _sre.LITERAL:
                return {chr(av).lower()}
            if op == _sre.SUBPATTERN:
                return first_chars(av[-1])
            return None
        return None

    def walk(seq: Any, in_repeat: bool) -> str | None:
        nonlocal unbounded
        for op, av in seq:
            if op in _REPEATS:
                _lo, hi, sub = av
                many = hi is _sre.MAXREPEAT or hi > 1
                if hi is _sre.MAXREPEAT:
                    unbounded += 1
                if many and in_repeat:
                    return "nests quantifiers and can backtrack catastrophically"
                found = walk(sub, in_repeat or many)
                if found:
                    return found
            elif op == _sre.BRANCH:
                branches = av[1]
                if in_repeat:
                    starts = [first_chars(b) for b in branches]
                    seen: set[Any] = set()
                    for st in starts:
                        if st is None or seen & st:
                            return "repeats alternatives that can match the same text, which backtracks catastrophically"
                        seen |= st
                for b in branches:
                    found = walk(b, in_repeat)
                    if found:
                        return found
            elif op == _sre.SUBPATTERN:
                found = walk(av[-1], in_repeat)
                if found:
                    return found
            elif op in (_sre.GROUPREF, getattr(_sre, "GROUPREF_EXISTS", None)):
                return "uses a back-reference, which can take exponential time"
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                found = walk(av[1], in_repeat)
                if found:
                    return found
        return None

    found = walk(tree, False)
    if found:
        return found
    if unbounded > _UNBOUNDED_LIMIT:
        return f"has {unbounded} unbounded repeats (*, +, {{n,}}); more than {_UNBOUNDED_LIMIT} can take seconds per line"
    return None


_RULE_KEYS = {"id", "cause", "title", "weight", "when", "adjust", "fixes", "docs", "examples", "explain", "verdict",
              "evidence"}
_COND_KEYS = {"event", "where", "text", "min", "max", "after", "before", "evidence", "absent", "context",
              "any", "all", "not"}
_OPS = {"eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "contains", "regex", "startswith", "exists"}


# ----------------------------------------------------------------------------- YAML with line marks
# yaml is imported only when rule files are really read: a run served from the rule cache skips it.
if TYPE_CHECKING:
    import yaml


class LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


@functools.cache
def _loader() -> type[yaml.SafeLoader]:
    import yaml

    class _Loader(yaml.SafeLoader):
        """SafeLoader (no object construction) that remembers where each mapping and key came from."""

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    return _Loader


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    import yaml

    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            raise yaml.MarkedYAMLError("while constructing a mapping", node.start_mark,
                                       f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _suggest(word: object, choices: Iterable[str]) -> str:
    import difflib  # only for error messages: it costs start-up time

    hint = difflib.get_close_matches(str(word), sorted(choices), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _line(obj: Any, key: str | None = None, default: int = 1) -> int:
    if isinstance(obj, LineDict):
        if key is not None and key in obj.key_lines:
            return obj.key_lines[key]
        return obj.line
    return default


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
class _Compiler:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[RuleError] = []

    def err(self, line: int, message: str) -> None:
        self.errors.append(RuleError(self.path, line, message))

    def unknown_keys(self, obj: dict[str, Any], allowed: set[str], what: str) -> None:
        for key in obj:
            if key not in allowed:
                extra = _suggest(key, allowed)
                self.err(_line(obj, key), f"unknown key {key!r} in {what}{extra}")

    def regex(self, value: Any, line: int) -> re.Pattern[str] | None:
        if not isinstance(value, str):
            self.err(line, "a regex must be a string")
            return None
        if len(value) > MAX_REGEX:
            self.err(line, f"regex longer than {MAX_REGEX} characters")
            return None
        if _DANGEROUS.search(value):
            self.err(line, f"regex {value!r} nests quantifiers and can backtrack catastrophically")
            return None
        try:
            compiled = re.compile(value, re.IGNORECASE)
        except re.error as e:
            self.err(line, f"invalid regex {value!r}: {e}")
            return None
        problem = regex_risk(value)
        if problem:
            self.err(line, f"regex {value!r} {problem}")
            return None
        return compiled

    def tests(self, spec: Any, line: int, what: str) -> tuple[Test, ...]:
        if not isinstance(spec, dict):
            self.err(line, f"{what} must be a mapping of name: value")
            return ()
        out = []
        for name, value in spec.items():
            kline = _line(spec, name, line)
            if isinstance(value, dict):
                for op, operand in value.items():
                    if op not in _OPS:
                        extra = _suggest(str(op), _OPS)
                        self.err(_line(value, op, kline), f"unknown operator {op!r}{extra}")
                        continue
                    if op in ("in", "not_in") and not isinstance(operand, list):
                        self.err(kline, f"operator {op!r} needs a list")
                        continue
                    pattern = self.regex(operand, kline) if op == "regex" else None
                    if op == "regex" and pattern is None:
                        continue
                    out.append(Test(str(name), op, operand, pattern))
            elif isinstance(value, list):
                out.append(Test(str(name), "in", value))
            else:
                out.append(Test(str(name), "eq", value))
        return tuple(out)

    def cond(self, spec: Any, line: int) -> Cond | None:
        if isinstance(spec, list):
            children = [c for c in (self.cond(s, _line(s, None, line)) for s in spec) if c]
            return Cond("all", children=tuple(children))
        if not isinstance(spec, dict):
            self.err(line, "a condition must be a mapping (event:, absent:, context:, any:, all:, not:)")
            return None
        line = _line(spec, None, line)
        self.unknown_keys(spec, _COND_KEYS, "condition")
        heads = [k for k in ("event", "absent", "context", "any", "all", "not") if k in spec]
        if len(heads) != 1:
            self.err(line, "a condition needs exactly one of event:, absent:, context:, any:, all:, not:")
            return None
        head = heads[0]
        if head == "absent":
            inner = spec["absent"]
            inner = {"event": inner} if isinstance(inner, (str, list)) else inner
            c = self.cond(inner, line)
            if c is None or c.kind != "event":
                self.err(line, "absent: takes an event kind or an event condition")
                return None
            return Cond("event", c.kinds, c.tests, c.text, 0, 0, c.after, c.before, False)
        if head == "context":
            return Cond("context", tests=self.tests(spec["context"], _line(spec, "context", line), "context"))
        if head in ("any", "all"):
            items = spec[head]
            if not isinstance(items, list) or not items:
                self.err(_line(spec, head, line), f"{head}: needs a non-empty list of conditions")
                return None
            children = [c for c in (self.cond(s, _line(s, None, line)) for s in items) if c]
            return Cond(head, children=tuple(children))
        if head == "not":
            child = self.cond(spec["not"], _line(spec, "not", line))
            return Cond("not", children=(child,)) if child else None
        kinds = spec["event"]
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not isinstance(kinds, list) or not kinds:
            self.err(line, "event: needs a kind or a list of kinds")
            return None
        for k in kinds:
            if k not in KINDS:
                extra = _suggest(str(k), KINDS)
                self.err(_line(spec, "event", line), f"unknown event kind {k!r}{extra}")
        tests = self.tests(spec["where"], _line(spec, "where", line), "where") if "where" in spec else ()
        text = self.regex(spec["text"], _line(spec, "text", line)) if "text" in spec else None
        lo, hi = spec.get("min", 1), spec.get("max")
        if not isinstance(lo, int) or (hi is not None and not isinstance(hi, int)):
            self.err(line, "min: and max: must be integers")
            lo, hi = 1, None
        after = self.cond(spec["after"], _line(spec, "after", line)) if "after" in spec else None
        before = self.cond(spec["before"], _line(spec, "before", line)) if "before" in spec else None
        evidence = spec.get("evidence", True)
        return Cond("event", tuple(str(k) for k in kinds), tests, text, lo, hi, after, before, bool(evidence))

    def rule(self, data: Any) -> Rule | None:
        if not isinstance(data, dict):
            self.err(1, "a rule file must hold one mapping (id:, cause:, title:, when:, fixes:, ...)")
            return None
        self.unknown_keys(data, _RULE_KEYS, "rule")
        for key in ("id", "cause", "title", "when", "fixes", "examples"):
            if key not in data:
                self.err(_line(data), f"missing required key {key!r}")
        rule_id = str(data.get("id", ""))
        if rule_id and not _ID.match(rule_id):
            self.err(_line(data, "id"), f"rule id {rule_id!r} must match {_ID.pattern}")
        cause = str(data.get("cause", ""))
        if cause and cause not in TAXONOMY:
            extra = _suggest(cause, TAXONOMY)
            self.err(_line(data, "cause"), f"cause {cause!r} is not in the taxonomy{extra}")
        weight = data.get("weight", 0.5)
        if not isinstance(weight, (int, float)) or not 0 < weight <= 1:
            self.err(_line(data, "weight"), "weight must be a number in (0, 1]")
            weight = 0.5
        verdict = str(data.get("verdict", "failure"))
        if verdict not in ("failure", "any"):
            self.err(_line(data, "verdict"), "verdict must be 'failure' or 'any'")
        when = self.cond(data.get("when", []), _line(data, "when")) if "when" in data else None
        adjust = []
        for item in data.get("adjust", []) or []:
            ln = _line(item, None, _line(data, "adjust"))
            if not isinstance(item, dict) or "when" not in item or "factor" not in item:
                self.err(ln, "each adjust: entry needs when: and factor:")
                continue
            self.unknown_keys(item, {"when", "factor", "why"}, "adjust")
            c = self.cond(item["when"], ln)
            factor = item["factor"]
            if not isinstance(factor, (int, float)) or factor < 0:
                self.err(ln, "factor must be a non-negative number")
                continue
            if c:
                adjust.append(Adjust(c, float(factor), str(item.get("why", ""))))
        fixes = []
        raw_fixes = data.get("fixes", [])
        if not isinstance(raw_fixes, list) or not raw_fixes:
            self.err(_line(data, "fixes"), "fixes: needs a non-empty list")
            raw_fixes = []
        for item in raw_fixes:
            if isinstance(item, str):
                fixes.append(Fix(item.strip(), {}, None))
                continue
            ln = _line(item, None, _line(data, "fixes"))
            if not isinstance(item, dict) or "text" not in item:
                self.err(ln, "a fix is a string or a mapping with text: (and optional for:, unless:)")
                continue
            self.unknown_keys(item, {"text", "for", "unless"}, "fix")
            variants = item.get("for", {}) or {}
            if not isinstance(variants, dict):
                self.err(ln, "for: must map an environment to text")
                variants = {}
            for env in variants:
                if env not in ENVIRONMENTS:
                    self.err(_line(variants, env, ln), f"unknown environment {env!r}; use one of {', '.join(ENVIRONMENTS)}")
            unless = self.cond(item["unless"], _line(item, "unless", ln)) if "unless" in item else None
            fixes.append(Fix(str(item["text"]).strip(), {str(k): str(v).strip() for k, v in variants.items()}, unless))
        evidence = []
        raw_evidence = data.get("evidence", []) or []
        if not isinstance(raw_evidence, list):
            self.err(_line(data, "evidence"), "evidence: must be a list of event conditions")
            raw_evidence = []
        for item in raw_evidence:
            c = self.cond(item, _line(item, None, _line(data, "evidence")))
            if c is not None:
                evidence.append(c)
        docs = data.get("docs", [])
        docs = [docs] if isinstance(docs, str) else docs
        examples = []
        raw_examples = data.get("examples", [])
        if not isinstance(raw_examples, list):
            self.err(_line(data, "examples"), "examples: must be a list of match:/no_match: entries")
            raw_examples = []
        for item in raw_examples:
            ln = _line(item, None, _line(data, "examples"))
            if not isinstance(item, dict) or len(item) != 1 or next(iter(item)) not in ("match", "no_match"):
                self.err(ln, "each example is a mapping with exactly one key: match: or no_match:")
                continue
            key = next(iter(item))
            examples.append(Example(str(item[key]), key == "match", _line(item, key, ln)))
        if raw_examples and not any(e.match for e in examples):
            self.err(_line(data, "examples"), "examples: needs at least one match: example")
        if self.errors or when is None:
            return None
        return Rule(
            id=rule_id, cause=cause, title=str(data["title"]).strip(), weight=float(weight), when=when,
            evidence=tuple(evidence), adjust=tuple(adjust), fixes=tuple(fixes), docs=tuple(str(d) for d in docs),
            examples=tuple(examples), explain=str(data.get("explain", "")).strip(), verdict=verdict,
            path=self.path, line=_line(data),
        )


def read_rule_text(path: Path, name: str) -> tuple[str | None, list[RuleError]]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, [RuleError(name, 1, f"cannot read rule file: {e.strerror or e}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, [RuleError(name, line, "rule file is not valid UTF-8")]
    if not text.strip():
        return None, [RuleError(name, 1, "rule file is empty")]
    return text, []


def parse_rule_text(text: str, name: str) -> tuple[Any, list[RuleError]]:
    """The YAML of one rule file as plain data whose mappings are ``LineDict``s (they remember lines)."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader()), []  # a SafeLoader subclass: no object construction
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 0
        return None, [RuleError(name, line, f"invalid YAML: {e.problem or e.context}", col)]
    except yaml.YAMLError as e:
        return None, [RuleError(name, 1, f"invalid YAML: {e}")]


ParseText = Callable[[str, str], tuple[Any, list[RuleError]]]


def load_file(path: Path, display: str | None = None, parse: ParseText = parse_rule_text) -> tuple[Rule | None, list[RuleError]]:
    """One rule file; ``parse`` turns its text into data (the rule cache passes a memoised one)."""
    name = display or str(path)
    text, errors = read_rule_text(path, name)
    if text is None:
        return None, errors
    data, errors = parse(text, name)
    if errors:
        return None, errors
    compiler = _Compiler(name)
    rule = compiler.rule(data)
    if rule is not None and path.stem != rule.id:
        compiler.err(_line(data, "id"), f"rule id {rule.id!r} must match the file name {path.stem!r}")
        rule = None
    return rule, compiler.errors


def builtin_rules_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_rules"
    return packaged if packaged.is_dir() else here.parent / "rules"


def load_rules(extra_dirs: Iterable[Path] = (), builtin: bool = True, parse: ParseText = parse_rule_text) -> RuleSet:
    """Load the built-in rules and any user rule directories; raise RuleErrors listing every problem."""
    dirs = ([builtin_rules_dir()] if builtin else []) + list(extra_dirs)
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, str] = {}
    for d in dirs:
        if not d.is_dir():
            errors.append(RuleError(str(d), 0, "rule directory does not exist"))
            continue
        for path in sorted(d.rglob("*.yaml")) + sorted(d.rglob("*.yml")):
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

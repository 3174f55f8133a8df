"""The rule loader treats rule files as hostile input (issue 12) and checks every name a rule uses (issue 14).

Each test names the defect it guards against; every broken file must give ``file:line: message`` and
exit code 2, quickly, and never a traceback (exit 3).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES

from espdiag import context, ruleyaml
from espdiag.api import diagnose_bytes, diagnose_text, iter_events
from espdiag.errors import RuleErrors
from espdiag.events import COMMON_FIELDS, FIELDS, KINDS, fields_of
from espdiag.parse import field_of, parser
from espdiag.rules import RuleSet, fill, load_file, load_rules, regex_risk

GOOD = """\
id: my-rule
cause: boot-mode
title: Wrong boot mode on {port}
when:
  - event: wrong_boot_mode
fixes: [do it]
examples:
  - match: "A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)!"
"""
CORPUS = ROOT.parent / "shared" / "corpus" if (ROOT.parent / "shared").is_dir() else Path("/work/shared/corpus")


@pytest.fixture(params=[True, False], ids=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test with libyaml's parser and with PyYAML's own (used where libyaml is missing)."""
    import yaml

    if request.param and not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml")
    monkeypatch.setattr(ruleyaml, "PREFER_LIBYAML", request.param)
    return bool(request.param)


def errors_of(tmp_path: Path, text: str | bytes, name: str = "my-rule.yaml") -> list[str]:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    rule, errors = load_file(path)
    assert rule is None and errors, "the rule should have been refused"
    return [str(e) for e in errors]


def located(errors: list[str], tmp_path: Path, line: int, message: str, name: str = "my-rule.yaml") -> bool:
    prefix = f"{tmp_path / name}:{line}:"
    return any(e.startswith(prefix) and message in e for e in errors)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ESPDIAG_NO_CACHE": "1"}
    return subprocess.run([sys.executable, "-m", "espdiag", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


# ----------------------------------------------------------------------------- issue 12 item 2: YAML bombs
BOMB = """\
id: my-rule
cause: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
docs: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
title: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
explain: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
weight: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
verdict: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
fixes: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
when: [*g,*g,*g,*g,*g,*g,*g,*g,*g]
"""


def test_alias_bomb_is_refused_at_once(tmp_path: Path, yaml_parser: bool) -> None:
    start = time.perf_counter()
    errors = errors_of(tmp_path, BOMB)
    assert time.perf_counter() - start < 1
    assert located(errors, tmp_path, 2, "aliases (&name, *name) are not allowed"), errors


def test_any_alias_is_refused(tmp_path: Path, yaml_parser: bool) -> None:
    text = GOOD.replace("title: Wrong boot mode on {port}", "title: &t Wrong boot mode\nexplain: *t")
    assert located(errors_of(tmp_path, text), tmp_path, 3, "not allowed")


@pytest.mark.parametrize("shape", ["flow", "block", "not"])
def test_deep_nesting_is_a_located_error(tmp_path: Path, shape: str, yaml_parser: bool) -> None:
    if shape == "flow":
        text = GOOD.replace("fixes: [do it]", "fixes: " + "[" * 500 + "x" + "]" * 500)
    elif shape == "block":
        text = GOOD + "".join(f"{' ' * i}k{i}:\n" for i in range(500))
    else:  # 'not:' nested 250 deep, which the compiler (and the rule cache) would recurse into
        text = GOOD.replace("  - event: wrong_boot_mode", "  - " + "not: {" * 250 + "event: connecting" + "}" * 250)
    errors = errors_of(tmp_path, text)
    assert any(re.match(rf"{re.escape(str(tmp_path / 'my-rule.yaml'))}:\d+", e) for e in errors), errors
    assert any("nested" in e or "nesting" in e for e in errors), errors


def test_broken_rule_file_exits_2_with_one_located_line(tmp_path: Path) -> None:
    (tmp_path / "my-rule.yaml").write_text(BOMB)
    start = time.perf_counter()
    out = cli("--rules", str(tmp_path), str(SAMPLES / "esptool4-success.log"), timeout=20)
    assert out.returncode == 2, out.stderr
    assert time.perf_counter() - start < 10
    assert f"{tmp_path / 'my-rule.yaml'}:2:" in out.stderr and "Traceback" not in out.stderr


# ----------------------------------------------------------------------------- issue 12 item 3: ReDoS
@pytest.mark.parametrize("pattern", [
    r"(?:a?a?)*b", r"(?:\w\w?)*!", r"(?:a?){28}a{28}", "a?" * 28 + "a{28}", r"\w?\w?\w?\w?\w*b",
    r"(?:\b)*z", r"(?:[a-z]+-)+x", r"(?:ab|a)*c",
])
def test_regexes_that_match_one_text_many_ways_are_refused(pattern: str) -> None:
    assert regex_risk(pattern)


@pytest.mark.parametrize("pattern", [r"(?:a?a?)*b", r"(?:\w\w?)*!", r"(?:a?){28}a{28}"])
def test_redos_regex_in_a_rule_file_exits_2(tmp_path: Path, pattern: str) -> None:
    text = GOOD.replace("  - event: wrong_boot_mode", f"  - event: wrong_boot_mode\n    text: '{pattern}'")
    assert located(errors_of(tmp_path, text), tmp_path, 6, "backtrack")


def test_every_builtin_regex_passes_the_check_and_runs_fast() -> None:
    patterns = []
    for rule in load_rules().rules:
        conds = [rule.when, *rule.evidence, *(a.when for a in rule.adjust), *(f.unless for f in rule.fixes if f.unless)]
        while conds:
            c = conds.pop()
            patterns += [c.text] if c.text else []
            patterns += [t.pattern for t in c.tests if t.pattern]
            conds += [x for x in (*c.children, c.after, c.before) if x is not None]
    assert len(patterns) > 20
    for pattern in patterns:
        assert regex_risk(pattern.pattern) is None, pattern.pattern
        start = time.perf_counter()
        pattern.search("a" * 1024)
        pattern.search("COM1 " * 200)
        assert time.perf_counter() - start < 0.05, pattern.pattern


# ----------------------------------------------------------------------------- issue 12 item 11: malformed files
@pytest.mark.parametrize(("old", "new", "line", "message"), [
    ("fixes: [do it]", "fixes: [do it]\nadjust: 5", 7, "adjust: must be a list"),
    ("  - event: wrong_boot_mode", "  - event: [[connecting]]", 5, "event: needs a kind or a list of kinds"),
    ("fixes: [do it]", "fixes: [do it]\nweight: " + "9" * 5000, 7, "number longer than"),
    ("when:\n  - event: wrong_boot_mode", "when: []", 4, "must not be empty"),
    ("  - event: wrong_boot_mode", "  - any: []", 5, "any: needs a non-empty list"),
    ("  - event: wrong_boot_mode", "  - all: []", 5, "must not be empty"),
    ("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n  - []", 6, "must not be empty"),
    ("fixes: [do it]", "fixes: [do it]\nweight: true", 7, "weight must be a number"),
    ("fixes: [do it]", "fixes: [do it]\nweight: .nan", 7, "weight must be a number"),
    ("fixes: [do it]", "fixes: [do it]\ndocs: 5", 7, "docs: must be a link"),
    ("fixes: [do it]", "fixes: [do it]\nevidence: {event: connecting}", 7, "evidence: must be a list"),
    ("fixes: [do it]", "fixes: [do it]\nexplain: [a, b]", 7, "explain: must be a string"),
    ("fixes: [do it]", "fixes: [do it]\nadjust: [{when: {event: connecting}, factor: .inf}]", 7, "factor must be"),
    ("fixes: [do it]", "fixes: [{text: x, for: {esptool: [1]}}]", 6, "for: esptool"),
    ("fixes: [do it]", "fixes: [do it]\ndocs: 2001-13-45", 7, "unreadable value"),
    ("fixes: [do it]", "fixes: [do it]\n? [a, b]\n: c", 7, "unknown key"),
    ('  - match: "A fatal', '  - match: {a: 1}\n  - match: "A fatal', 8, "a log text"),
    ("fixes: [do it]", "fixes: [do it, 5, [x]]", 6, "a fix is a string"),
    ("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    min: -1", 5, "min: and max:"),
])
def test_malformed_rule_files_are_located_errors(tmp_path: Path, old: str, new: str, line: int, message: str,
                                                  yaml_parser: bool) -> None:
    assert old in GOOD
    errors = errors_of(tmp_path, GOOD.replace(old, new))
    assert located(errors, tmp_path, line, message) or any(
        e.startswith(f"{tmp_path / 'my-rule.yaml'}:{line}") and message.split(":")[0] in e for e in errors
    ), errors


def test_a_file_full_of_errors_is_reported_briefly_and_fast(tmp_path: Path) -> None:
    text = GOOD + "".join(f"k{i}: 1\n" for i in range(5000))
    start = time.perf_counter()
    errors = errors_of(tmp_path, text)
    assert time.perf_counter() - start < 3
    assert len(errors) == 51 and errors[-1].endswith("... and 4950 more problems"), errors[-1]


def test_malformed_rule_file_exits_2_not_3(tmp_path: Path) -> None:
    (tmp_path / "my-rule.yaml").write_text(GOOD.replace("  - event: wrong_boot_mode", "  - event: [[connecting]]"))
    out = cli("--rules", str(tmp_path), str(SAMPLES / "esptool4-success.log"))
    assert out.returncode == 2 and out.stderr.startswith(f"espdiag: {tmp_path / 'my-rule.yaml'}:5:"), out.stderr


# ----------------------------------------------------------------------------- issue 12 item 12: what is read
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


@needs_fifo
def test_fifo_named_like_a_rule_file_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.yaml")
    (tmp_path / "my-rule.yaml").write_text(GOOD)
    out = cli("--rules", str(tmp_path), str(SAMPLES / "esptool4-success.log"), timeout=20)
    assert out.returncode == 2 and f"{tmp_path / 'x.yaml'}:1: not a regular file" in out.stderr, out.stderr
    out = cli("--rules", str(tmp_path / "x.yaml"), str(SAMPLES / "esptool4-success.log"), timeout=20)
    assert out.returncode == 2 and "not a regular file" in out.stderr, out.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    with pytest.raises(RuleErrors, match=r"zero\.yaml:1: not a regular file"):
        load_rules([tmp_path], builtin=False)


def test_rule_file_over_1_mb_is_refused(tmp_path: Path) -> None:
    big = GOOD + "# " + "x" * 1_100_000 + "\n"
    assert located(errors_of(tmp_path, big), tmp_path, 1, "larger than 1000000 bytes")


def test_symlinked_folders_are_not_walked(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "loop").symlink_to(tmp_path / "rules")
    (tmp_path / "rules" / "my-rule.yaml").write_text(GOOD)
    assert [r.id for r in load_rules([tmp_path / "rules"], builtin=False).rules] == ["my-rule"]


def test_a_single_rule_file_is_accepted_by_rules(tmp_path: Path) -> None:
    (tmp_path / "my-rule.yaml").write_text(GOOD)
    ruleset = load_rules([tmp_path / "my-rule.yaml"], builtin=False)
    assert [r.id for r in ruleset.rules] == ["my-rule"]
    log = tmp_path / "up.log"
    log.write_text("A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)!\n")
    out = cli("--rules", str(tmp_path / "my-rule.yaml"), "--format", "json", str(log))
    assert out.returncode == 1 and '"my-rule"' in out.stdout, out.stderr


# ----------------------------------------------------------------------------- issue 12 item 13: placeholders
@pytest.mark.parametrize("placeholder", ["{port:>100000000}", "{port.__class__.__mro__}", "{port!r}", "{0}", "{",
                                         "}", "{port[0]}"])
def test_only_plain_placeholders_are_allowed(tmp_path: Path, placeholder: str) -> None:
    text = GOOD.replace("title: Wrong boot mode on {port}", f"title: 'Wrong boot mode {placeholder}'")
    errors = errors_of(tmp_path, text)
    assert located(errors, tmp_path, 3, "placeholder"), errors


def test_fill_is_plain_substitution() -> None:
    def value(name: str) -> str:
        return {"port": "COM3"}.get(name, "?")

    assert fill("{port} {{port}} {port:>9} {port.__class__}", value) == "COM3 {port} {port:>9} {port.__class__}"


def test_placeholders_read_context_then_quoted_event_fields(tmp_path: Path) -> None:
    text = GOOD.replace("title: Wrong boot mode on {port}", "title: Boot mode {boot} on {port} ({{literal}})")
    (tmp_path / "my-rule.yaml").write_text(text)
    rules = load_rules([tmp_path], builtin=False)
    report = diagnose_text("esptool.py v4.7.0\nSerial port /dev/ttyUSB0\nConnecting...\nA fatal error occurred: "
                           "Failed to connect to ESP32: Wrong boot mode detected (0x13)!\n", rules=rules)
    assert report.causes[0].title == "Boot mode 19 on /dev/ttyUSB0 ({literal})"


# ----------------------------------------------------------------------------- issue 14 item 2: declared names
@pytest.mark.parametrize(("old", "new", "line", "col", "message"), [
    ("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    where: {bot: 19}", 6, 13,
     "'bot' is not a field of wrong_boot_mode events (did you mean 'boot'?)"),
    ("  - event: wrong_boot_mode", "  - event: rom_banner_8266\n    where: {mdoe: 1}", 6, 13, "(did you mean 'mode'?)"),
    ("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n  - context: {chipp: x}", 6, 15,
     "'chipp' is not a context key (did you mean 'chip'?)"),
    ("title: Wrong boot mode on {port}", "title: Wrong boot mode on {prot}", 3, 27, "unknown placeholder '{prot}'"),
    ("title: Wrong boot mode on {port}", "title: Mode {mode}", 3, 13, "unknown placeholder '{mode}'"),
])
def test_unknown_names_are_located_with_columns(tmp_path: Path, old: str, new: str, line: int, col: int,
                                                message: str) -> None:
    errors = errors_of(tmp_path, GOOD.replace(old, new))
    assert any(e.startswith(f"{tmp_path / 'my-rule.yaml'}:{line}:{col}: ") and message in e for e in errors), errors


def test_errors_come_in_line_order(tmp_path: Path) -> None:
    text = GOOD.replace("title: Wrong boot mode on {port}", "title: Mode {prot}").replace(
        "  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    where: {bot: 19, boot: {gtt: 1}}")
    text = text.replace("fixes: [do it]", "fixes: [do it, 'on {bad}']")
    errors = errors_of(tmp_path, text)
    positions = [tuple(int(n) for n in e.split(":")[1:3]) for e in errors]
    assert len(errors) == 4 and positions == sorted(positions), errors


def _sample_logs() -> list[Path]:
    logs = sorted(SAMPLES.glob("*.log"))
    if CORPUS.is_dir():
        logs += sorted(CORPUS.glob("*/log.txt"))
    return logs


def test_the_parser_emits_only_declared_fields() -> None:
    emitted: dict[str, set[str]] = {}
    logs = _sample_logs()
    assert len(logs) > 20
    for path in logs:
        with path.open("rb") as f:
            for event in iter_events(f, str(path)):
                emitted.setdefault(event.kind, set()).update(event.fields)
    import io

    for rule in load_rules().rules:
        for example in rule.examples:
            for event in iter_events(io.BytesIO(example.log.encode())):
                emitted.setdefault(event.kind, set()).update(event.fields)
    undeclared = {k: sorted(f - fields_of(k)) for k, f in emitted.items() if f - fields_of(k)}
    assert not undeclared


def _kind_of(r: object) -> str | None:
    name = (str(r.alias) if r.alias else r.origin.name).split("__", 1)[0]  # type: ignore[attr-defined]
    return name if name in KINDS else None


def _reach(rules: list[object], seen: set[str], by_origin: dict[str, list[object]], kind: str) -> tuple[set[str], set[str]]:
    """(fields, kinds) reachable from ``rules`` without entering another kind; fields named as ``kind`` names them."""
    fields: set[str] = set()
    kinds: set[str] = set()
    for r in rules:
        for sym in r.expansion:  # type: ignore[attr-defined]
            if sym.is_term and not sym.filter_out and (named := field_of(kind, sym.name)):
                fields.add(named[0])
            elif not sym.is_term and sym.name not in seen:
                seen.add(sym.name)
                subs = by_origin.get(sym.name, [])
                kinds |= {k for s in subs if (k := _kind_of(s))}
                f, k = _reach([s for s in subs if _kind_of(s) is None], seen, by_origin, kind)
                fields, kinds = fields | f, kinds | k
    return fields, kinds


def _pass_down_outer_fields(possible: dict[str, set[str]], inner: dict[str, set[str]]) -> None:
    """A kind inside another kind's rule gets that rule's fields too, through any depth of nesting."""
    changed = True
    while changed:
        changed = False
        for outer in KINDS:
            for k in inner[outer]:
                if not possible[outer] <= possible[k]:
                    possible[k] |= possible[outer]
                    changed = True


def test_every_field_the_grammar_can_give_is_declared() -> None:
    """Each kind's fields, derived from the grammar: the named terminals its rule (or a rule around it) holds."""
    by_origin: dict[str, list[object]] = {}
    for r in parser().rules:
        by_origin.setdefault(r.origin.name, []).append(r)
    possible: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    for kind in KINDS:
        rules = [r for rs in by_origin.values() for r in rs if _kind_of(r) == kind]
        possible[kind], inner[kind] = _reach(rules, set(), by_origin, kind)
        around, _ = _reach(by_origin["start"], set(), by_origin, kind)
        assert around <= set(COMMON_FIELDS)
        possible[kind] |= around
    _pass_down_outer_fields(possible, inner)
    undeclared = {k: sorted(f - fields_of(k)) for k, f in possible.items() if f - fields_of(k)}
    assert not undeclared
    assert set(FIELDS) <= set(KINDS)


def test_context_sets_only_declared_keys() -> None:
    source = Path(context.__file__).read_text()
    literal = set(re.findall(r'ctx\["(\w+)"\]\s*=|setdefault\("(\w+)"', source))
    names = {a or b for a, b in literal} | set(re.findall(r'": "(\w+)"', source.split("_OPTIONS = {", 1)[1].split("}")[0]))
    assert names and names <= set(context.KEYS), names - set(context.KEYS)
    for path in _sample_logs():
        report = diagnose_bytes(path.read_bytes(), str(path))
        assert set(report.context) <= set(context.KEYS), path


def test_no_placeholder_reaches_a_report() -> None:
    """Neither '{name}' nor '<name>' in a title, explanation or fix, on every log and every rule example."""
    leftover = re.compile(r"\{\w+\}|<[a-z_]+>")
    logs = [(str(p), p.read_bytes()) for p in _sample_logs()]
    ruleset = load_rules()
    logs += [(f"{r.id}:{e.line}", e.log.encode()) for r in ruleset.rules for e in r.examples]
    seen_causes = set()
    for name, data in logs:
        for cause in diagnose_bytes(data, name, rules=ruleset).causes:
            seen_causes.add(cause.id)
            for text in (cause.title, cause.explain, *cause.fixes):
                assert not leftover.search(text), (name, text)
    assert len(seen_causes) > 15


def test_every_rule_placeholder_is_filled_even_without_context() -> None:
    """A rule alone, on its own match example, with no context: fallbacks say something readable."""
    for rule in load_rules().rules:
        example = next(e for e in rule.examples if e.match)
        report = diagnose_text(example.log, rules=RuleSet([rule]))
        for cause in report.causes:
            for text in (cause.title, cause.explain, *cause.fixes):
                assert "{" not in text and "<" not in text.replace("<=", ""), (rule.id, text)


# ----------------------------------------------------------------------------- issue 14 item 5: small functions
def test_loader_functions_stay_simple() -> None:
    files = [str(ROOT / "espdiag" / f) for f in ("rules.py", "ruleyaml.py", "regexrisk.py")]
    try:
        out = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "C901", "--config",
                              "lint.mccabe.max-complexity=12", *files], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("ruff is not installed")
    if "No module named ruff" in out.stderr:  # pragma: no cover
        pytest.skip("ruff is not installed")
    assert out.returncode == 0, out.stdout

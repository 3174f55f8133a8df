"""Rules are data with their own examples; this runs every example and the loader's error reporting."""

from __future__ import annotations

from pathlib import Path

import pytest

from espdiag import selftest
from espdiag.errors import RuleErrors
from espdiag.rules import TAXONOMY, builtin_rules_dir, load_file, load_rules

BUILTIN = load_rules()
EXAMPLES = [(r, ex) for r in BUILTIN.rules for ex in r.examples]


@pytest.mark.parametrize(("rule", "example"), EXAMPLES,
                         ids=[f"{r.id}:{ex.line}:{'match' if ex.match else 'no_match'}" for r, ex in EXAMPLES])
def test_rule_example(rule, example) -> None:
    outcome = selftest.run_example(rule, example)  # the same check as 'espdiag rules --test'
    assert outcome.passed, f"{outcome.where}: expected {outcome.expected}, verdict={outcome.verdict}"


def test_every_cause_has_a_rule() -> None:
    covered = {r.cause for r in BUILTIN.rules}
    missing = set(TAXONOMY) - covered - {"success", "unknown"}
    assert not missing


def test_every_rule_has_docs_and_both_kinds_of_example() -> None:
    for r in BUILTIN.rules:
        assert r.docs, r.id
        assert any(e.match for e in r.examples), r.id
        assert any(not e.match for e in r.examples), r.id


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


GOOD = """\
id: my-rule
cause: boot-mode
title: t
when:
  - event: wrong_boot_mode
fixes: [do it]
docs: https://example.com
examples:
  - match: "A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)!"
"""


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("cause: boot-mode", "cause: boot-mod"), 2, "not in the taxonomy (did you mean 'boot-mode'?)"),
        (GOOD.replace("  - event: wrong_boot_mode", "  - event: wrong_boot"), 5, "unknown event kind 'wrong_boot'"),
        (GOOD.replace("title: t", "title: t\ntitel: x"), 4, "unknown key 'titel' in rule (did you mean 'title'?)"),
        (GOOD.replace("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    where: {boot: {gtt: 3}}"), 6, "unknown operator 'gtt'"),
        (GOOD.replace("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    text: '(a+)+b'"), 6, "backtrack"),
        (GOOD.replace("  - event: wrong_boot_mode", "  - event: wrong_boot_mode\n    text: '(unclosed'"), 6, "invalid regex"),
        (GOOD.replace("when:", "when: [\n"), 6, "invalid YAML"),
        (GOOD.replace("id: my-rule", "id: other-name"), 1, "must match the file name"),
        (GOOD.replace("title: t", "title: t\ntitle: u"), 4, "duplicate key"),
    ],
)
def test_broken_rule_reports_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "my-rule.yaml", text)
    rule, errors = load_file(path)
    assert rule is None
    assert errors, "expected an error"
    rendered = [str(e) for e in errors]
    assert any(message in r for r in rendered), rendered
    assert any(r.startswith(f"{path}:{line}") for r in rendered), rendered


def test_good_rule_loads(tmp_path: Path) -> None:
    rule, errors = load_file(write(tmp_path, "my-rule.yaml", GOOD))
    assert errors == [] and rule is not None and rule.id == "my-rule"


@pytest.mark.parametrize(("content", "message"), [(b"", "empty"), (b"id: \xff\xfe", "not valid UTF-8"),
                                                  (b"- a\n- b\n", "one mapping")])
def test_unusable_rule_files(tmp_path: Path, content: bytes, message: str) -> None:
    _, errors = load_file(write(tmp_path, "x.yaml", content))
    assert any(message in str(e) for e in errors)


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    text = GOOD.replace("title: t", "title: !!python/object/apply:os.system ['echo pwned']")
    _, errors = load_file(write(tmp_path, "my-rule.yaml", text))
    assert errors and "invalid YAML" in str(errors[0])


def test_duplicate_ids_across_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write(tmp_path / "a", "my-rule.yaml", GOOD)
    write(tmp_path / "b", "my-rule.yaml", GOOD)
    with pytest.raises(RuleErrors, match="duplicate rule id 'my-rule'"):
        load_rules([tmp_path / "a", tmp_path / "b"], builtin=False)


def test_builtin_dir_is_found() -> None:
    assert (builtin_rules_dir()).is_dir()

"""The on-disk cache can never run code, trusts only what the user owns, and does not thrash."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espdiag import cache, rulecache, rules

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "samples" / "esptool4-success.log"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def cdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ESPDIAG_CACHE_DIR", str(folder))
    monkeypatch.delenv("ESPDIAG_NO_CACHE", raising=False)
    return folder


def _count_yaml_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = rulecache.parse_rule_text

    def counting(text: str, name: str):  # type: ignore[no-untyped-def]
        calls.append(name)
        return real(text, name)

    monkeypatch.setattr(rulecache, "parse_rule_text", counting)
    return calls


class _Payload:
    """Unpickling this writes a marker file: the proof that a pickle was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.marker).touch, ())


def test_a_planted_pickle_is_never_loaded(cdir: Path, tmp_path: Path) -> None:
    # the old cache unpickled <cache>/rules-<key>.pickle; any such file must be ignored (and removed)
    cdir.mkdir(mode=0o700)
    marker = tmp_path / "pwned"
    for name in ("rules-0123456789abcdef0123456789abcdef.pickle", "rule-data.json", "grammar-x.json"):
        (cdir / name).write_bytes(pickle.dumps(_Payload(str(marker))))
    env = {**os.environ, "ESPDIAG_CACHE_DIR": str(cdir)}
    code = ("import pickle, sys\n"
            "def boom(*a, **k): raise SystemExit('pickle used')\n"
            "pickle.load = pickle.loads = boom\n"
            "from espdiag.main import main\n"
            f"sys.exit(main(['--format', 'json', {str(LOG)!r}]))\n")
    for _ in range(2):  # a cold and a warm run
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["verdict"] == "success"
    assert not marker.exists()
    assert not list(cdir.glob("*.pickle"))
    json.loads((cdir / "rule-data.json").read_bytes())  # the planted pickle was replaced by JSON
    assert [json.loads(p.read_bytes()) for p in cdir.glob("grammar-*.json") if p.name != "grammar-x.json"]


def test_second_run_parses_no_yaml(cdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_yaml_parses(monkeypatch)
    first = rulecache.load_rules()
    assert len(calls) == len(first.rules)
    calls.clear()
    second = rulecache.load_rules()
    assert calls == []
    assert [r.id for r in second.rules] == [r.id for r in first.rules]
    assert second.rules == first.rules  # the compiled rules are the same


def test_with_and_without_user_rules_do_not_thrash(cdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    src = next(rules.builtin_rules_dir().rglob("*.yaml"))
    text = src.read_text().replace(f"id: {src.stem}", "id: my-rule")
    (mine / "my-rule.yaml").write_text(text)
    calls = _count_yaml_parses(monkeypatch)
    rulecache.load_rules()
    rulecache.load_rules([mine])
    calls.clear()
    for _ in range(2):
        rulecache.load_rules()
        rulecache.load_rules([mine])
    assert calls == []


def test_an_edited_rule_file_is_read_again(cdir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    src = next(rules.builtin_rules_dir().rglob("*.yaml"))
    base = src.read_text().replace(f"id: {src.stem}", "id: my-rule")
    path = mine / "my-rule.yaml"
    path.write_text(base)
    rulecache.load_rules([mine], builtin=False)
    path.write_text(base.replace("title:", "title: Edited", 1) if "title: >" not in base else base + "\n# edited\n")
    got = rulecache.load_rules([mine], builtin=False)
    assert got.rules[0].title == rules.load_rules([mine], builtin=False).rules[0].title


def test_a_broken_rule_set_is_not_stored(cdir: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "bad.yaml").write_text("id: bad\ncause: nonsense\n")
    with pytest.raises(rules.RuleErrors):
        rulecache.load_rules([mine])
    assert not (cdir / "rule-data.json").exists()


def _tamper(cdir: Path) -> None:
    """Rewrite every stored rule title: if the tampered store is used, titles change."""
    path = cdir / "rule-data.json"
    data = json.loads(path.read_text())
    for entry in data["entries"].values():
        for item in entry["m"]:
            if item[0] == "title":
                item[-1] = "TAMPERED"
    path.write_text(json.dumps(data))


def test_tampering_shows_when_trusted(cdir: Path) -> None:
    # the control for the two tests below: a trusted, tampered store is served
    rulecache.load_rules()
    _tamper(cdir)
    assert {r.title for r in rulecache.load_rules().rules} == {"TAMPERED"}


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_folder_others_can_write_is_ignored(cdir: Path) -> None:
    rulecache.load_rules()
    _tamper(cdir)
    os.chmod(cdir, 0o777)
    assert "TAMPERED" not in {r.title for r in rulecache.load_rules().rules}
    os.chmod(cdir, 0o700)
    os.chmod(cdir / "rule-data.json", 0o666)
    assert "TAMPERED" not in {r.title for r in rulecache.load_rules().rules}


@pytest.mark.skipif(not IS_ROOT, reason="changing a file's owner needs root")
def test_files_and_folders_of_another_user_are_ignored(cdir: Path) -> None:
    # root running with a user's HOME: the user's cache must not feed root's run
    rulecache.load_rules()
    _tamper(cdir)
    os.chown(cdir / "rule-data.json", 65534, 65534)
    assert "TAMPERED" not in {r.title for r in rulecache.load_rules().rules}
    os.chown(cdir / "rule-data.json", 0, 0)
    os.chown(cdir, 65534, 65534)
    assert "TAMPERED" not in {r.title for r in rulecache.load_rules().rules}
    assert cache.read_json("rule-data.json") is None


@pytest.mark.skipif(os.name == "nt", reason="symlinks")
def test_a_symlinked_entry_is_not_followed(cdir: Path, tmp_path: Path) -> None:
    cdir.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text('{"fingerprint": "x", "entries": {}}')
    (cdir / "rule-data.json").symlink_to(target)
    assert cache.read_json("rule-data.json") is None


def test_oversized_entries_are_ignored(cdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cdir.mkdir(mode=0o700)
    (cdir / "big.json").write_text("[" + "1," * 100 + "1]")
    assert cache.read_json("big.json") == [1] * 101
    monkeypatch.setattr(cache, "MAX_ENTRY_BYTES", 50)
    assert cache.read_json("big.json") is None


def test_stale_temporary_files_are_removed(cdir: Path) -> None:
    cdir.mkdir(mode=0o700)
    stale, fresh = cdir / ".tmp-killed.json", cdir / ".tmp-running.json"
    for f in (stale, fresh):
        f.write_text("{}")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    cache.write_json("x.json", {"a": 1})
    assert not stale.exists()
    assert fresh.exists()
    assert cache.read_json("x.json") == {"a": 1}


def test_no_cache_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ESPDIAG_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("ESPDIAG_NO_CACHE", "1")
    rulecache.load_rules()
    assert not (tmp_path / "c").exists()

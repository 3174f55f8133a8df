"""The command line as users meet it: main(argv) -> exit code, output on stdout, errors on stderr."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES
from conftest import run_main as run

from espdiag import __version__

FAIL_LOG = b"esptool.py v4.0\nSerial port /dev/ttyUSB0\nConnecting.....\n\nA fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)! The chip needs to be in download mode.\n"


def test_stdin_json(capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json"], capsys, monkeypatch, FAIL_LOG)
    data = json.loads(out)
    assert code == 1
    assert data["schema"] == 1
    assert data["verdict"] == "failure"
    assert data["tool"] == "esptool.py"
    assert data["causes"][0]["id"] == "boot-mode"
    top = data["causes"][0]
    assert set(top) >= {"id", "confidence", "title", "evidence", "fixes"}
    assert 0 <= top["confidence"] <= 1
    assert top["evidence"][0] == {"line": 5, "text": FAIL_LOG.decode().splitlines()[4], "count": 1}
    assert all(isinstance(f, str) for f in top["fixes"])


def test_file_and_text_output(capsys, monkeypatch) -> None:
    code, out, _ = run([str(SAMPLES / "ck-cloud-wrote-zero.log")], capsys, monkeypatch)
    assert code == 1
    assert "port-write-failure" in out and "\x1b[" not in out
    assert "Fix:" in out


def test_success_exit_zero(capsys, monkeypatch) -> None:
    code, out, _ = run([str(SAMPLES / "esptool4-success.log")], capsys, monkeypatch)
    assert code == 0
    assert "SUCCESS" in out


def test_exit_zero_flag(capsys, monkeypatch) -> None:
    code, _, _ = run(["--exit-zero"], capsys, monkeypatch, FAIL_LOG)
    assert code == 0


def test_missing_file(capsys, monkeypatch, tmp_path) -> None:
    code, out, err = run([str(tmp_path / "nope.log")], capsys, monkeypatch)
    assert code == 2
    assert err.strip() == f"espdiag: {tmp_path / 'nope.log'}: no such file"
    assert out == ""


def test_directory_is_an_input_error(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run([str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "directory" in err and "Traceback" not in err


def test_binary_junk(capsys, monkeypatch) -> None:
    code, _, err = run([], capsys, monkeypatch, bytes(range(256)) * 64)
    assert code == 2
    assert "binary" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_empty_input(capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json"], capsys, monkeypatch, b"")
    assert code == 0
    assert json.loads(out)["verdict"] == "unknown"


def test_unknown_failure_is_honest(capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json"], capsys, monkeypatch, b"A fatal error occurred: the moon is in the wrong phase\n")
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "failure"
    assert not [c for c in data["causes"] if c["confidence"] >= 0.5]
    assert data["checklist"]


def test_bad_option(capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit) as e:
        run(["--format", "xml"], capsys, monkeypatch)
    assert e.value.code == 2


def test_version_and_help() -> None:
    out = subprocess.run([sys.executable, "-m", "espdiag", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"espdiag {__version__}"
    out = subprocess.run([sys.executable, "-m", "espdiag", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "exit codes" in out.stdout


def test_pipe_from_a_process() -> None:
    proc = subprocess.run([sys.executable, "-m", "espdiag", "--format", "json"], input=FAIL_LOG,
                          capture_output=True)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["causes"][0]["id"] == "boot-mode"


def test_colour_only_when_asked(monkeypatch) -> None:
    env = {"PATH": "", "FORCE_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "espdiag"], input=FAIL_LOG, capture_output=True, env=env)
    assert b"\x1b[" in out.stdout
    env = {"PATH": "", "FORCE_COLOR": "1", "NO_COLOR": "1"}
    out = subprocess.run([sys.executable, "-m", "espdiag"], input=FAIL_LOG, capture_output=True, env=env)
    assert b"\x1b[" not in out.stdout


def test_legacy_console_encoding() -> None:
    # a Windows console with a legacy code page must not crash on characters it cannot show
    log = FAIL_LOG + "A fatal error occurred: caf\u00e9 \u2603\n".encode()
    out = subprocess.run([sys.executable, "-m", "espdiag"], input=log, capture_output=True,
                         env={"PATH": "", "PYTHONIOENCODING": "cp1252"})
    assert out.returncode == 1 and b"Traceback" not in out.stderr


def test_broken_user_rule_exit_2(capsys, monkeypatch, tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("id: bad\ncause: nope\n")
    code, _, err = run(["--rules", str(tmp_path)], capsys, monkeypatch, FAIL_LOG)
    assert code == 2
    assert f"{tmp_path / 'bad.yaml'}:2: cause 'nope' is not in the taxonomy" in err


def test_several_files_give_a_json_list(capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json", str(SAMPLES / "esptool4-success.log"),
                        str(SAMPLES / "pio-wrong-boot-mode.log")], capsys, monkeypatch)
    data = json.loads(out)
    assert code == 1 and [d["verdict"] for d in data] == ["success", "failure"]


def test_missing_dependency_is_a_setup_error() -> None:
    code = "import sys; sys.modules['lark'] = None\nfrom espdiag.main import main\nraise SystemExit(main(['--format', 'json']))"
    out = subprocess.run([sys.executable, "-c", code], input=FAIL_LOG, capture_output=True)
    assert out.returncode == 2
    assert out.stderr.decode().strip().startswith("espdiag: the package 'lark' is missing")
    assert b"Traceback" not in out.stderr


# ---------------------------------------------------------------- the command line's structure (issue 14)
PACKAGE = ROOT / "espdiag"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every espdiag module ``path`` imports, at module level or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            arg = node.args[0] if node.args else None  # the format registry: f"espdiag.render.{module}"
            if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                names = [m for m in MODULES if m.startswith(str(arg.values[0].value))]
        found.update(n for n in names if n in MODULES)
    return found - {_module_name(path)}


def test_no_import_cycle_in_the_package() -> None:
    graph = {name: _imports(path) for name, path in MODULES.items()}
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, node, dep])
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_commands_import_neither_main_nor_each_other() -> None:
    for name, path in MODULES.items():
        if name.startswith("espdiag.commands."):
            bad = {m for m in _imports(path) if m == "espdiag.main" or m.startswith("espdiag.commands.")}
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m not in ("espdiag.__main__", "espdiag.premark")))
def test_each_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # a cycle hidden by import order shows up when the module is the first one imported
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()


def test_every_command_loads_rules_through_the_one_entry_point(capsys, monkeypatch, tmp_path) -> None:
    import espdiag.rulecache

    calls: list[list[Path]] = []
    real = espdiag.rulecache.load_rules

    def spy(extra_dirs=(), builtin=True):
        calls.append(list(extra_dirs))
        return real(extra_dirs, builtin)

    monkeypatch.setattr(espdiag.rulecache, "load_rules", spy)
    log = SAMPLES / "esptool4-success.log"
    for argv in (["--rules", str(tmp_path), str(log)], ["check", "--rules", str(tmp_path), str(log)],
                 ["rules", "--rules", str(tmp_path)], ["explain", "--rules", str(tmp_path), "boot-mode"],
                 ["run", "--rules", str(tmp_path), "--", "true"]):
        calls.clear()
        run(argv, capsys, monkeypatch)
        assert calls == [[tmp_path]], argv


def test_a_format_is_one_registry_line(capsys, monkeypatch) -> None:
    from espdiag import output

    assert ("auto", *output.RENDERERS) == output.FORMATS
    helpers = {"__init__", "layout", "safe", "colour"}  # shared by the formats, not formats themselves
    shipped = {p.stem for p in (PACKAGE / "render").glob("*.py")} - helpers
    registered = set(output.RENDERERS) | {"json_out", "rich_out"}
    assert shipped <= registered, f"render modules without a --format: {shipped - registered}"
    monkeypatch.setitem(output.RENDERERS, "count", lambda reports, stream, verbose, colour: stream.write(f"{len(reports)}\n"))
    monkeypatch.setattr(output, "FORMATS", ("auto", *output.RENDERERS))
    monkeypatch.setattr("espdiag.main.FORMATS", output.FORMATS)
    code, out, _ = run(["--format", "count", str(SAMPLES / "esptool4-success.log")], capsys, monkeypatch)
    assert (code, out) == (0, "1\n")


# ---------------------------------------------------------------- what a new user trips over (issue 13)
def test_license_file_is_the_declared_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted" in text
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text() or "MIT" in (ROOT / "pyproject.toml").read_text()


def test_quick_start_gives_routes_that_work_on_externally_managed_pythons(capsys, monkeypatch) -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):readme.index("## Usage")]
    for needle in ("pipx install", "python3 -m venv", "externally-managed-environment", "PowerShell", "cmd",
                   '".[test]"', "exits 1 on purpose"):
        assert needle in quick, needle
    # the first command's diagnosis is a failure: exit 1 is what the README promises
    code, _, _ = run([str(SAMPLES / "ck-cloud-read-zero.log")], capsys, monkeypatch)
    assert code == 1


PIPED_WITHOUT_STDERR = b"esptool.py v4.8.1\nSerial port /dev/ttyUSB0\nConnecting......\n"


def test_log_cut_inside_an_attempt_says_2_and_1_and_fails(capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json"], capsys, monkeypatch, PIPED_WITHOUT_STDERR)
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "unknown"
    (note,) = [n for n in data["notes"] if "2>&1" in n]
    assert "espdiag run --" in note
    code, out, _ = run([], capsys, monkeypatch, PIPED_WITHOUT_STDERR)
    assert code == 1 and "2>&1" in out
    code, out, _ = run(["check", "-"], capsys, monkeypatch, PIPED_WITHOUT_STDERR)
    assert code == 1 and "2>&1" in out
    assert run(["--exit-zero"], capsys, monkeypatch, PIPED_WITHOUT_STDERR)[0] == 0


@pytest.mark.parametrize("log", [b"", b"hello\n", b"Sketch uses 1234 bytes (1%) of program storage space.\n"])
def test_logs_without_a_flasher_still_exit_0(log: bytes, capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", "json"], capsys, monkeypatch, log)
    assert code == 0 and not [n for n in json.loads(out)["notes"] if "2>&1" in n]


def test_terminal_prompt_and_one_end_of_input_is_enough() -> None:
    pty = pytest.importorskip("pty")
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "espdiag", "--format", "json"], stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        os.write(master, FAIL_LOG + b"\x04")  # the log ends with a newline: one Ctrl-D ends the input
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("one Ctrl-D did not end the input")
    finally:
        os.close(master)
    assert proc.returncode == 1 and json.loads(out)["causes"][0]["id"] == "boot-mode"
    (prompt,) = err.decode().splitlines()
    assert "Ctrl-D" in prompt and "Ctrl-Z" in prompt and "paste" in prompt


def test_no_prompt_when_input_is_a_pipe() -> None:
    proc = subprocess.run([sys.executable, "-m", "espdiag"], input=FAIL_LOG, capture_output=True)
    assert proc.returncode == 1 and proc.stderr == b""


def test_missing_pyyaml_names_the_package_to_install() -> None:
    code = "import sys; sys.modules['yaml'] = None\nfrom espdiag.main import main\nraise SystemExit(main([]))"
    out = subprocess.run([sys.executable, "-c", code], input=FAIL_LOG, capture_output=True,
                         env={**os.environ, "ESPDIAG_NO_CACHE": "1"})
    err = out.stderr.decode()
    assert out.returncode == 2 and "pip install pyyaml" in err and "pip install yaml" not in err


def test_good_file_is_reported_when_another_is_missing(capsys, monkeypatch, tmp_path) -> None:
    good = str(SAMPLES / "esptool4-success.log")
    code, out, err = run([good, str(tmp_path / "missing.log")], capsys, monkeypatch)
    assert code == 2 and "SUCCESS" in out and good in out
    assert err.strip() == f"espdiag: {tmp_path / 'missing.log'}: no such file"


@pytest.mark.parametrize("command", ["diagnose", "check", "events", "rules", "explain", "run", "serve"])
def test_help_fits_80_columns(command: str) -> None:
    argv = [] if command == "diagnose" else [command]
    for columns in ("80", "200"):
        proc = subprocess.run([sys.executable, "-m", "espdiag", *argv, "--help"], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": columns})
        assert proc.returncode == 0
        wide = [line for line in proc.stdout.splitlines() if len(line) > 80]
        assert not wide, wide


def test_invalid_espdiag_format_is_an_error(capsys, monkeypatch) -> None:
    monkeypatch.setenv("ESPDIAG_FORMAT", "xml")
    with pytest.raises(SystemExit) as e:
        run([], capsys, monkeypatch, FAIL_LOG)
    assert e.value.code == 2
    assert "ESPDIAG_FORMAT='xml'" in capsys.readouterr().err
    monkeypatch.setenv("ESPDIAG_FORMAT", "json")
    code, out, _ = run([], capsys, monkeypatch, FAIL_LOG)
    assert code == 1 and json.loads(out)["verdict"] == "failure"


# ---------------------------------------------------------------- an unwritable stdout (issue 12, item 15)
def _shell(command: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["sh", "-c", command], capture_output=True, timeout=60, **kwargs)  # type: ignore[call-overload]


@pytest.mark.skipif(not Path("/dev/full").exists() or sys.platform == "win32", reason="needs /dev/full and sh")
@pytest.mark.parametrize("redirect", [">&-", ">/dev/full"])
@pytest.mark.parametrize("argv", [["{log}"], ["--format", "json", "{log}"], ["check", "{log}"], ["events", "{log}"],
                                  ["explain", "boot-mode"], ["rules"]])
def test_closed_or_full_stdout_is_one_line_and_exit_2(redirect: str, argv: list[str]) -> None:
    log = SAMPLES / "ck-cloud-read-zero.log"
    words = " ".join(f"'{a.format(log=log)}'" for a in argv)
    proc = _shell(f"exec '{sys.executable}' -m espdiag {words} {redirect}")
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and "standard output" in err and "Traceback" not in err

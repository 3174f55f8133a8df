"""End to end through the command line: --color, the text format's width, check --format github."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import ROOT, SAMPLES
from test_terminal import URL_LINE, run_in_pty

SAMPLE = "samples/ck-cloud-wrote-zero.log"


def _run(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "ESPDIAG_FORMAT")}
    env.update({"PYTHONPATH": str(ROOT), "TERM": "xterm-256color"})
    return subprocess.run([sys.executable, "-m", "espdiag", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env).stdout


def test_color_always_into_a_pipe_gives_colour() -> None:
    assert "\x1b[" in _run(["--color", "always", SAMPLE])


def test_rich_with_color_never_on_a_terminal_gives_none() -> None:
    out = run_in_pty(["--format", "rich", "--color", "never", SAMPLE])
    assert "\x1b[" not in out and "port-write-failure" in out


def test_the_text_format_on_a_terminal_is_wrapped() -> None:
    out = run_in_pty(["--format", "text", SAMPLE])
    assert all(len(line) <= 80 or URL_LINE.match(line) for line in out.splitlines())


def test_check_github_summary_lines_cannot_inject_commands(tmp_path) -> None:
    name = tmp_path / "a\n::add-mask::x\n::error file=z::pwned.log"
    shutil.copy(SAMPLES / "esptool5-linux-permission.log", name)
    out = _run(["check", "--format", "github", str(name)])
    assert not [line for line in out.splitlines() if line.startswith(("::add-mask", "::error file=z"))]
    assert "\\n::add-mask::x\\n" in out


def test_check_github_levels_follow_fail_on() -> None:
    default = _run(["check", "--format", "github", "samples/ck-cloud-read-zero.log"]).splitlines()
    strict = _run(["check", "--format", "github", "--fail-on", "0.3", "samples/ck-cloud-read-zero.log"]).splitlines()
    assert default[1].startswith("::warning") and strict[1].startswith("::error")


def test_a_missing_file_name_cannot_act_on_the_terminal(capsys, monkeypatch) -> None:
    from conftest import run_main

    code, _out, err = run_main(["missing-\x1b]0;pwned\x07\x9b.log"], capsys, monkeypatch)
    assert code == 2
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err

"""The command line as users meet it: main(argv) -> exit code, output on stdout, errors on stderr."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SAMPLES
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

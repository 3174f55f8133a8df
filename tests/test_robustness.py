"""Unbreakable on bad input: property tests, adversarial logs, dangerous user regexes, interrupted runs."""

from __future__ import annotations

import codecs
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from espdiag.api import diagnose_bytes, scan
from espdiag.errors import InputError, RuleErrors
from espdiag.events import KINDS
from espdiag.normalise import normalise
from espdiag.parse import parse_line
from espdiag.rules import load_rules, regex_risk

ROOT = Path(__file__).resolve().parent.parent
QUICK = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOG_WORDS = [
    "esptool.py v4.8.1\n", "Serial port COM3\n", "Connecting....\n", "Connecting...._____\n",
    "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n",
    "Writing at 0x00010000... (50 %)\n", "Hash of data verified.\n", "\x1b[31m", "\x1b[0m", "\r", "\n",
    "trying to connect\n", "read 0, requested 1\n", "warning: espcomm_sync failed\n", "exit status 2\n",
    "ets Jan  8 2013,rst cause:2, boot mode:(1,7)\n", "> ", "12:00:01.123 -> ", "\x00", "\ufffd", "```\n",
]


# ----------------------------------------------------------------------------- properties
@QUICK
@given(st.text())
def test_normalise_never_fails(text: str) -> None:
    out = normalise(text)
    assert all(isinstance(t, str) and t and t == t.strip() for t in out)


@QUICK
@given(st.text(max_size=300))
def test_parse_line_always_gives_a_known_kind(text: str) -> None:
    for line in normalise(text):
        kind, fields = parse_line(line)
        assert kind in KINDS
        assert all(isinstance(k, str) for k, _ in fields)


def _check_report(data: bytes) -> None:
    try:
        report = diagnose_bytes(data)
    except InputError as e:
        assert "\n" not in str(e)  # one line for the user
        return
    lines = report.lines
    assert 0 <= lines <= data.count(b"\n") + 1
    for cause in report.causes:
        for e in cause.evidence:
            assert 1 <= e.line <= lines
    if report.first_line:
        assert 1 <= report.first_line <= report.last_line <= lines


@QUICK
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_report_or_an_input_error(data: bytes) -> None:
    _check_report(data)


@QUICK
@given(st.lists(st.sampled_from(LOG_WORDS) | st.text(max_size=20), max_size=80))
def test_log_like_text_gives_a_report(parts: list[str]) -> None:
    _check_report("".join(parts).encode("utf-8", "surrogatepass"))


# ----------------------------------------------------------------------------- adversarial inputs
def _timed(data: bytes, limit: float = 20.0) -> None:
    start = time.perf_counter()
    _check_report(data)
    assert time.perf_counter() - start < limit


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 100_000,
        b"x" * (10 << 20),  # 10 MB line, no newline
        b"\xff\xfe\xfd\x80" * 1000 + b"\nA fatal error occurred: Timed out waiting for packet header\n",
        "esptool.py v4.8.1\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n".encode("utf-16-le"),
        b"\x1b[31m\x1b[1;2;3;4m\x1b]0;title\x07\x1b[K" * 50_000 + b"exit status 2\n",
        b"esptool.py v3.0\nConnecting........_____.....\nA fatal error occurred: Failed to con",  # cut mid-line
        b"\r" * 100_000 + b"Hash of data verified.\n",
    ],
    ids=["empty", "nul", "10MB-line", "invalid-utf8", "utf16-no-bom", "ansi-storm", "truncated", "cr-storm"],
)
def test_adversarial_input_finishes(data: bytes) -> None:
    _timed(data)


def test_only_nul_bytes_is_not_an_upload_log() -> None:
    with pytest.raises(InputError, match="binary"):
        diagnose_bytes(b"\x00" * 1000)


def test_hundred_thousand_attempts_stay_bounded() -> None:
    attempt = (b"esptool.py v4.8.1\nSerial port /dev/ttyUSB0\nConnecting....\n"
               b"A fatal error occurred: Failed to connect to ESP32: No serial data received.\n")
    start = time.perf_counter()
    tracker, lines = scan(io.BytesIO(attempt * 100_000))
    assert time.perf_counter() - start < 60
    assert lines == 400_000
    assert tracker.attempts == 100_000
    assert tracker.failed_attempts == 99_999
    # only the current attempt and the last failing/succeeding one are kept, each bounded
    for session in (tracker.current, tracker.last_failure):
        assert session is not None
        assert len(session.events()) <= 4
    report = diagnose_bytes(attempt * 2000)
    assert report.attempts == 2000
    assert report.verdict == "failure"


def test_binary_data_is_a_one_line_error_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "firmware.bin"
    path.write_bytes(bytes(range(256)) * 64)
    out = subprocess.run([sys.executable, "-m", "espdiag", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "binary" in out.stderr


def test_utf16_with_bom_is_read() -> None:
    data = codecs.BOM_UTF16_LE + "exit status 2\n".encode("utf-16-le")
    assert diagnose_bytes(data).verdict == "failure"


# ----------------------------------------------------------------------------- user rules
@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+$", r"(.*)*x", r"(a|a)*b", r"(a|ab)+c", r"(\w+)\s\1", r"(?P<x>a)(?P=x)", r"a.*b.*c.*d",
     r"(x{1,3}){2,}", r"(?:\s*foo)+"],
)
def test_dangerous_regexes_are_refused(pattern: str) -> None:
    assert regex_risk(pattern)


@pytest.mark.parametrize(
    "pattern",
    [r"Access (is )?denied", r"(?:foo|bar)+", r"[ab]+c", r"timed? ?out", r"0x[0-9a-f]{2,8}", r"^\S+ is busy$", r"a.*b.*c"],
)
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    assert regex_risk(pattern) is None


def test_builtin_rules_pass_the_regex_check() -> None:
    load_rules()  # would raise if a shipped regex were refused


RULE = """\
id: {id}
cause: port-busy
title: Port busy
when:
  event: port_error
  text: {regex!r}
fixes: [Close the other program]
examples:
  - match: "could not open port /dev/ttyUSB0: [Errno 16] Device or resource busy"
"""


def _rule_error(tmp_path: Path, name: str, content: bytes) -> str:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(content)
    with pytest.raises(RuleErrors) as info:
        load_rules([d], builtin=False)
    return str(info.value)


def test_catastrophic_user_regex_is_a_located_error(tmp_path: Path) -> None:
    msg = _rule_error(tmp_path, "slow.yaml", RULE.format(id="slow", regex="(a|a)*$").encode())
    assert "slow.yaml:6:" in msg and "backtrack" in msg


def test_rule_file_not_utf8_is_a_located_error(tmp_path: Path) -> None:
    msg = _rule_error(tmp_path, "bad.yaml", b"id: bad\ntitle: caf\xe9\n")
    assert "bad.yaml:2:" in msg and "UTF-8" in msg


def test_empty_rule_file_is_a_located_error(tmp_path: Path) -> None:
    msg = _rule_error(tmp_path, "empty.yaml", b"  \n")
    assert "empty.yaml:1:" in msg and "empty" in msg


def test_duplicate_rule_ids_are_located_errors(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    (d / "a").mkdir(parents=True)
    (d / "b").mkdir()
    for sub in ("a", "b"):
        (d / sub / "same.yaml").write_text(RULE.format(id="same", regex="busy"))
    with pytest.raises(RuleErrors) as info:
        load_rules([d], builtin=False)
    assert "same.yaml:1: duplicate rule id 'same'" in str(info.value)


def test_yaml_objects_are_not_constructed(tmp_path: Path) -> None:
    msg = _rule_error(tmp_path, "evil.yaml", b"id: !!python/object/apply:os.system ['echo hi']\n")
    assert "evil.yaml:1:" in msg


# ----------------------------------------------------------------------------- interrupted runs
def _espdiag(*args: str, **kw: object) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "espdiag", *args], env=env, cwd=ROOT, **kw)  # type: ignore[call-overload, no-any-return]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_exits_130_without_a_traceback() -> None:
    proc = _espdiag("--format", "json", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"esptool.py v4.8.1\nConnecting....\n" * 1000)  # then the pipe stays open: a slow producer
    proc.stdin.flush()
    time.sleep(1.5)  # let it start and block reading
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"Traceback" not in err
    assert err.count(b"\n") <= 1


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_closed_pipe_exits_quietly(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes(b"esptool.py v4.8.1\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n" * 50)
    # many reports, and a reader that goes away after the first line
    files = [str(log)] * 400
    proc = _espdiag("--format", "text", "--verbose", *files, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode in (141, 1)  # 141 = 128 + SIGPIPE, the shell convention
    assert b"Traceback" not in err and b"internal error" not in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell")
def test_pipe_into_head(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_bytes(b"esptool.py v4.8.1\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n" * 20)
    cmd = f"{sys.executable} -m espdiag --format json {' '.join([str(log)] * 300)} | head -1; echo ${{PIPESTATUS[0]}}"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, cwd=ROOT, timeout=120)
    status = out.stdout.strip().splitlines()[-1]
    assert status in ("141", "1")
    assert "Traceback" not in out.stderr

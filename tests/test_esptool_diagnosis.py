"""espdiag on real esptool output: every virtual-board fault x pinned esptool version x chip.

The logs come from the session-scoped ``esptool_log`` fixture (tests/virtual_board/fixtures.py),
shared with test_virtual_board.py, so each esptool run happens once per session.  Also here:
``espdiag run -- <esptool...>`` and ``espdiag --passthrough`` end to end, and the logs in
samples/generated/ (written by tests/virtual_board/generate_samples.py).

Where espdiag's answer differs from what the fault really is, the single case is marked
``xfail(strict=True)`` with the reason, so a fix shows up as an XPASS failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from virtual_board.faults import Fault, HostFault
from virtual_board.fixtures import LogFactory
from virtual_board.harness import PINNED_VERSIONS, major, staged_write_flash

from espdiag.api import diagnose_text
from espdiag.commands.run import run_command
from espdiag.report import Report

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "samples" / "generated"
CHIPS = ("esp8266", "esp32")
PYTHON = sys.executable

# fault -> (top cause, causes that must be among the top three)
EXPECTED: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "none": (None, ()),
    "no-download-mode": ("boot-mode", ()),
    "normal-boot": ("boot-mode", ()),
    # esptool never prints the ROM banner 'boot mode:(7,6)', so GPIO15 can only be a candidate
    "gpio15-high": ("boot-mode", ("strapping-gpio15",)),
    "no-sync-reply": ("driver", ("uart-pins-loaded",)),
    "garbage": ("serial-noise", ()),
    "stop-mid-write": ("power-supply", ()),
    "wrong-chip": ("wrong-chip", ()),
    "flash-id-ffffff": ("flash-config", ()),
    "port-missing": ("port-missing", ()),
    "port-busy": ("port-busy", ()),
    "port-permission": ("port-permission", ()),
}

# (version major, fault) -> why espdiag's answer differs (reported; rules are not changed here)
# (fixed: esptool 4.8.1's flash-id crash traceback was read as a new attempt at "esptool._main()")
KNOWN_WRONG: dict[tuple[int, str], str] = {}


def _case(version: str, fault: str, chip: str, id_: str) -> object:
    reason = KNOWN_WRONG.get((major(version), fault))
    marks = [pytest.mark.esptool]
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(version, fault, chip, id=id_, marks=marks)


CASES = [
    _case(v, f.value, c, f"{f.value}-{c}-esptool{v}")
    for f in Fault
    for c in CHIPS
    if f.applies_to(c)
    for v in PINNED_VERSIONS
] + [_case(v, h.value, "esp32", f"{h.value}-esptool{v}") for h in HostFault for v in PINNED_VERSIONS]


def summary(report: Report) -> str:
    return f"{report.verdict}: " + ", ".join(f"{c.id} {c.confidence:.2f}" for c in report.causes[:5])


def check_report(report: Report, fault: str, output: str) -> None:
    """The verdict and top cause espdiag must give for a log of ``fault``."""
    top, in_top3 = EXPECTED[fault]
    got = summary(report)
    if top is None:
        assert report.verdict == "success", f"{got}\n{output}"
        assert not [c.id for c in report.causes if c.confidence >= 0.5], f"{got}\n{output}"
        return
    assert report.verdict == "failure", f"{got}\n{output}"
    assert report.causes, f"no cause for {fault}\n{output}"
    assert report.causes[0].id == top, f"expected {top} first, got {got}\n{output}"
    assert report.causes[0].confidence >= 0.5, f"{got}\n{output}"
    ids = [c.id for c in report.causes[:3]]
    for cause in in_top3:
        assert cause in ids, f"{cause} not in the top three: {got}\n{output}"


# ---------------------------------------------------------------- the library on every run


@pytest.mark.parametrize(("version", "fault", "chip"), CASES)
def test_diagnosis_of_esptool_log(esptool_log: LogFactory, version: str, fault: str, chip: str) -> None:
    log = esptool_log(version, fault, chip)
    assert not log.timed_out, log.output
    assert (log.returncode == 0) == (fault == "none"), log.output
    check_report(diagnose_text(log.output, f"{fault}-{chip}-esptool{version}"), fault, log.output)


# ---------------------------------------------------------------- the CLI on a few runs


@pytest.mark.esptool
@pytest.mark.parametrize(
    ("version", "fault", "chip"),
    [("5.6.0", "normal-boot", "esp32"), ("3.3.3", "stop-mid-write", "esp8266"), ("4.8.1", "port-missing", "esp32")],
)
def test_cli_json_on_esptool_log(esptool_log: LogFactory, version: str, fault: str, chip: str) -> None:
    log = esptool_log(version, fault, chip)
    proc = subprocess.run([PYTHON, "-m", "espdiag", "--format", "json"], input=log.output.encode(),
                          capture_output=True, check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr.decode()
    data = json.loads(proc.stdout)
    assert data["verdict"] == "failure"
    assert data["causes"][0]["id"] == EXPECTED[fault][0], data["causes"]


# ---------------------------------------------------------------- espdiag run, real esptool


def _espdiag(*args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYTHON, "-m", "espdiag", *args], capture_output=True, check=False, timeout=120,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.esptool
@pytest.mark.parametrize(("version", "fault", "chip", "rc", "top"), [
    ("5.6.0", "wrong-chip", "esp32", 2, "wrong-chip"),
    ("3.3.3", "none", "esp8266", 0, None),
])
def test_run_wraps_real_esptool(esptool_versions: dict[str, str | None], tmp_path: Path, version: str, fault: str,
                                chip: str, rc: int, top: str | None) -> None:
    if esptool_versions[version]:
        pytest.skip(esptool_versions[version] or "")
    tee = tmp_path / "upload.log"
    with staged_write_flash(version, fault, chip) as staged:
        proc = _espdiag("run", "--format", "json", "--tee", str(tee), "--", *staged.argv,
                        env=staged.env, cwd=staged.cwd)
    assert proc.returncode == rc, proc.stderr.decode()
    assert proc.stdout == tee.read_bytes()  # stdout is exactly what esptool printed
    banner = "esptool v" if major(version) >= 5 else "esptool.py v"
    assert proc.stdout.decode().startswith(f"{banner}{version}\n")
    if top is None:
        assert "Hash of data verified." in proc.stdout.decode() or "Wrote 98304 bytes" in proc.stdout.decode()
        assert proc.stderr == b""  # a successful upload: nothing added
    else:
        data = json.loads(proc.stderr)
        assert data["verdict"] == "failure" and data["causes"][0]["id"] == top, data
        assert f"The command exited with code {rc}." in data["notes"]


# ---------------------------------------------------------------- espdiag run, simple commands


def test_run_exit_code_and_report_on_stderr() -> None:
    proc = _espdiag("run", "--format", "text", "--", "sh", "-c", "echo hi; exit 3")
    assert proc.returncode == 3
    assert proc.stdout == b"hi\n"
    assert "No upload result found" in proc.stderr.decode()
    assert "The command exited with code 3." in proc.stderr.decode()


def test_run_success_prints_nothing_extra() -> None:
    proc = _espdiag("run", "--", "sh", "-c", "printf 'a\\rb'; echo c >&2")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"a\rbc\n", b"")


def test_run_zero_exit_but_failure_in_output_is_diagnosed(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("esptool.py v4.8.1\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n")
    proc = _espdiag("run", "--format", "json", "--", "cat", str(log))
    assert proc.returncode == 0
    assert proc.stdout == log.read_bytes()
    assert json.loads(proc.stderr)["causes"][0]["id"] == "boot-mode"


def test_run_is_byte_exact() -> None:
    blob = b"\x1b[1mWriting\x1b[0m at 0x0 (10 %)\r\x00\xff\xfe tail without newline"
    proc = _espdiag("run", "--format", "text", "--", PYTHON, "-c",
                    f"import sys; sys.stdout.buffer.write({blob!r}); sys.stderr.write('E'); sys.exit(1)")
    assert proc.returncode == 1
    assert proc.stdout in (blob + b"E", b"E" + blob)  # merged through one pipe, each write intact


def test_run_streams_output_as_it_arrives(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    child = f"printf first; while [ ! -e {flag} ]; do sleep 0.02; done; echo done"
    with subprocess.Popen([PYTHON, "-m", "espdiag", "run", "--", "sh", "-c", child],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert p.stdout is not None
        first = os.read(p.stdout.fileno(), 100)  # arrives while the child is still waiting
        assert first == b"first"
        assert p.poll() is None
        flag.touch()
        rest = p.stdout.read()
        assert p.wait(timeout=30) == 0
    assert rest == b"done\n"


def test_run_cannot_start() -> None:
    proc = _espdiag("run", "--", "/nonexistent/esptool.py", "write_flash")
    assert proc.returncode == 127
    assert proc.stdout == b""
    assert proc.stderr.decode().count("\n") == 1 and "cannot run '/nonexistent/esptool.py'" in proc.stderr.decode()


def test_run_usage_errors(tmp_path: Path) -> None:
    assert _espdiag("run").returncode == 2
    assert _espdiag("run", "--format", "nope", "--", "true").returncode == 2
    bad = _espdiag("run", "--tee", str(tmp_path / "no" / "dir" / "x.log"), "--", "true")
    assert bad.returncode == 2 and "--tee" in bad.stderr.decode()


def test_run_killed_by_signal_exits_128_plus_n() -> None:
    assert _espdiag("run", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM


@pytest.mark.parametrize("whole_group", [False, True], ids=["kill-espdiag", "terminal-ctrl-c"])
def test_run_ctrl_c_reaches_child_and_exits_130(whole_group: bool) -> None:
    # "start" is printed inside the try: printed before it, a Ctrl-C sent as soon as "start" is read
    # could land before the handler is in place (the test was flaky that way)
    child = ("import sys, time\ntry:\n    print('start', flush=True)\n    time.sleep(30)\n"
             "except KeyboardInterrupt:\n    print('child interrupted', flush=True)\n    sys.exit(5)\n")
    with subprocess.Popen([PYTHON, "-m", "espdiag", "run", "--", PYTHON, "-c", child], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, start_new_session=True) as p:
        assert p.stdout is not None
        assert p.stdout.readline() == b"start\n"
        t0 = time.monotonic()
        if whole_group:  # what a terminal does: SIGINT to the whole foreground process group
            os.killpg(p.pid, signal.SIGINT)
        else:
            os.kill(p.pid, signal.SIGINT)
        rest = p.stdout.read()
        assert p.wait(timeout=30) == 130
    assert rest == b"child interrupted\n"
    assert time.monotonic() - t0 < 10


def test_run_killed_by_a_signal_says_its_name() -> None:
    proc = _espdiag("run", "--format", "json", "--", "sh", "-c", "kill -KILL $$")
    assert proc.returncode == 128 + signal.SIGKILL
    notes = json.loads(proc.stderr)["notes"]
    assert "The command was killed by SIGKILL (exit code 137)." in notes
    assert not [n for n in notes if "exited with code" in n]


# A grandchild that keeps the pipe open after the command has exited (issue 12, item 8). It
# writes its process id first so the test can end it, and dies by itself after 30 s anyway.
def _grandchild(pidfile: Path, loop: str) -> str:
    return f"setsid sh -c 'echo $$ > {pidfile}; {loop}' & sleep 0.3; echo done; exit 3"


def _end_grandchild(pidfile: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX: setsid, select on pipes")
def test_run_stops_reading_soon_after_the_command_exits(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    try:
        proc = _espdiag("run", "--format", "json", "--", "sh", "-c", _grandchild(pidfile, "sleep 30"))
    finally:
        _end_grandchild(pidfile)
    assert time.monotonic() - t0 < 15  # the grandchild holds the pipe for 30 s
    assert proc.returncode == 3 and proc.stdout == b"done\n"
    assert "The command exited with code 3." in json.loads(proc.stderr)["notes"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX: setsid, select on pipes")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_signal_after_the_command_exited_acts_at_once(tmp_path: Path, sig: int) -> None:
    # the grandchild keeps writing, so espdiag is still reading when the signal comes
    pidfile = tmp_path / "pid"
    loop = "i=0; while [ $i -lt 600 ]; do echo tick; sleep 0.05; i=$((i+1)); done"
    try:
        with subprocess.Popen([PYTHON, "-m", "espdiag", "run", "--", "sh", "-c", _grandchild(pidfile, loop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
            assert p.stdout is not None
            seen = b""
            while b"done" not in seen:
                seen += os.read(p.stdout.fileno(), 4096)
            time.sleep(0.2)
            t0 = time.monotonic()
            p.send_signal(sig)
            code = p.wait(timeout=30)
            elapsed = time.monotonic() - t0
    finally:
        _end_grandchild(pidfile)
    assert code == (130 if sig == signal.SIGINT else 128 + sig)
    assert elapsed < 2


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_run_with_a_full_stdout_keeps_the_upload_and_the_tee(tmp_path: Path) -> None:
    # issue 12, item 9: the upload must not be killed because stdout cannot be written
    tee = tmp_path / "upload.log"
    lines = "".join(f"Writing at 0x{i:08x}... ({i % 100} %)\n" for i in range(3000))
    script = tmp_path / "upload.py"
    script.write_text(f"import sys, time\nsys.stdout.write({lines!r})\nsys.stdout.flush()\ntime.sleep(0.3)\n"
                      "print('A fatal error occurred: Failed to connect to ESP32: No serial data received.')\n"
                      "sys.exit(2)\n")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([PYTHON, "-m", "espdiag", "run", "--format", "json", "--tee", str(tee), "--",
                               PYTHON, str(script)], stdout=full, stderr=subprocess.PIPE, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert tee.read_text() == lines + "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n"
    first, report = err.split("\n", 1)
    assert first.startswith("espdiag: standard output failed (No space left on device)")
    assert json.loads(report)["causes"][0]["id"] == "boot-mode"


@pytest.mark.skipif(sys.platform == "win32", reason="needs sh")
def test_run_with_stdout_closed_waits_for_the_command(tmp_path: Path) -> None:
    # issue 12, item 15: the command is waited for and its exit code kept; one line says why nothing showed
    flag = tmp_path / "finished"
    proc = subprocess.run(["sh", "-c", f"exec '{PYTHON}' -m espdiag run -- sh -c 'echo hi; sleep 0.3; "
                           f"touch {flag}; exit 4' >&-"], capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 4 and flag.exists(), err
    assert err.splitlines()[0] == "espdiag: standard output is closed, so the output was not shown"
    assert "Traceback" not in err


@pytest.mark.parametrize("fmt", ["github", "sarif"])
def test_run_locates_results_in_the_tee_file_or_nowhere(tmp_path: Path, fmt: str) -> None:
    # issue 13, item 9: the command line is not a file
    script = "echo 'A fatal error occurred: Failed to connect to ESP32: No serial data received.'; exit 2"
    plain = _espdiag("run", "--format", fmt, "--", "sh", "-c", script).stderr.decode()
    tee = tmp_path / "upload.log"
    teed = _espdiag("run", "--format", fmt, "--tee", str(tee), "--", "sh", "-c", script).stderr.decode()
    if fmt == "github":
        assert "file=" not in plain and plain.startswith("::error ")
        assert f"file={tee.as_posix()}".replace(":", "%3A").replace(",", "%2C") in teed or f"file={tee}" in teed
        assert ",line=1" in teed
    else:
        assert all("locations" not in r for r in json.loads(plain)["runs"][0]["results"])
        (result, *_) = json.loads(teed)["runs"][0]["results"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == tee.as_posix()


def test_run_command_in_process(capfd: pytest.CaptureFixture[str], rules: object) -> None:
    code = run_command(["sh", "-c", "echo 'A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy "
                        "or does not exist.'; exit 2"], rules, "text")  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    assert code == 2
    assert out.startswith("A fatal error occurred")
    assert "FAILURE" in err


# ---------------------------------------------------------------- espdiag --passthrough


@pytest.mark.esptool
@pytest.mark.parametrize(("version", "fault", "chip", "rc"), [
    ("4.8.1", "garbage", "esp32", 1),
    ("5.6.0", "none", "esp32", 0),
])
def test_passthrough_echoes_then_diagnoses(esptool_log: LogFactory, version: str, fault: str, chip: str,
                                           rc: int) -> None:
    data = esptool_log(version, fault, chip).output.encode()
    proc = _espdiag("--passthrough", "--format", "json", input=data)
    assert proc.returncode == rc, proc.stderr.decode()
    assert proc.stdout.startswith(data)
    report = json.loads(proc.stdout[len(data):])
    assert report["verdict"] == ("success" if rc == 0 else "failure")
    if rc:
        assert report["causes"][0]["id"] == EXPECTED[fault][0]


def test_passthrough_streams_before_end_of_input() -> None:
    with subprocess.Popen([PYTHON, "-m", "espdiag", "--passthrough", "--format", "text"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as p:
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(b"esptool.py v4.8.1\nConnecting...")
        p.stdin.flush()
        got = b""
        while len(got) < 31:
            got += os.read(p.stdout.fileno(), 100)
        assert got == b"esptool.py v4.8.1\nConnecting..."
        p.stdin.write(b"\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n")
        p.stdin.close()
        rest = p.stdout.read().decode()
        assert p.wait(timeout=30) == 1
    assert rest.startswith("\nA fatal error occurred")
    assert "The chip did not enter the download mode" in rest or "boot-mode" in rest


def test_passthrough_usage_and_binary_input() -> None:
    assert _espdiag("--passthrough", "some.log", input=b"").returncode == 2
    junk = bytes(range(256)) * 64
    proc = _espdiag("--passthrough", input=junk)
    assert proc.returncode == 2 and proc.stdout == junk  # all echoed, then the one-line input error
    assert "binary" in proc.stderr.decode()


def test_passthrough_of_a_log_cut_inside_an_attempt_fails_with_the_2_and_1_hint() -> None:
    log = b"esptool.py v4.8.1\nSerial port /dev/ttyUSB0\nConnecting......\n"  # the error went to stderr
    proc = _espdiag("--passthrough", "--format", "json", input=log)
    assert proc.returncode == 1 and proc.stdout.startswith(log)
    assert any("2>&1" in n for n in json.loads(proc.stdout[len(log):])["notes"])


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_passthrough_into_a_full_stdout_is_one_line_and_exit_2() -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([PYTHON, "-m", "espdiag", "--passthrough"], input=b"esptool.py v4.8.1\n" * 1000,
                              stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.decode().splitlines() == [
        "espdiag: standard output failed (No space left on device), so the output was not all shown"]


# ---------------------------------------------------------------- samples/generated


def _generated() -> list[object]:
    out = []
    for log in sorted(GENERATED.glob("*.log")):
        m = re.fullmatch(r"(?P<fault>[a-z0-9-]+?)-(?:(?P<chip>esp8266|esp32)-)?esptool(?P<ver>[\d.]+)", log.stem)
        assert m, f"unexpected name {log.name}"
        cmd = log.with_suffix(".cmd").read_text()
        chip = m["chip"] or re.search(r"--chip (\S+)", cmd)[1]  # type: ignore[index]
        reason = KNOWN_WRONG.get((major(m["ver"]), m["fault"]))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(log, m["fault"], chip, id=log.stem, marks=marks))
    return out


@pytest.mark.parametrize(("path", "fault", "chip"), _generated())
def test_generated_sample(path: Path, fault: str, chip: str) -> None:
    assert path.with_suffix(".cmd").read_text().startswith(("esptool.py ", "esptool "))
    text = path.read_text(encoding="utf-8")
    check_report(diagnose_text(text, path.name), fault, text)

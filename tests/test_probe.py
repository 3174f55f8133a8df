"""``espdiag probe`` against the virtual board (issue 15).

The board runs in this process and is served over RFC 2217 (DTR/RTS reach the emulated EN/GPIO0 through
the usual two-transistor circuit), a raw socket (no control lines) and a pty. Each state must be
diagnosed right from what the board printed and answered; the probe must not write flash and must put
DTR/RTS back. The RFC 2217 and socket runs go concurrently (they mostly wait) and are shared by the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import serial.rfc2217
from virtual_board import board as vboard
from virtual_board.board import VirtualBoard
from virtual_board.esptool_runner import _FastPollTime

from espdiag.main import main
from espdiag.probe import steps
from espdiag.probe.report import ProbeReport, diagnose_transcript
from espdiag.probe.steps import Probe, Timing

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "espdiag" / "schema.json").read_text())
FAST = Timing(listen=0.35, sync_tries=2, sync_timeout=0.06, command_timeout=0.5)
# what a read-only probe may send: SYNC, READ_REG, WRITE_REG (SPI registers), GET_SECURITY_INFO,
# SPI_ATTACH and the ESP8266's FLASH_BEGIN of size 0
ALLOWED = {vboard.SYNC, vboard.READ_REG, vboard.WRITE_REG, vboard.GET_SECURITY_INFO, vboard.SPI_ATTACH,
           vboard.FLASH_BEGIN}

# name -> (chip, board fault, probe-only state, protocol, --chip, expected top cause or None for "all fine")
STATES: dict[str, tuple[str, str, str | None, str, str, str | None]] = {
    "esp8266-healthy": ("esp8266", "none", None, "rfc2217", "auto", None),
    "esp32-healthy": ("esp32", "none", None, "rfc2217", "esp32", None),
    "gpio15-high": ("esp8266", "gpio15-high", None, "rfc2217", "auto", "strapping-gpio15"),
    "gpio2-low": ("esp8266", "none", "gpio2-low", "rfc2217", "esp8266", "strapping-gpio2"),
    "gpio0-stuck-low": ("esp8266", "none", "gpio0-stuck-low", "rfc2217", "auto", "strapping-gpio0-held"),
    "gpio12-high": ("esp32", "none", "gpio12-high", "rfc2217", "auto", "strapping-gpio12"),
    "auto-reset-no-gpio0-esp32": ("esp32", "normal-boot", None, "rfc2217", "auto", "boot-mode"),
    "auto-reset-no-gpio0-esp8266": ("esp8266", "normal-boot", None, "rfc2217", "auto", "boot-mode"),
    "auto-reset-missing": ("esp32", "none", "no-reset-lines", "rfc2217", "auto", "boot-mode"),
    "silent-chip": ("esp8266", "no-download-mode", None, "rfc2217", "auto", "usb-cable"),
    "wrong-crystal": ("esp8266", "none", "wrong-crystal", "rfc2217", "auto", "wrong-chip"),
    "garbage": ("esp32", "garbage", None, "rfc2217", "auto", "serial-noise"),
    "tx-path-down": ("esp32", "no-sync-reply", None, "rfc2217", "auto", "driver"),
    "flash-silent": ("esp32", "flash-id-ffffff", None, "rfc2217", "auto", "flash-config"),
    "wrong-chip": ("esp32", "wrong-chip", None, "rfc2217", "esp32", "wrong-chip"),
    "socket-gpio15": ("esp8266", "gpio15-high", None, "socket", "auto", "strapping-gpio15"),
}


class Run:
    def __init__(self, report: ProbeReport, board: VirtualBoard, seconds: float, flash_clean: bool) -> None:
        self.report = report
        self.board = board
        self.seconds = seconds
        self.flash_clean = flash_clean


@pytest.fixture(scope="module", autouse=True)
def fast_rfc2217() -> Iterator[None]:
    """pyserial's RFC 2217 client polls acknowledgements in 50 ms sleeps; poll faster (as esptool_runner does)."""
    old = serial.rfc2217.time
    serial.rfc2217.time = _FastPollTime()  # type: ignore[assignment]
    yield
    serial.rfc2217.time = old


def _run_state(name: str) -> Run:
    chip, fault, state, protocol, chip_option, _ = STATES[name]
    board = VirtualBoard(chip, fault, protocol=protocol, probe_fault=state, model_baud=True,
                         banner_on_connect=protocol == "socket")
    with board:
        t0 = time.monotonic()
        transcript = Probe(board.url, chip_option, FAST).run()
        seconds = time.monotonic() - t0
        flash_clean = bytes(board.flash) == b"\xff" * len(board.flash)
    return Run(diagnose_transcript(transcript), board, seconds, flash_clean)


@pytest.fixture(scope="module")
def runs(fast_rfc2217: None) -> dict[str, Run]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return dict(zip(STATES, pool.map(_run_state, STATES), strict=True))


@pytest.mark.parametrize("name", list(STATES))
def test_probe_diagnoses_the_board_state(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    report = run.report
    expected = STATES[name][-1]
    transcript = "\n".join(report.transcript)
    if expected is None:
        assert report.verdict == "success", transcript
        assert not [c for c in report.causes if c.confidence >= 0.5], transcript
        assert report.flash_id == vboard.DEFAULT_FLASH_ID
        assert "Manufacturer: ef" in transcript
    else:
        assert report.verdict == "failure", transcript
        assert report.causes and report.causes[0].id == expected, ([(c.id, c.confidence) for c in report.causes], transcript)
        # the evidence is the transcript's own lines
        for e in report.causes[0].evidence:
            assert report.transcript[e.line - 1] == e.text
    assert run.seconds < 15


def test_at_least_eight_distinct_states_are_told_apart() -> None:
    assert len({s[-1] for s in STATES.values()}) >= 9  # eight causes and the healthy board


@pytest.mark.parametrize("name", list(STATES))
def test_probe_is_read_only(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert set(run.board.commands) <= ALLOWED, run.board.commands
    assert run.flash_clean


@pytest.mark.parametrize("name", ["esp8266-healthy", "gpio15-high", "silent-chip", "auto-reset-no-gpio0-esp32"])
def test_lines_are_released_after_the_probe(runs: dict[str, Run], name: str) -> None:
    board = runs[name].board
    assert not board.rts, "EN left low: the chip would stay in reset"
    assert not board.dtr


def test_strapping_pins_are_spelled_out(runs: dict[str, Run]) -> None:
    notes = " ".join(runs["gpio15-high"].report.notes)
    assert "'boot mode:(7,6)' means the ROM read GPIO15=1, GPIO0=1, GPIO2=1" in notes
    notes = " ".join(runs["gpio12-high"].report.notes)
    assert "'boot:0x33' means the ROM read GPIO12 (MTDI)=1, GPIO0=1" in notes


def test_the_silent_chip_gets_tell_apart_checks(runs: dict[str, Run]) -> None:
    report = runs["silent-chip"].report
    ids = [c.check.id for c in report.checks]
    assert ids and "other-cable" in ids


def test_ctrl_c_releases_the_reset_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted while EN is held low (inside the download reset): the lines still go back."""
    from espdiag.probe.link import Link

    real = Link.set_rts
    held: list[bool] = []

    def set_rts(self: Link, state: bool) -> None:
        real(self, state)
        held.append(state)
        if held.count(True) == 2:  # the first is the normal-boot reset, the second the download reset
            time.sleep(0.2)  # long enough for the board to see EN low
            raise KeyboardInterrupt

    with VirtualBoard("esp8266", "none", model_baud=True) as board:
        monkeypatch.setattr(Link, "set_rts", set_rts)
        with pytest.raises(KeyboardInterrupt):
            Probe(board.url, "auto", FAST).run()
        assert board.boots  # the normal-boot reset happened
        deadline = time.monotonic() + 2
        while board.rts and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not board.rts, "EN left low after Ctrl-C"


# ---------------------------------------------------------------- pty: no control lines, busy, vanishing


@contextlib.contextmanager
def pty_board(tmp_path: Path, **kwargs: Any) -> Iterator[VirtualBoard]:
    link = str(tmp_path / "ttyUSB0")
    board = VirtualBoard(kwargs.pop("chip", "esp8266"), kwargs.pop("fault", "none"), protocol="pty", pty_link=link, **kwargs)
    with board:
        yield board


def test_pty_board_without_control_lines_is_diagnosed_from_what_it_prints(tmp_path: Path) -> None:
    with pty_board(tmp_path, fault="gpio15-high", reboot_every=0.1) as board:
        report = diagnose_transcript(Probe(board.url, "auto", FAST).run())
    text = "\n".join(report.transcript)
    assert "DTR/RTS cannot be set on this port" in text
    assert report.causes[0].id == "strapping-gpio15", text


def test_busy_pty_names_the_holder(tmp_path: Path) -> None:
    import fcntl

    with pty_board(tmp_path) as board:
        holder = os.open(board.url, os.O_RDWR | os.O_NOCTTY)
        try:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            report = diagnose_transcript(Probe(board.url, "auto", FAST).run())
        finally:
            os.close(holder)
    assert report.causes[0].id == "port-busy"
    assert any(f"held by process {os.getpid()}" in n for n in report.notes), report.notes


def test_vanishing_pty(tmp_path: Path) -> None:
    with pty_board(tmp_path, vanish_after=0.15) as board:
        url = board.url
        report = diagnose_transcript(Probe(url, "auto", FAST).run())
    text = "\n".join(report.transcript)
    assert f"{url} disappeared while the probe was running" in text
    assert report.causes[0].id == "usb-cable", text


# ---------------------------------------------------------------- the command line


def test_missing_port_is_port_missing_exit_1_in_seconds() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "espdiag", "probe", "--port", "/dev/ttyNOPE", "--format", "json", "-q"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert time.monotonic() - t0 < 10
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert data["causes"][0]["id"] == "port-missing"
    assert data["transcript"][-1].startswith("[Errno 2] could not open port /dev/ttyNOPE")


def test_refused_network_port_is_port_missing(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["probe", "--port", f"socket://127.0.0.1:{port}", "-q", "--format", "text"]) == 1
    assert "port-missing" in capsys.readouterr().out


def test_cli_healthy_board_exit_0_with_the_transcript(capsys: pytest.CaptureFixture[str]) -> None:
    with VirtualBoard("esp32", "none", model_baud=True) as board:
        code = main(["probe", "--port", board.url, "--chip", "esp32", "--listen", "0.25", "--format", "markdown"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert "nothing wrong found" in out and "Probe transcript" in out and "Chip is ESP32" in out
    assert "reset into normal boot" in err  # the steps are echoed as they happen


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--port", "foo://x", "-q"]) == 2
    assert "protocol 'foo' not known" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["probe", "--chip", "esp9000"])
    assert e.value.code == 2


def test_no_pyserial_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "serial", None)
    assert main(["probe", "--port", "/dev/ttyNOPE", "-q"]) == 2
    assert "pip install 'espdiag[probe]'" in capsys.readouterr().err


def test_threads_left_behind_are_daemons() -> None:
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("vboard"))


# ---------------------------------------------------------------- pieces


def test_slip_reader_joins_frames_split_over_reads() -> None:
    from espdiag.probe.rom import SlipReader, slip

    wire = b"noise" + slip(b"\x01\x08\xc0\xdb") + slip(b"\x01\x0a")
    reader = SlipReader()
    got: list[bytes] = []
    stray = b""
    for i in range(len(wire)):  # one byte per read: the worst split
        frames, junk = reader.feed(wire[i : i + 1])
        got += frames
        stray += junk
    assert got == [b"\x01\x08\xc0\xdb", b"\x01\x0a"]
    assert stray == b"noise"


def test_board_text_is_made_safe_and_garbage_is_recognised() -> None:
    lines, garbage = steps.printable(b"ets Jan  8 2013,rst cause:2, boot mode:(7,6)\r\n\x1b[31mred\x1b[0m\r\n")
    assert not garbage
    assert lines == ["ets Jan  8 2013,rst cause:2, boot mode:(7,6)", "[31mred[0m"]  # no escape codes reach a terminal
    assert steps.printable(bytes([0x00, 0x80, 0xF0, 0xF8, 0xFE] * 10)) == ([], True)


# ---------------------------------------------------------------- espdiag run --probe


FAKE_UPLOAD = """\
import sys
print("esptool.py v4.8.1")
print("Serial port " + sys.argv[1])
print("Connecting........_____....")
print("A fatal error occurred: Failed to connect to ESP8266: No serial data received.")
sys.exit(2)
"""


def test_run_probe_asks_the_board_after_an_ambiguous_failure(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "Timing", lambda: FAST)
    with VirtualBoard("esp8266", "gpio15-high", model_baud=True) as board:
        url = board.url
        code = main(["run", "--probe", "--format", "text", "--", sys.executable, "-c", FAKE_UPLOAD, url])
    out, err = capsys.readouterr()
    assert code == 2  # the command's own exit code
    assert "No serial data received" in out
    upload_report, _, probe_part = err.partition(f"probing {url}")
    assert "boot-mode" in upload_report and "cheapest first" in upload_report
    assert "1. strapping-gpio15" in probe_part and "boot mode:(7,6)" in probe_part


def test_run_probe_leaves_a_clear_diagnosis_alone(capsys: pytest.CaptureFixture[str]) -> None:
    script = FAKE_UPLOAD.replace('print("Connecting', 'print("ets Jan  8 2013,rst cause:2, boot mode:(7,6)")\nprint("Connecting')
    code = main(["run", "--probe", "--format", "text", "--", sys.executable, "-c", script, "/dev/ttyNOPE"])
    err = capsys.readouterr().err
    assert code == 2 and "strapping-gpio15" in err and "probing" not in err


# ---------------------------------------------------------------- port failures the test machine cannot stage


def test_permission_denied_gets_the_os_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root no device node refuses us, so pyserial's own error is raised in its place."""
    from espdiag.probe import link

    def refuse(url: str, baud: int = 115200) -> link.Link:
        raise serial.SerialException(f"[Errno 13] could not open port {url}: [Errno 13] Permission denied: '{url}'")

    monkeypatch.setattr(steps, "open_link", refuse)
    report = diagnose_transcript(Probe("/dev/ttyUSB0", "auto", FAST).run())
    assert report.causes[0].id == "port-permission"
    assert any("dialout" in fix for fix in report.causes[0].fixes)


def test_a_port_that_takes_no_writes_is_a_write_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from espdiag.probe.link import Link

    def write(self: Link, data: bytes) -> None:
        raise serial.SerialTimeoutException("Write timeout")

    monkeypatch.setattr(Link, "write", write)
    with pty_board(tmp_path) as board:
        report = diagnose_transcript(Probe(board.url, "auto", FAST).run())
    assert report.causes[0].id == "port-write-failure", report.transcript


def test_a_readable_banner_followed_by_a_sketch_at_another_baud_is_kept() -> None:
    noise = bytes([0x00, 0x80, 0xF0, 0xF8, 0xFE, 0x8C, 0x70, 0x60] * 40)
    lines, garbage = steps.printable(b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(7,6)\r\n\r\n" + noise)
    assert lines == ["ets Jan  8 2013,rst cause:2, boot mode:(7,6)"] and not garbage


def test_banner_survives_pyserials_slow_rfc2217_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    """With pyserial's own 50 ms acknowledgement polling a baud change is slow: it must come before the reset."""
    monkeypatch.setattr(serial.rfc2217, "time", time)
    with VirtualBoard("esp8266", "none", probe_fault="gpio2-low", model_baud=True) as board:
        transcript = Probe(board.url, "esp8266", Timing(listen=0.4, sync_tries=1, sync_timeout=0.06)).run()
    report = diagnose_transcript(transcript)
    assert report.causes[0].id == "strapping-gpio2", report.transcript


def test_probe_help_fits_80_columns() -> None:
    for columns in ("80", "200"):
        proc = subprocess.run([sys.executable, "-m", "espdiag", "probe", "--help"], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": columns, "PYTHONPATH": str(ROOT)}, check=False)
        assert proc.returncode == 0
        assert not [line for line in proc.stdout.splitlines() if len(line) > 80]

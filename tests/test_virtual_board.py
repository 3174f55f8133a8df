"""Run the real esptool (several pinned versions) against the virtual board.

Every named fault is run for every esptool version and chip it applies to, and
esptool's own exit code and messages are checked.  The logs come from the
session-scoped ``esptool_log`` fixture (``virtual_board/fixtures.py``, registered
in ``conftest.py``), so further tests (e.g. ``test_esptool_diagnosis.py``) reuse
them without re-running esptool:

    def test_diagnosis(esptool_log):
        log = esptool_log("4.8.1", "normal-boot", "esp32")
        ...

esptool versions live in ``.esptool-versions/<version>``; missing ones are
pip-installed once per session (set ``ESPDIAG_NO_ESPTOOL_INSTALL=1`` to only
use what is there); a version that is unavailable makes its tests skip.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from virtual_board.board import VirtualBoard, slip_encode
from virtual_board.faults import Fault, HostFault
from virtual_board.fixtures import LogFactory
from virtual_board.harness import MISSING_PORT, PINNED_VERSIONS, major, run_write_flash

CHIPS = ("esp8266", "esp32")
CHIP_NAME = {"esp8266": "ESP8266", "esp32": "ESP32"}


# ---------------------------------------------------------------- expectations


def _fatal_connect(chip: str, cause: str) -> list[str]:
    return [f"Failed to connect to {CHIP_NAME[chip]}: {cause}"]


def _normal_boot(v: int, chip: str) -> tuple[bool, list[str]]:
    if chip == "esp32":
        return False, _fatal_connect(chip, "Wrong boot mode detected (0x13)!")
    return False, _fatal_connect(chip, "No serial data received.")  # ESP8266 has no boot-log check


def _stop_mid_write(v: int, chip: str) -> tuple[bool, list[str]]:
    final = {3: "StopIteration", 4: "The chip stopped responding."}.get(v, "No more data to read from the serial port.")
    return False, ["Writing at 0x", final]


def _wrong_chip(v: int, chip: str) -> tuple[bool, list[str]]:
    actual = "ESP32-S3" if chip == "esp32" else "ESP32"
    if v >= 5:
        return False, [f"This chip is {actual}, not {CHIP_NAME[chip]}. Wrong chip argument?"]
    return False, [f"This chip is {actual} not {CHIP_NAME[chip]}. Wrong --chip argument?"]


def _flash_id_ffffff(v: int, chip: str) -> tuple[bool, list[str]]:
    final = {
        3: "MD5 of file does not match data in flash!",
        # esptool 4.8.1 itself crashes when the flash size cannot be detected
        4: "TypeError: '>' not supported between instances of 'int' and 'NoneType'",
    }.get(v, "Write failed, the written flash region is empty.")
    return False, ["Failed to communicate with the flash chip", final]


def _port_missing(v: int, chip: str) -> tuple[bool, list[str]]:
    if v < 4:
        return False, [f"could not open port {MISSING_PORT}", "No such file or directory"]
    return False, [f"Could not open {MISSING_PORT}, the port is busy or doesn't exist.", "Errno 2"]


def _port_permission(v: int, chip: str) -> tuple[bool, list[str]]:
    if v < 4:
        return False, ["Permission denied"]
    return False, ["Permission denied", "Hint: Try to add user into dialout or uucp group."]


# faults where esptool gives up while connecting, with the same words in every version
CONNECT_FAILURES = {
    "no-download-mode": "No serial data received.",
    "gpio15-high": "No serial data received.",
    "no-sync-reply": "Download mode successfully detected, but getting no sync reply",
    "garbage": "Invalid head of packet (0x",
}
# faults whose words depend on the esptool major version or the chip
EXPECTATIONS: dict[str, Callable[[int, str], tuple[bool, list[str]]]] = {
    "normal-boot": _normal_boot,
    "stop-mid-write": _stop_mid_write,
    "wrong-chip": _wrong_chip,
    "flash-id-ffffff": _flash_id_ffffff,
    "port-missing": _port_missing,
    "port-permission": _port_permission,
}


def expected_messages(version: str, fault: str, chip: str) -> tuple[bool, list[str]]:
    """(success?, substrings esptool must print) for one run of the write."""
    v = major(version)
    if fault == "none":
        return True, ["Hash of data verified."]
    if fault == "port-busy":
        return False, ["the port is busy or doesn't exist", "Could not exclusively lock port"]
    if fault in CONNECT_FAILURES:
        return False, _fatal_connect(chip, CONNECT_FAILURES[fault])
    if fault in EXPECTATIONS:
        return EXPECTATIONS[fault](v, chip)
    raise AssertionError(f"no expectation for {fault}")


BOARD_CASES = [
    pytest.param(v, f.value, c, id=f"{f.value}-{c}-esptool{v}")
    for f in Fault
    for c in CHIPS
    if f.applies_to(c)
    for v in PINNED_VERSIONS
]
HOST_CASES = [pytest.param(v, h.value, "esp32", id=f"{h.value}-esptool{v}") for h in HostFault for v in PINNED_VERSIONS]


# ---------------------------------------------------------------- esptool runs


@pytest.mark.esptool
@pytest.mark.parametrize(("version", "fault", "chip"), BOARD_CASES + HOST_CASES)
def test_fault_log(esptool_log: LogFactory, version: str, fault: str, chip: str) -> None:
    log = esptool_log(version, fault, chip)
    ok, messages = expected_messages(version, fault, chip)
    assert not log.timed_out, log.output
    if ok:
        assert log.returncode == 0, log.output
    else:
        assert log.returncode != 0, log.output
        assert "Hash of data verified" not in log.output
    for m in messages:
        assert m in log.output, f"{m!r} missing from esptool {version} output:\n{log.output}"
    banner = "esptool v" if major(version) >= 5 else "esptool.py v"
    assert f"{banner}{version}" in log.output


@pytest.mark.esptool
@pytest.mark.parametrize("no_stub", [True], ids=["no-stub"])
@pytest.mark.parametrize("version", PINNED_VERSIONS)
@pytest.mark.parametrize("chip", CHIPS)
def test_clean_write_with_rom_loader_only(esptool_log: LogFactory, version: str, chip: str, no_stub: bool) -> None:
    """--no-stub: the ROM protocol (4 status bytes on ESP32, deflate + MD5 in ESP32 ROM)."""
    log = esptool_log(version, "none", chip, no_stub=no_stub)
    assert log.returncode == 0, log.output
    assert "Uploading stub" not in log.output and "Uploading stub flasher" not in log.output
    if chip == "esp32":
        assert "Hash of data verified." in log.output
    else:  # the ESP8266 ROM has no MD5 command, esptool skips verification
        assert "Hash of data verified." not in log.output
        assert "Wrote 98304 bytes" in log.output


@pytest.mark.esptool
@pytest.mark.parametrize("version", PINNED_VERSIONS)
def test_clean_write_over_raw_socket(esptool_versions: dict[str, str | None], version: str) -> None:
    reason = esptool_versions[version]
    if reason:
        pytest.skip(reason)
    log = run_write_flash(version, "none", "esp32", protocol="socket")
    assert log.returncode == 0, log.output
    assert "socket://127.0.0.1:" in log.esptool_command


@pytest.mark.esptool
@pytest.mark.parametrize("chip", CHIPS)
@pytest.mark.parametrize("version", PINNED_VERSIONS[-1:])
def test_board_sees_reset_sequence(esptool_log: LogFactory, chip: str, version: str) -> None:
    """The DTR/RTS sequence drives EN/GPIO0: power-on boots the app, esptool's reset downloads."""
    log = esptool_log(version, "none", chip)
    assert log.board_boots[:2] == ["app", "download"]
    assert "Chip type:" in log.output or "Chip is" in log.output


# ---------------------------------------------------------------- board unit tests (no esptool)


def _read_reg_packet(addr: int) -> bytes:
    return slip_encode(struct.pack("<BBHI", 0, 0x0A, 4, 0) + struct.pack("<I", addr))


def test_board_answers_read_reg_over_socket() -> None:
    with (
        VirtualBoard("esp32", protocol="socket") as board,
        socket.create_connection(("127.0.0.1", board.port), timeout=2) as s,
    ):
        s.sendall(_read_reg_packet(0x40001000))
        reply = b""
        while reply.count(b"\xc0") < 2:
            reply += s.recv(100)
    body = reply.strip(b"\xc0")
    direction, op, size, value = struct.unpack("<BBHI", body[:8])
    assert (direction, op, size, value) == (1, 0x0A, 4, 0x00F01D83)  # ESP32 ROM: 4 status bytes


def test_unknown_fault_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        VirtualBoard("esp32", "smoke")
    with pytest.raises(ValueError, match="does not apply"):
        VirtualBoard("esp32", "gpio15-high")

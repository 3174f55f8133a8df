"""The read-only part of the Espressif ROM serial protocol (SLIP-framed commands), as esptool speaks it.

Only SYNC, READ_REG, GET_SECURITY_INFO and what reading the SPI flash's JEDEC id needs (SPI_ATTACH or,
on the ESP8266 ROM, FLASH_BEGIN with size 0, plus WRITE_REG to the SPI controller's registers) are
implemented; nothing here can write or erase flash or eFuses.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from espdiag.probe.link import Link

SYNC, READ_REG, WRITE_REG, FLASH_BEGIN, SPI_ATTACH, GET_SECURITY_INFO = 0x08, 0x0A, 0x09, 0x02, 0x0D, 0x14
SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32
CHIP_DETECT_MAGIC_REG = 0x40001000
FLASH_WRITE_SIZE = 0x400

# CHIP_DETECT_MAGIC_REG values and GET_SECURITY_INFO chip ids (from esptool's target definitions)
MAGIC = {
    0xFFF0C101: "ESP8266", 0x00F01D83: "ESP32", 0x000007C6: "ESP32-S2", 0x00000009: "ESP32-S3",
    0x6921506F: "ESP32-C3", 0x1B31506F: "ESP32-C3", 0x4881606F: "ESP32-C3", 0x4361606F: "ESP32-C3",
    0x6F51306F: "ESP32-C2", 0x7C41A06F: "ESP32-C2", 0x2CE0806F: "ESP32-C6", 0xD7B73E80: "ESP32-H2",
}
CHIP_IDS = {2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 12: "ESP32-C2", 13: "ESP32-C6", 16: "ESP32-H2",
            18: "ESP32-P4", 20: "ESP32-C61", 23: "ESP32-C5"}


@dataclass(frozen=True)
class SpiLayout:
    """Where a chip's SPI0 controller registers are (esptool's SPI_REG_BASE and offsets)."""

    base: int
    usr: int
    usr1: int
    usr2: int
    w0: int
    mosi_dlen: int | None
    miso_dlen: int | None


_NEW_LAYOUT = {"usr": 0x18, "usr1": 0x1C, "usr2": 0x20, "w0": 0x58, "mosi_dlen": 0x24, "miso_dlen": 0x28}
SPI = {
    "ESP8266": SpiLayout(0x60000200, 0x1C, 0x20, 0x24, 0x40, None, None),
    "ESP32": SpiLayout(0x3FF42000, 0x1C, 0x20, 0x24, 0x80, 0x28, 0x2C),
    "ESP32-S2": SpiLayout(0x3F402000, **_NEW_LAYOUT),
    **{c: SpiLayout(0x60002000, **_NEW_LAYOUT) for c in ("ESP32-S3", "ESP32-C3", "ESP32-C2", "ESP32-C6", "ESP32-H2")},
}
FLASH_SIZES = {0x12: "256KB", 0x13: "512KB", 0x14: "1MB", 0x15: "2MB", 0x16: "4MB", 0x17: "8MB", 0x18: "16MB",
               0x19: "32MB", 0x1A: "64MB", 0x20: "64MB", 0x21: "128MB"}


class RomError(Exception):
    """The ROM answered a command with an error status."""


def slip(payload: bytes) -> bytes:
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class SlipReader:
    """Incremental SLIP decoder: frames may arrive split over several reads."""

    def __init__(self) -> None:
        self._frame: bytearray | None = None
        self._escape = False

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        """Complete frames in ``data`` (with what came before), and the bytes outside any frame."""
        out: list[bytes] = []
        stray = bytearray()
        for b in data:
            frame = self._frame
            if frame is None:
                if b == 0xC0:
                    self._frame = bytearray()
                else:
                    stray.append(b)
            elif self._escape:
                self._escape = False
                frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
            elif b == 0xDB:
                self._escape = True
            elif b == 0xC0:
                if frame:
                    out.append(bytes(frame))
                    self._frame = None
                # c0 c0: an empty frame; the second c0 starts the next one
            elif len(frame) < 0x10000:  # no reply the probe asks for is longer: a runaway frame stays bounded
                frame.append(b)
        return out, bytes(stray)


class Rom:
    """A conversation with the ROM loader over ``link``; every command waits at most ``timeout`` seconds."""

    def __init__(self, link: Link, timeout: float = 0.1) -> None:
        self.link = link
        self.timeout = timeout
        self.status_len = 4  # 2 on the ESP8266 ROM; learnt from the SYNC reply
        self.received = bytearray()  # every byte that came back, for the transcript
        self.stray = bytearray()  # bytes outside SLIP frames: boot text or noise

    def command(self, op: int, data: bytes = b"", check: int = 0, timeout: float | None = None) -> tuple[int, bytes] | None:
        """Send one command; return (value, data) of its reply, or None if none came in time."""
        self.link.write(slip(struct.pack("<BBHI", 0, op, len(data), check) + data))
        deadline = time.monotonic() + (timeout or self.timeout)
        reader = SlipReader()
        while time.monotonic() < deadline:
            chunk = self.link.read_for(min(0.05, max(0.0, deadline - time.monotonic())))
            if not chunk:
                continue
            if len(self.received) < 4096:
                self.received += chunk[: 4096 - len(self.received)]
            found, stray = reader.feed(chunk)
            if len(self.stray) < 4096:
                self.stray += stray[: 4096 - len(self.stray)]
            for frame in found:
                if len(frame) >= 8 and frame[0] == 1 and frame[1] == op:
                    _, _, size, value = struct.unpack("<BBHI", frame[:8])
                    return value, frame[8 : 8 + size]
        return None

    def _checked(self, op: int, data: bytes = b"", timeout: float | None = None) -> tuple[int, bytes]:
        reply = self.command(op, data, timeout=timeout)
        if reply is None:
            raise TimeoutError(f"no reply to command 0x{op:02x}")
        value, body = reply
        status = body[-self.status_len :] if len(body) >= self.status_len else body
        if status and status[0] != 0:
            error = status[1] if len(status) > 1 else 0
            raise RomError(f"command 0x{op:02x} failed with status {status[0]}, error 0x{error:02x}")
        return value, body[: -self.status_len] if len(body) >= self.status_len else b""

    def sync(self) -> bool:
        reply = self.command(SYNC, SYNC_DATA)
        if reply is None:
            return False
        self.status_len = 2 if len(reply[1]) == 2 else 4
        self.link.read_for(0.05)  # the ROM answers a SYNC several times: let the echoes pass
        self.link.drain()
        return True

    def read_reg(self, addr: int) -> int:
        return self._checked(READ_REG, struct.pack("<I", addr))[0]

    def write_reg(self, addr: int, value: int) -> None:
        self._checked(WRITE_REG, struct.pack("<IIII", addr, value, 0xFFFFFFFF, 0))

    def chip(self) -> str | None:
        """The chip family, from GET_SECURITY_INFO's chip id (newer ROMs) or the magic register."""
        try:
            _, info = self._checked(GET_SECURITY_INFO)
            if len(info) >= 16:
                chip_id = struct.unpack("<I", info[12:16])[0]
                if chip_id in CHIP_IDS:
                    return CHIP_IDS[chip_id]
        except (RomError, TimeoutError):
            pass  # ESP8266, ESP32 and early S2 ROMs do not know the command
        return MAGIC.get(self.read_reg(CHIP_DETECT_MAGIC_REG))

    def flash_id(self, chip: str) -> int:
        """The SPI flash's JEDEC id (RDID, 0x9F), read through the SPI controller's registers."""
        spi = SPI[chip]
        if chip == "ESP8266":
            # the ESP8266 ROM attaches the flash on FLASH_BEGIN; size 0 erases nothing (esptool's flash_id does the same)
            self._checked(FLASH_BEGIN, struct.pack("<IIII", 0, 0, FLASH_WRITE_SIZE, 0), timeout=1.0)
        else:
            self._checked(SPI_ATTACH, struct.pack("<IBBBB", 0, 0, 0, 0, 0), timeout=1.0)
        base = spi.base
        old_usr, old_usr2 = self.read_reg(base + spi.usr), self.read_reg(base + spi.usr2)
        if spi.miso_dlen is not None:
            self.write_reg(base + spi.miso_dlen, 24 - 1)
        else:
            self.write_reg(base + spi.usr1, (24 - 1) << 8)  # MISO bit length at bit 8 on the ESP8266
        self.write_reg(base + spi.usr, (1 << 31) | (1 << 28))  # USR_COMMAND | USR_MISO
        self.write_reg(base + spi.usr2, (7 << 28) | 0x9F)  # an 8-bit command: RDID
        self.write_reg(base + spi.w0, 0)
        self.write_reg(base, 1 << 18)  # SPI_CMD_USR: run it
        for _ in range(10):
            if not self.read_reg(base) & (1 << 18):
                break
        value = self.read_reg(base + spi.w0) & 0xFFFFFF
        self.write_reg(base + spi.usr, old_usr)
        self.write_reg(base + spi.usr2, old_usr2)
        return value

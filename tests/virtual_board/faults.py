"""Named fault behaviours of the virtual ESP board.

Board faults change how the emulated chip behaves; host faults describe a
broken serial port on the PC side (there is no board at all for those).
"""

from __future__ import annotations

import enum


class Fault(str, enum.Enum):
    """A named board behaviour.  The value is the name used in file names and CLIs."""

    NONE = "none"
    """Clean run: the chip enters download mode, the write succeeds and the hash verifies."""

    NO_DOWNLOAD_MODE = "no-download-mode"
    """Nothing answers at all: no boot banner, no SLIP replies (dead chip / RX-TX not wired)."""

    NORMAL_BOOT = "normal-boot"
    """GPIO0 is never low at reset: the chip prints the normal-boot ROM banner and runs the app."""

    GPIO15_HIGH = "gpio15-high"
    """ESP8266 strapped into SDIO boot by GPIO15 pulled high: banner 'boot mode:(7,6)', no answer."""

    NO_SYNC_REPLY = "no-sync-reply"
    """ESP32 prints 'waiting for download' but never answers (host TX -> chip RX path broken)."""

    GARBAGE = "garbage"
    """Replies are line noise (wrong baud rate / bad cable): 'Invalid head of packet'."""

    STOP_MID_WRITE = "stop-mid-write"
    """The chip answers normally, then goes silent for good after a few flash data blocks."""

    WRONG_CHIP = "wrong-chip"
    """The chip is a different model than the one asked for with --chip (ESP32-S3 / ESP32)."""

    FLASH_ID_FFFFFF = "flash-id-ffffff"
    """The SPI flash does not answer: JEDEC id reads 0xffffff and writes do not stick."""

    @classmethod
    def parse(cls, name: str | Fault) -> Fault:
        if isinstance(name, Fault):
            return name
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(f.value for f in cls)}") from None

    def applies_to(self, chip: str) -> bool:
        """Whether this fault makes sense for ``chip`` ("esp8266" or "esp32")."""
        if self is Fault.GPIO15_HIGH:
            return chip == "esp8266"
        if self is Fault.NO_SYNC_REPLY:
            return chip == "esp32"
        return True


class ProbeFault(str, enum.Enum):
    """Board states for ``espdiag probe`` tests only (esptool runs do not iterate over these)."""

    GPIO2_LOW = "gpio2-low"
    """ESP8266 GPIO2 (D4) pulled low: 'boot mode:(2,6)' after a plain reset, '(0,6)' and silence in download mode."""

    GPIO0_STUCK_LOW = "gpio0-stuck-low"
    """GPIO0 held low by a peripheral: every reset, even a plain one, starts the serial bootloader."""

    GPIO12_HIGH = "gpio12-high"
    """ESP32 GPIO12 (MTDI) high: 1.8 V flash, 'boot:0x33' + 'flash read err'; in download mode the flash id reads 0xffffff."""

    WRONG_CRYSTAL = "wrong-crystal"
    """The crystal is not what the ROM expects: its boot text comes at an odd baud (garbage at 74880 and 115200);
    SLIP still works because the ROM measures the host's baud on SYNC."""

    NO_RESET_LINES = "no-reset-lines"
    """DTR/RTS are not wired to EN/GPIO0 (no auto-reset circuit): resets do nothing, the program keeps printing."""

    def applies_to(self, chip: str) -> bool:
        if self is ProbeFault.GPIO2_LOW:
            return chip == "esp8266"
        if self is ProbeFault.GPIO12_HIGH:
            return chip == "esp32"
        return True


class HostFault(str, enum.Enum):
    """Faults on the PC side of the cable; the harness runs esptool without any board."""

    PORT_MISSING = "port-missing"
    """The serial device path does not exist (board unplugged / wrong --port)."""

    PORT_BUSY = "port-busy"
    """Another process holds the port open exclusively (serial monitor still running)."""

    PORT_PERMISSION = "port-permission"
    """The user may not open the device node (not in the dialout group)."""


BOARD_FAULTS: tuple[Fault, ...] = tuple(Fault)
HOST_FAULTS: tuple[HostFault, ...] = tuple(HostFault)
ALL_FAULT_NAMES: tuple[str, ...] = tuple(f.value for f in Fault) + tuple(h.value for h in HostFault)

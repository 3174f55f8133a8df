"""The probe sequence. It writes a transcript that is an upload log, so the usual grammar and rules read it.

Board output goes into the transcript as it came (decoded at the ROM's baud). The probe's own findings are
written in esptool's words where esptool has words for the same observation ("No serial data received.",
"Invalid head of packet (0x..)", "Download mode successfully detected, but getting no sync reply", "Chip is
...", "Manufacturer: ..") and otherwise as ``espdiag probe: ...`` lines, which some rules quote.

Phases are diagnosed apart (see report.py): what a *normal* reset prints is boot output, what a *download*
reset and the SYNC give is an upload attempt. A banner saying "booted from flash" is right after the first
and the finding after the second.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from espdiag.probe.link import DEFAULT_RESET_DELAY, Link, holders, open_link, serial_module
from espdiag.probe.rom import FLASH_SIZES, Rom, RomError

PREFIX = "espdiag probe: "
ROM_BAUD = {"esp8266": 74880, "esp32": 115200}  # ESP8266 ROM with its 26 MHz crystal; ESP32 ROMs at 40 MHz
SYNC_BAUDS = (115200, 57600)
# board lines kept per listen: a running program prints without end, and the scanner keeps only the first
# 24 unknown lines of an attempt, so the probe's own summary line at the end must stay within them
MAX_BOARD_LINES = {"normal-boot": 8, "download": 5}
MAX_LINE = 200
NATIVE_USB = {(0x303A, 0x1001)}  # Espressif USB-JTAG-serial (ESP32-C3/S3/C6/H2 native USB)
_BANNER = re.compile(r"ets |rst:0x|boot mode:|waiting for download|boot:0x")
_DOWNLOAD_BANNER = re.compile(r"boot mode:\(1,|DOWNLOAD|waiting for download")
_ESP32_NORMAL = re.compile(r"boot:(0x[0-9a-f]+) \(SPI_FAST_FLASH_BOOT\)", re.I)


@dataclass(frozen=True)
class Timing:
    """How long each step may take. The defaults suit real boards; tests shorten them."""

    listen: float = 0.8  # after a reset, for the ROM's banner
    sync_tries: int = 5  # SYNC packets per baud per reset sequence
    sync_timeout: float = 0.1
    command_timeout: float = 0.5


@dataclass
class Phase:
    name: str  # port | normal-boot | download
    lines: list[str] = field(default_factory=list)


@dataclass
class Transcript:
    url: str
    chip_option: str
    phases: list[Phase] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chip: str | None = None  # as the ROM reported it
    flash_id: int | None = None
    answered: bool = False

    def lines(self) -> Iterator[str]:
        for p in self.phases:
            yield from p.lines


Say = Callable[[str], None]


class _Recorder:
    def __init__(self, transcript: Transcript, say: Say | None) -> None:
        self.t = transcript
        self.say = say

    def phase(self, name: str) -> None:
        self.t.phases.append(Phase(name))

    def line(self, text: str) -> None:
        self.t.phases[-1].lines.append(text)
        if self.say is not None:
            self.say(text)

    def note(self, text: str) -> None:
        self.line(PREFIX + text)


def printable(data: bytes, max_lines: int = 8) -> tuple[list[str], bool]:
    """Board bytes as text lines, and whether nothing at all was readable (a baud or crystal mismatch).

    Judged line by line: an ESP8266 prints its ROM banner at 74880 baud and then a sketch's output at
    115200, so one listen often holds a readable banner followed by garbage. Non-printable characters
    are dropped from the kept lines, so no escape sequence from the board reaches a terminal.
    """
    if not data:
        return [], False
    lines = []
    for raw in re.split(r"\r\n|\r|\n", data.decode("latin-1")):
        good = sum(1 for ch in raw if " " <= ch <= "~" or ch == "\t")
        if len(raw) < 2 or good < 0.8 * len(raw):
            continue
        clean = "".join(ch for ch in raw if " " <= ch <= "~" or ch == "\t").strip()
        if clean:
            lines.append(clean[:MAX_LINE])
    return lines[:max_lines], not lines


def _hex(data: bytes, n: int = 12) -> str:
    return " ".join(f"{b:02x}" for b in data[:n]) + (" ..." if len(data) > n else "")


def chip_display(chip_option: str) -> str:
    """esptool's --chip spelling to the ROM's: esp32s3 -> ESP32-S3."""
    if chip_option in ("esp8266", "esp32"):
        return chip_option.upper()
    return "ESP32-" + chip_option.removeprefix("esp32").upper()


def _family(chip_option: str) -> str | None:
    if chip_option == "esp8266":
        return "esp8266"
    return None if chip_option == "auto" else "esp32"


class Probe:
    def __init__(self, url: str, chip_option: str = "auto", timing: Timing | None = None, say: Say | None = None) -> None:
        self.url = url
        self.chip_option = chip_option
        self.timing = timing or Timing()
        self.t = Transcript(url, chip_option)
        self.rec = _Recorder(self.t, say)
        self.rom_baud: int | None = ROM_BAUD.get(_family(chip_option) or "")
        self.saw_download_banner = False
        self.saw_normal_banner: str | None = None
        self.any_bytes = False
        self.unreadable: set[int] = set()
        self.app_lines = 0  # readable lines after a reset that hold no ROM banner: a running program
        self.banner_seen = False

    # ------------------------------------------------------------------ the sequence

    def run(self) -> Transcript:
        serial = serial_module()
        self.rec.phase("port")
        self.rec.note(f"probing {self.url} (chip {self.chip_option}); read-only: no flash or eFuse writes")
        self.rec.line(f"Serial port {self.url}")
        try:
            link = open_link(self.url)
        except serial.SerialException as e:
            self._open_failed(str(e))
            return self.t
        try:
            self._run_open(link, serial)
        except (serial.SerialException, OSError) as e:
            # the port went away under us (unplugged, native USB re-enumerating, a flaky cable)
            self.rec.line(str(e) or type(e).__name__)
            path = self.url if "://" not in self.url else ""
            if path and not os.path.exists(path):
                self.rec.note(f"{path} disappeared while the probe was running")
        finally:
            link.restore()
        return self.t

    def _open_failed(self, message: str) -> None:
        self.rec.line(message)
        if "://" not in self.url and os.path.exists(self.url):
            held = holders(self.url)
            if held:
                self.rec.note(f"{self.url} is open in process {', '.join(held)}")
                self.t.notes.append(f"{self.url} is held by process {', '.join(held)}: close that program.")

    def _run_open(self, link: Link, serial: object) -> None:
        try:
            link.write(b"\r\n")  # the host can write: a wrong Bluetooth port or a dead driver fails here
        except serial.SerialTimeoutException:  # type: ignore[attr-defined]
            self.rec.line("Write timeout")
            return
        self.rec.note("the host can write to the port")
        link.set_dtr(False)
        link.set_rts(False)
        if not link.lines_work:
            self.rec.note("DTR/RTS cannot be set on this port: the probe cannot reset the chip and only listens")
        self._normal_boot(link)
        self._download(link)
        self._summary(link)

    def _summary(self, link: Link) -> None:
        """What no single line shows: observations across every reset (rules quote these lines)."""
        if self.banner_seen:
            return
        if len(self.unreadable) >= 2:
            self.rec.note("the ROM banner was unreadable at " + " and ".join(map(str, sorted(self.unreadable)))
                          + " baud after every reset")
        elif self.app_lines and link.lines_work and not self.t.answered:
            self.rec.note("the board prints, but no reset produced a ROM banner: DTR/RTS do not reach EN/GPIO0")
        elif not self.any_bytes and link.lines_work and not self.t.answered:
            self.rec.note("the chip printed nothing after any reset and never answered SYNC")

    def _listen(self, link: Link, baud: int, seconds: float) -> tuple[list[str], bool]:
        if link.port.baudrate != baud:
            link.set_baud(baud)
            if link.lines_work:
                link.drain()  # bytes read at the old baud would look like garbage at this one
        data = link.read_for(seconds)
        if data:
            self.any_bytes = True
        lines, garbage = printable(data, MAX_BOARD_LINES.get(self.t.phases[-1].name, 8))
        if garbage:
            self.unreadable.add(baud)
            self.rec.note(f"{len(data)} unreadable bytes at {baud} baud: {_hex(data)}")
        for line in lines:
            self.rec.line(line)
            if _BANNER.search(line):
                self.banner_seen = True
            if _DOWNLOAD_BANNER.search(line):
                self.saw_download_banner = True
            m = _ESP32_NORMAL.search(line)
            if m or "boot mode:(3," in line:
                self.saw_normal_banner = m.group(1) if m else "3"
        return lines, garbage

    def _hard_reset(self, link: Link) -> None:
        link.set_dtr(False)  # GPIO0 high
        link.set_rts(True)  # EN low: in reset
        time.sleep(0.1)
        link.set_rts(False)

    def _bauds_to_try(self) -> list[int]:
        family = _family(self.chip_option)
        if family == "esp8266":
            return [74880, 115200]  # 115200: an ESP8266 module with a 40 MHz crystal
        if family == "esp32":
            return [115200, 74880]  # 74880: an ESP32 module with a 26 MHz crystal
        return [74880, 115200]

    def _normal_boot(self, link: Link) -> None:
        self.rec.phase("normal-boot")
        if not link.lines_work:
            return
        for baud in self._bauds_to_try():
            self.rec.note(f"reset into normal boot (EN pulsed low by RTS, GPIO0 high), listening at {baud} baud")
            link.set_baud(baud)  # before the reset: over RFC 2217 a baud change takes a round trip
            link.drain()
            self._hard_reset(link)
            lines, _garbage = self._listen(link, baud, self.timing.listen)
            if any(_BANNER.search(line) for line in lines):
                self.rom_baud = baud
                return
            if not lines and not _garbage:
                self.rec.note(f"nothing received at {baud} baud")
            elif lines:
                self.app_lines += len(lines)

    def _reset_sequences(self, link: Link) -> list[tuple[str, Callable[[], None]]]:
        def classic(delay: float) -> Callable[[], None]:
            def run() -> None:
                link.set_dtr(False)  # GPIO0 high
                link.set_rts(True)  # EN low
                time.sleep(0.1)
                link.set_dtr(True)  # GPIO0 low
                link.set_rts(False)  # EN high: out of reset, GPIO0 still low
                time.sleep(delay)
                link.set_dtr(False)
            return run

        def tight(delay: float) -> Callable[[], None]:
            def run() -> None:
                link.set_both(False, False)
                link.set_both(True, True)
                link.set_both(False, True)  # GPIO0 high, EN low
                time.sleep(0.1)
                link.set_both(True, False)  # GPIO0 low, EN high
                time.sleep(delay)
                link.set_both(False, False)
                link.set_dtr(False)
            return run

        def usb_jtag() -> None:
            link.set_rts(False)
            link.set_dtr(False)
            time.sleep(0.1)
            link.set_dtr(True)
            link.set_rts(False)
            time.sleep(0.1)
            link.set_rts(True)
            link.set_dtr(False)
            link.set_rts(True)
            time.sleep(0.1)
            link.set_dtr(False)
            link.set_rts(False)

        if not link.lines_work:
            return [("no", lambda: None)]
        if self._native_usb():
            return [("USB-JTAG-serial", usb_jtag)]
        seqs: list[tuple[str, Callable[[], None]]] = []
        if os.name != "nt" and link.has_fileno:
            seqs.append(("Unix tight", tight(DEFAULT_RESET_DELAY)))
        seqs.append(("classic", classic(DEFAULT_RESET_DELAY)))
        seqs.append(("classic, slow", classic(DEFAULT_RESET_DELAY + 0.5)))
        return seqs

    def _native_usb(self) -> bool:
        if "://" in self.url:
            return False
        try:
            from serial.tools import list_ports

            for p in list_ports.comports():
                if os.path.realpath(p.device) == os.path.realpath(self.url):
                    return (p.vid, p.pid) in NATIVE_USB
        except Exception:
            return False  # no USB information on this OS: the classic sequences still run
        return False

    def _download(self, link: Link) -> None:
        self.rec.phase("download")
        # only what the download resets print counts from here on (a normal-boot banner was right before)
        self.saw_download_banner = False
        self.saw_normal_banner = None
        rom = Rom(link, self.timing.sync_timeout)
        listen_baud = self.rom_baud or 115200
        dots = 0
        for name, sequence in self._reset_sequences(link):
            if link.lines_work:
                self.rec.note(f"reset into download mode ({name} DTR/RTS sequence), listening at {listen_baud} baud")
            else:
                self.rec.note(f"listening at {listen_baud} baud")
            link.set_baud(listen_baud)
            if link.lines_work:
                link.drain()  # what the chip printed before this reset belongs to the one before
            sequence()
            self._listen(link, listen_baud, self.timing.listen)
            for baud in SYNC_BAUDS:
                link.set_baud(baud)
                for _ in range(self.timing.sync_tries):
                    dots += 1
                    if rom.sync():
                        self.rec.line("Connecting" + "." * dots)
                        self.rec.note(f"the ROM answered SYNC at {baud} baud after the {name} reset")
                        self._identify(rom, baud)
                        self._hard_reset(link)  # leave the board running its program, as esptool does
                        return
        if rom.received:
            self.any_bytes = True
        self.rec.line("Connecting" + "." * dots)
        self._no_answer(rom)

    def _no_answer(self, rom: Rom) -> None:
        target = "Espressif device" if self.chip_option == "auto" else chip_display(self.chip_option)
        stray = bytes(rom.stray)
        if self.saw_download_banner:
            reason = "Download mode successfully detected, but getting no sync reply: The serial TX path seems to be down."
        elif self.saw_normal_banner and self.saw_normal_banner.startswith("0x"):
            reason = f"Wrong boot mode detected ({self.saw_normal_banner})! The chip needs to be in download mode."
        elif stray and printable(stray)[1]:
            # name a byte that is not text: a printable one would read as the firmware talking
            head = next((b for b in stray if not 32 <= b <= 126 and b not in (9, 10, 13, 27)), stray[0])
            reason = f"Invalid head of packet (0x{head:02X}): Possible serial noise or corruption."
        elif rom.received:
            reason = "Timed out waiting for packet header"
        else:
            reason = "No serial data received."
        self.rec.line(f"A fatal error occurred: Failed to connect to {target}: {reason}")

    def _identify(self, rom: Rom, baud: int) -> None:
        rom.timeout = self.timing.command_timeout
        self.t.answered = True
        try:
            chip = rom.chip()
        except (RomError, TimeoutError) as e:
            self.rec.line(f"A fatal error occurred: {e}")
            return
        if chip is None:
            self.rec.line("A fatal error occurred: Unexpected chip magic value. Failed to autodetect chip type.")
            return
        self.t.chip = chip
        self.rec.line(f"Chip is {chip}EX" if chip == "ESP8266" else f"Chip is {chip}")
        wanted = chip_display(self.chip_option)
        if self.chip_option != "auto" and wanted != chip:
            self.rec.line(f"A fatal error occurred: This chip is {chip} not {wanted}. Wrong --chip argument?")
            return
        try:
            flash_id = rom.flash_id(chip)
        except KeyError:
            self.rec.note(f"reading the flash id of an {chip} is not supported by the probe")
            return
        except (RomError, TimeoutError) as e:
            self.rec.note(f"the flash id could not be read: {e}")
            return
        self.t.flash_id = flash_id
        if flash_id in (0xFFFFFF, 0):
            self.rec.line("WARNING: Failed to communicate with the flash chip, read/write operations will fail. "
                          "Try checking the chip connections or removing any other hardware connected to IOs.")
        self.rec.line(f"Manufacturer: {flash_id & 0xFF:02x}")
        self.rec.line(f"Device: {(flash_id >> 8) & 0xFF:02x}{(flash_id >> 16) & 0xFF:02x}")
        size = FLASH_SIZES.get((flash_id >> 16) & 0xFF)
        self.rec.line(f"Detected flash size: {size or 'Unknown'}")
        self.rec.note(f"read chip and flash id at {baud} baud; nothing was written")

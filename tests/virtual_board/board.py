"""A virtual ESP8266 / ESP32 that the real ``esptool`` can talk to over TCP.

The board listens on 127.0.0.1 (ephemeral port) and speaks either

* RFC 2217 (telnet COM-port control, ``rfc2217://127.0.0.1:PORT``): esptool's
  DTR/RTS reset sequence reaches the board, which models the usual two-transistor
  auto-reset circuit (EN = RTS & !DTR, GPIO0 = DTR & !RTS, with an RC delay on EN)
  and decides on every reset release between download mode and normal boot,
  like a real chip; or
* a raw TCP byte stream (``socket://127.0.0.1:PORT``): no modem lines, so the
  board starts in download mode as if the user had held BOOT while plugging in.

Inside, it emulates enough of the ROM serial bootloader (SLIP framing, SYNC,
READ_REG/WRITE_REG incl. the SPI controller for the JEDEC flash id, eFuses,
FLASH_BEGIN/DATA/END, FLASH_DEFL_*, SPI_FLASH_MD5, ...) and of the flasher stub
(uploaded with MEM_BEGIN/MEM_DATA/MEM_END, answers "OHAI") for ``write_flash``
to succeed with esptool 3.x, 4.x and 5.x, with or without ``--no-stub``.

The RFC 2217 server side is written by hand (no pyserial needed in the test
process).  Named faults (see :mod:`.faults`) change the behaviour.

Run standalone for manual experiments::

    python -m tests.virtual_board.board --chip esp32 --fault none
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .faults import Fault, ProbeFault

# ---------------------------------------------------------------- chip models

ESP_CHECKSUM_MAGIC = 0xEF
CHIP_DETECT_MAGIC_REG_ADDR = 0x40001000
ROM_SYNC_VALUE = 0x20120707  # what the ROMs put in the 'value' field of a SYNC reply

# commands
FLASH_BEGIN, FLASH_DATA, FLASH_END = 0x02, 0x03, 0x04
MEM_BEGIN, MEM_END, MEM_DATA = 0x05, 0x06, 0x07
SYNC, WRITE_REG, READ_REG = 0x08, 0x09, 0x0A
SPI_SET_PARAMS, SPI_ATTACH, READ_FLASH_SLOW, CHANGE_BAUDRATE = 0x0B, 0x0D, 0x0E, 0x0F
FLASH_DEFL_BEGIN, FLASH_DEFL_DATA, FLASH_DEFL_END = 0x10, 0x11, 0x12
SPI_FLASH_MD5, GET_SECURITY_INFO = 0x13, 0x14
ERASE_FLASH, ERASE_REGION, READ_FLASH, RUN_USER_CODE = 0xD0, 0xD1, 0xD2, 0xD3

# ROM loader error codes
ROM_ERR_INVALID_MSG = 0x05
ROM_ERR_CHECKSUM = 0x07
# stub error codes
STUB_ERR_BAD_DATA_CHECKSUM = 0xC2
STUB_ERR_NOT_IMPLEMENTED = 0xFF


@dataclass(frozen=True)
class ChipModel:
    name: str  # esptool's --chip spelling
    display: str
    magic: int
    rom_status_len: int  # 2 on ESP8266 ROM, 4 on ESP32-family ROMs; stub is always 2
    spi_base: int
    spi_w0_offs: int
    security_info: bytes | None  # payload of GET_SECURITY_INFO, None = unsupported in ROM
    registers: dict[int, int] = field(default_factory=dict)
    rom_has_md5: bool = True
    rom_has_deflate: bool = True
    spi_usr2_offs: int = 0x24  # 0x20 on the ESP32-S2/S3/C-series SPI controller


ESP8266 = ChipModel(
    name="esp8266",
    display="ESP8266EX",
    magic=0xFFF0C101,
    rom_status_len=2,
    spi_base=0x60000200,
    spi_w0_offs=0x40,
    security_info=None,
    rom_has_md5=False,
    rom_has_deflate=False,
    registers={
        0x3FF00050: 0xAB000000,  # OTP MAC0 -> MAC ...:ab, bit4 clear (not an ESP8285)
        0x3FF00054: 0x0000CDEF,  # OTP MAC1 -> OUI 18:fe:34, MAC 18:fe:34:cd:ef:ab
        0x3FF00058: 0x00000000,
        0x3FF0005C: 0x00000000,  # OTP MAC3 (custom OUI) unset
        0x60000014: 451,  # UART_CLKDIV: 52 MHz APB / 115200 -> 26 MHz crystal
        0x60000078: 0x00000000,  # UART_DATE (dummy delay target)
    },
)

_ESP32_EFUSE = 0x3FF5A000
ESP32 = ChipModel(
    name="esp32",
    display="ESP32-D0WD-V3 (revision v3.0)",
    magic=0x00F01D83,
    rom_status_len=4,
    spi_base=0x3FF42000,
    spi_w0_offs=0x80,
    security_info=None,
    registers={
        _ESP32_EFUSE + 0x00: 0x00000000,
        _ESP32_EFUSE + 0x04: 0xC4123456,  # MAC low word   -> 24:0a:c4:12:34:56
        _ESP32_EFUSE + 0x08: 0x00A1240A,  # CRC + MAC high
        _ESP32_EFUSE + 0x0C: (1 << 9) | (1 << 15),  # pkg D0WD, rev bit0
        _ESP32_EFUSE + 0x10: 0x00000033,  # CK8M freq for the ROM's xtal calibration
        _ESP32_EFUSE + 0x14: 1 << 20,  # rev bit1
        _ESP32_EFUSE + 0x18: 0x00000000,
        0x3FF6607C: 1 << 31,  # APB_CTL_DATE rev bit2 -> chip revision v3.0
        0x3FF40014: 347,  # UART_CLKDIV: 40 MHz / 115200
        0x3FF5F06C: 2008 << 7,  # RTCCALICFG1: ROM xtal calibration -> 40 MHz
        0x60000078: 0x00000000,
    },
)

# Only used as the "wrong chip" answering when ESP32 was asked for.
ESP32S3 = ChipModel(
    name="esp32s3",
    display="ESP32-S3 (QFN56) (revision v0.2)",
    magic=0x00000009,
    rom_status_len=4,
    spi_base=0x60002000,
    spi_w0_offs=0x58,
    spi_usr2_offs=0x20,
    # flags, flash_crypt_cnt, 7 key purposes, chip_id=9, api_version=0
    security_info=struct.pack("<IBBBBBBBBII", 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0),
    registers={
        0x60008850: 0x00000000,
        0x60000014: 347,
    },
)

CHIPS = {"esp8266": ESP8266, "esp32": ESP32, "esp32s3": ESP32S3}

DEFAULT_FLASH_ID = 0x1640EF  # Winbond W25Q32 (4 MB)
FLASH_SIZE = 4 * 1024 * 1024

ESP32_BANNER_HEAD = b"ets Jun  8 2016 00:22:57\r\n\r\n"
ESP32_DOWNLOAD_BANNER = (
    ESP32_BANNER_HEAD
    + b"rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\n"
    + b"waiting for download\r\n"
)
ESP32_NORMAL_BANNER = (
    ESP32_BANNER_HEAD
    + b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
    + b"configsip: 0, SPIWP:0xee\r\n"
    + b"clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00\r\n"
    + b"mode:DIO, clock div:2\r\n"
    + b"load:0x3fff0030,len:7132\r\n"
    + b"load:0x40078000,len:15708\r\n"
    + b"load:0x40080400,len:4\r\n"
    + b"entry 0x40080644\r\n"
    + b"I (31) boot: ESP-IDF v5.1.2 2nd stage bootloader\r\n"
)
ESP8266_DOWNLOAD_BANNER = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(1,7)\r\n\r\n"
ESP8266_NORMAL_BANNER = (
    b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n\r\n"
    b"load 0x4010f000, len 3424, room 16 \r\n"
    b"tail 0\r\nchksum 0x2e\r\nload 0x3fff20b8, len 40, room 0 \r\n"
    b"tail 8\r\nchksum 0x2b\r\ncsum 0x2b\r\n"
)
ESP8266_SDIO_BANNER = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(7,6)\r\n\r\nwaiting host\r\n"

ESP8266_GPIO2_LOW_BANNER = b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(%s,6)\r\n\r\n"
ESP32_GPIO12_NORMAL_BANNER = (
    ESP32_BANNER_HEAD
    + b"rst:0x1 (POWERON_RESET),boot:0x33 (SPI_FAST_FLASH_BOOT)\r\n"
    + b"flash read err, 1000\r\n"
    + b"ets_main.c 371 \r\n"
)

EN_RC_WINDOW = 0.12  # seconds EN takes to rise after the host releases it (slow RC)
STRAP_SETTLE = 0.005  # GPIO0 pulled low during the EN rise: reset ends this much later


# ---------------------------------------------------------------- SLIP helpers


def slip_encode(payload: bytes) -> bytes:
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class SlipDecoder:
    """Incremental SLIP decoder; bytes outside a frame are dropped (like the ROM does)."""

    def __init__(self) -> None:
        self._buf: bytearray | None = None
        self._esc = False

    def reset(self) -> None:
        self._buf = None
        self._esc = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for b in data:
            if self._buf is None:
                if b == 0xC0:
                    self._buf = bytearray()
                continue
            if self._esc:
                self._esc = False
                self._buf.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
            elif b == 0xDB:
                self._esc = True
            elif b == 0xC0:
                if self._buf:
                    out.append(bytes(self._buf))
                    self._buf = None
                else:
                    self._buf = bytearray()  # c0 c0: empty frame, treat second c0 as a new start
            else:
                self._buf.append(b)
        return out


def checksum(data: bytes) -> int:
    state = ESP_CHECKSUM_MAGIC
    for b in data:
        state ^= b
    return state


# ---------------------------------------------------------------- telnet / RFC 2217

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
OPT_BINARY, OPT_ECHO, OPT_SGA, OPT_COM_PORT = 0, 1, 3, 44
SERVER_OFFSET = 100
SET_BAUDRATE, SET_CONTROL, NOTIFY_MODEMSTATE, PURGE_DATA = 1, 5, 7, 12
CTRL_DTR_ON, CTRL_DTR_OFF, CTRL_RTS_ON, CTRL_RTS_OFF = 8, 9, 11, 12


class TelnetParser:
    """Minimal RFC 854 / RFC 2217 server-side state machine."""

    def __init__(
        self,
        send_raw: Callable[[bytes], None],
        on_data: Callable[[bytes], None],
        on_subneg: Callable[[bytes], None],
    ) -> None:
        self._send_raw = send_raw
        self._on_data = on_data
        self._on_subneg = on_subneg
        self._mode = "data"
        self._verb = 0
        self._sb = bytearray()
        self._answered: set[tuple[int, int]] = set()
        self._steps: dict[str, Callable[[int, bytearray], None]] = {
            "data": self._in_data,
            "iac": self._in_iac,
            "opt": self._in_opt,
            "sb": self._in_sb,
            "sb-iac": self._in_sb_iac,
        }

    def feed(self, chunk: bytes) -> None:
        data = bytearray()
        for b in chunk:
            self._steps[self._mode](b, data)
        if data:
            self._on_data(bytes(data))

    def _in_data(self, b: int, data: bytearray) -> None:
        if b == IAC:
            self._mode = "iac"
        else:
            data.append(b)

    def _in_iac(self, b: int, data: bytearray) -> None:
        if b == IAC:
            data.append(IAC)
            self._mode = "data"
        elif b in (DO, DONT, WILL, WONT):
            self._verb = b
            self._mode = "opt"
        elif b == SB:
            self._sb = bytearray()
            self._mode = "sb"
        else:
            self._mode = "data"  # NOP, GA, ... ignored

    def _in_opt(self, b: int, data: bytearray) -> None:
        self._mode = "data"
        self._negotiate(self._verb, b)

    def _in_sb(self, b: int, data: bytearray) -> None:
        if b == IAC:
            self._mode = "sb-iac"
        else:
            self._sb.append(b)

    def _in_sb_iac(self, b: int, data: bytearray) -> None:
        if b == SE:
            self._mode = "data"
            # data that came before the subnegotiation must reach the chip before it takes effect
            if data:
                self._on_data(bytes(data))
                data.clear()
            self._on_subneg(bytes(self._sb))
        else:
            self._sb.append(b)  # IAC IAC inside SB
            self._mode = "sb"

    def _negotiate(self, verb: int, opt: int) -> None:
        supported = opt in (OPT_BINARY, OPT_SGA, OPT_COM_PORT)
        if verb == WILL:
            reply = DO if supported else DONT
        elif verb == DO:
            reply = WILL if supported else WONT
        elif verb == WONT:
            reply = DONT
        else:
            reply = WONT
        key = (verb, opt)
        if key in self._answered:
            return
        self._answered.add(key)
        self._send_raw(bytes([IAC, reply, opt]))


# ---------------------------------------------------------------- the board


class VirtualBoard:
    """One emulated chip behind a TCP listener.

    ``chip`` is the chip the *user* believes they have (what the test passes as
    ``--chip``); with :attr:`Fault.WRONG_CHIP` the board emulates another model.
    """

    def __init__(
        self,
        chip: str = "esp32",
        fault: Fault | str = Fault.NONE,
        *,
        protocol: str = "rfc2217",
        host: str = "127.0.0.1",
        stop_after_blocks: int = 2,
        flash_id: int = DEFAULT_FLASH_ID,
        seed: int = 2217,
        log: bool = False,
        probe_fault: ProbeFault | str | None = None,
        model_baud: bool = False,
        banner_on_connect: bool = False,
        reboot_every: float | None = None,
        pty_link: str | None = None,
        vanish_after: float | None = None,
    ) -> None:
        """Options for the ``espdiag probe`` tests (all off by default, so esptool runs are unchanged):

        ``probe_fault``: a :class:`ProbeFault` board state; ``model_baud``: over RFC 2217 the ROM's boot
        text arrives as garbage unless the host's baud equals the ROM's (74880 ESP8266, 115200 ESP32);
        ``banner_on_connect``: reboot when a client connects (a board on a plain socket, as if RST was
        pressed); ``reboot_every``: reboot periodically (a board behind a pty, which has no reset lines);
        protocol ``pty``: serve on a pseudo-terminal, at ``pty_link`` (a symlink) if given;
        ``vanish_after``: the pty disappears after so many seconds (an unplugged board).
        """
        if chip not in ("esp8266", "esp32"):
            raise ValueError(f"unsupported chip {chip!r} (esp8266 or esp32)")
        if protocol not in ("rfc2217", "socket", "pty"):
            raise ValueError("protocol must be 'rfc2217', 'socket' or 'pty'")
        self.probe_fault = ProbeFault(probe_fault) if probe_fault else None
        if self.probe_fault and not self.probe_fault.applies_to(chip):
            raise ValueError(f"{self.probe_fault.value!r} does not apply to {chip}")
        self.model_baud = model_baud
        self.banner_on_connect = banner_on_connect
        self.reboot_every = reboot_every
        self.pty_link = pty_link
        self.vanish_after = vanish_after
        self._pty: tuple[int, int] | None = None
        self.pty_path = ""
        self.fault = Fault.parse(fault)
        if not self.fault.applies_to(chip):
            raise ValueError(f"fault {self.fault.value!r} does not apply to {chip}")
        self.requested_chip = chip
        if self.fault is Fault.WRONG_CHIP:
            self.model = ESP32S3 if chip == "esp32" else ESP32
        else:
            self.model = CHIPS[chip]
        self.protocol = protocol
        self.host = host
        self.stop_after_blocks = stop_after_blocks
        no_flash = self.fault is Fault.FLASH_ID_FFFFFF or self.probe_fault is ProbeFault.GPIO12_HIGH
        self.flash_id = 0xFFFFFF if no_flash else flash_id
        self._rng = random.Random(seed)
        self._log_enabled = log

        self._lock = threading.RLock()
        self._send_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

        # modem lines as seen from the host (True = asserted)
        self.dtr = False
        self.rts = False
        self.host_baud = 115200
        self._en_low = False
        self._rising = False
        self._boot_gen = 0

        # chip state: "off" (held in reset), "download", "stub", "app", "dead", "idle"
        self.state = "idle"
        self.boots: list[str] = []  # history of boot modes, for tests
        self.commands: list[int] = []  # history of received opcodes
        self._slip = SlipDecoder()
        self.flash = bytearray(b"\xff" * FLASH_SIZE)
        self.regs: dict[int, int] = {}
        self._reset_regs()
        self._write: dict[str, int] | None = None
        self._inflate: Any = None  # zlib decompressobj while a FLASH_DEFL write is open
        self._data_blocks = 0

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._listener is not None, "board not started"
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        if self.protocol == "pty":
            return self.pty_link or self.pty_path
        return f"{self.protocol}://{self.host}:{self.port}"

    def start(self) -> VirtualBoard:
        if self.protocol == "pty":
            return self._start_pty()
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((self.host, 0))
        lst.listen(4)
        lst.settimeout(0.2)
        self._listener = lst
        # power-on: over RFC 2217 the chip boots its app (nobody holds GPIO0 low);
        # over a raw socket there are no reset lines: behave as if BOOT was held
        self._boot(io0_low=self.protocol == "socket")
        t = threading.Thread(target=self._accept_loop, name="vboard-accept", daemon=True)
        t.start()
        self._threads.append(t)
        self._start_extras()
        return self

    def _start_extras(self) -> None:
        if self.reboot_every:
            self._spawn(self._reboot_loop, "vboard-reboot")
        if self.probe_fault is ProbeFault.NO_RESET_LINES:
            self._spawn(self._app_chatter, "vboard-app")
        if self.vanish_after is not None:
            t = threading.Timer(self.vanish_after, self._vanish)
            t.daemon = True
            t.start()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _reboot_loop(self) -> None:
        assert self.reboot_every is not None
        while not self._stopping.wait(self.reboot_every):
            self._boot(io0_low=False)

    def _app_chatter(self) -> None:
        n = 0
        while not self._stopping.wait(0.1):
            n += 1
            with self._lock:
                if self.state == "app":
                    self._tx_text(f"loop {n}: sensor=21.5\r\n".encode(), 115200)

    # ------------------------------------------------------------ pty

    def _start_pty(self) -> VirtualBoard:
        import tty

        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        self._pty = (master, slave)
        self.pty_path = os.ttyname(slave)
        if self.pty_link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.pty_link)
            os.symlink(self.pty_path, self.pty_link)
        self._boot(io0_low=False)
        self._spawn(self._pty_loop, "vboard-pty")
        self._start_extras()
        return self

    def _pty_loop(self) -> None:
        assert self._pty is not None
        master = self._pty[0]
        while not self._stopping.is_set():
            try:
                ready, _, _ = select.select([master], [], [], 0.1)
                if ready:
                    data = os.read(master, 4096)
                    if data:
                        self._rx(data)
            except OSError:
                return

    def _vanish(self) -> None:
        """The board is unplugged: the device node goes away and reads fail."""
        self._log("vanishing")
        if self.pty_link:
            with contextlib.suppress(OSError):
                os.unlink(self.pty_link)
        if self._pty is not None:
            master, slave = self._pty
            self._pty = None
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            self._boot_gen += 1
        if self.protocol == "pty":
            self._vanish()
        for s in (self._conn, self._listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> VirtualBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log(self, msg: str) -> None:
        if self._log_enabled:
            print(f"[vboard {time.monotonic():.3f}] {msg}", flush=True)

    # ------------------------------------------------------------ networking

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            old = self._conn
            self._conn = conn
            if old is not None:
                with contextlib.suppress(OSError):
                    old.close()
            t = threading.Thread(target=self._serve, args=(conn,), name="vboard-conn", daemon=True)
            t.start()
            self._threads.append(t)

    def _send_raw(self, data: bytes) -> None:
        if self.protocol == "pty":
            pty_fds = self._pty
            if pty_fds is not None:
                with self._send_lock, contextlib.suppress(OSError):
                    os.write(pty_fds[0], data)
            return
        conn = self._conn
        if conn is None:
            return
        with self._send_lock, contextlib.suppress(OSError):
            conn.sendall(data)

    def _tx(self, data: bytes) -> None:
        """Bytes leaving the chip's UART TX pin."""
        if not data:
            return
        if self.protocol == "rfc2217":
            data = data.replace(b"\xff", b"\xff\xff")
        self._send_raw(data)

    def _tx_text(self, data: bytes, baud: int | None = None) -> None:
        """Boot text from the UART at the ROM's own baud: garbage unless the host listens at that baud."""
        if self.model_baud and self.protocol == "rfc2217":
            rom_baud = baud or (74880 if self.model.name == "esp8266" else 115200)
            if self.probe_fault is ProbeFault.WRONG_CRYSTAL:
                rom_baud = rom_baud * 24 // 26  # a 24 MHz crystal where the ROM assumes 26/40 MHz
            if self.host_baud != rom_baud:
                data = self._noise(len(data))
        self._tx(data)

    def _serve(self, conn: socket.socket) -> None:
        self._log("client connected")
        if self.banner_on_connect:
            threading.Timer(0.05, self._boot, args=(self.protocol == "socket",)).start()
        if self.protocol == "rfc2217":
            parser = TelnetParser(self._send_raw, self._rx, self._subneg)
            feed: Callable[[bytes], None] = parser.feed
            # we offer the options too; pyserial's client accepts either order
            self._send_raw(bytes([IAC, DO, OPT_COM_PORT]))
        else:
            feed = self._rx
        conn.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            feed(chunk)
        self._log("client disconnected")
        with contextlib.suppress(OSError):
            conn.close()

    def _subneg(self, sb: bytes) -> None:
        if len(sb) < 2 or sb[0] != OPT_COM_PORT:
            return
        cmd, value = sb[1], sb[2:]
        if cmd == SET_BAUDRATE and len(value) == 4:
            baud = struct.unpack(">I", value)[0]
            if baud:
                self.host_baud = baud
            value = struct.pack(">I", self.host_baud)
        elif cmd == SET_CONTROL and value:
            v = value[0]
            if v in (CTRL_DTR_ON, CTRL_DTR_OFF):
                self._set_lines(dtr=v == CTRL_DTR_ON)
            elif v in (CTRL_RTS_ON, CTRL_RTS_OFF):
                self._set_lines(rts=v == CTRL_RTS_ON)
        elif cmd == PURGE_DATA:
            pass
        elif cmd == NOTIFY_MODEMSTATE:
            value = b"\x00"
        body = bytes([OPT_COM_PORT, cmd + SERVER_OFFSET]) + value.replace(b"\xff", b"\xff\xff")
        self._send_raw(bytes([IAC, SB]) + body + bytes([IAC, SE]))
        if cmd == SET_BAUDRATE:
            # pyserial wants to have seen one modem-state notification
            self._send_raw(bytes([IAC, SB, OPT_COM_PORT, NOTIFY_MODEMSTATE + SERVER_OFFSET, 0, IAC, SE]))

    # ------------------------------------------------------------ reset circuit

    def _set_lines(self, dtr: bool | None = None, rts: bool | None = None) -> None:
        """Auto-reset circuit: EN = !(RTS & !DTR), GPIO0 = !(DTR & !RTS).

        EN rises through an RC network, so the chip leaves reset some time after
        the host releases it.  Over RFC 2217 every line change costs a network
        round trip (pyserial polls the acknowledgement every 50 ms), which is
        why the window is generous: if GPIO0 is pulled low while EN is still
        rising, the ROM samples it low and enters download mode; if the window
        runs out with GPIO0 high, the chip boots normally.
        """
        if self.probe_fault is ProbeFault.NO_RESET_LINES:
            return  # DTR/RTS go nowhere: no auto-reset circuit
        with self._lock:
            if dtr is not None:
                self.dtr = dtr
            if rts is not None:
                self.rts = rts
            en_low = self.rts and not self.dtr
            io0_low = self.dtr and not self.rts
            self._log(f"lines dtr={self.dtr} rts={self.rts} en_low={en_low} io0_low={io0_low}")
            if en_low:
                if not self._en_low:
                    self._en_low = True
                    self._boot_gen += 1
                    if self.state != "dead":
                        self.state = "off"
                return
            if self._en_low:
                # EN released: reset ends after the RC delay unless GPIO0 decides earlier
                self._en_low = False
                self._boot_gen += 1
                self._rising = True
                self._schedule_boot(EN_RC_WINDOW, self._boot_gen)
            if self._rising and io0_low:
                self._boot_gen += 1
                self._schedule_boot(STRAP_SETTLE, self._boot_gen)

    def _schedule_boot(self, delay: float, gen: int) -> None:
        t = threading.Timer(delay, self._boot_timer, args=(gen,))
        t.daemon = True
        t.start()

    def _boot_timer(self, gen: int) -> None:
        with self._lock:
            if gen != self._boot_gen or self._stopping.is_set():
                return
            self._rising = False
            io0_low = self.dtr and not self.rts
            self._boot(io0_low)

    def _boot(self, io0_low: bool) -> None:
        """Chip comes out of reset; ROM samples the strapping pins."""
        with self._lock:
            if self.state == "dead":
                return
            self._slip.reset()
            self._write = None
            self._inflate = None
            self._reset_regs()
            if self.probe_fault is ProbeFault.GPIO0_STUCK_LOW:
                io0_low = True
            if self._boot_broken_strap(io0_low):
                return
            mode = self._boot_mode(io0_low)
            self.boots.append(mode)
            self._log(f"boot -> {mode}")
            if mode in ("download", "deaf"):
                self._enter_download(mode)
            elif mode == "app":
                self.state = "app"
                self._tx_text(ESP8266_NORMAL_BANNER if self.model.name == "esp8266" else ESP32_NORMAL_BANNER)
            else:
                self.state = "silent"
                if mode == "sdio":
                    self._tx_text(ESP8266_SDIO_BANNER)

    def _boot_broken_strap(self, io0_low: bool) -> bool:
        """A probe fault's strapping pin wins over everything else; True if it decided the boot."""
        pf = self.probe_fault
        if pf is ProbeFault.GPIO2_LOW:
            self.boots.append("gpio2-low")
            self.state = "silent"
            self._tx_text(ESP8266_GPIO2_LOW_BANNER % (b"0" if io0_low else b"2"))
            return True
        if pf is ProbeFault.GPIO12_HIGH and not io0_low:
            self.boots.append("flash-read-err")
            self.state = "silent"
            self._tx_text(ESP32_GPIO12_NORMAL_BANNER)
            return True
        return False

    def _boot_mode(self, io0_low: bool) -> str:
        f = self.fault
        if f is Fault.NO_DOWNLOAD_MODE:
            return "silent"
        if f is Fault.NORMAL_BOOT:
            return "app"
        if f is Fault.GPIO15_HIGH:
            return "sdio"
        if f is Fault.NO_SYNC_REPLY and io0_low:
            return "deaf"
        return "download" if io0_low else "app"

    def _enter_download(self, mode: str) -> None:
        # "deaf" prints the download banner too but then ignores the host
        self.state = mode
        if self.fault is Fault.GARBAGE:
            self._tx(self._noise(24))
        elif self.model.name == "esp8266":
            self._tx_text(ESP8266_DOWNLOAD_BANNER)
        elif self.probe_fault is ProbeFault.GPIO12_HIGH:
            self._tx_text(ESP32_DOWNLOAD_BANNER.replace(b"boot:0x3 ", b"boot:0x23 "))
        else:
            self._tx_text(ESP32_DOWNLOAD_BANNER)

    def _noise(self, n: int) -> bytes:
        # what 74880/230400 baud data looks like when sampled at 115200: mostly
        # high bits, 0x00, 0xf0, 0x80, ... never starting with a SLIP delimiter
        alphabet = [0x00, 0x80, 0xF0, 0xF8, 0xFE, 0x8C, 0x1C, 0x0E, 0x70, 0x60, 0xE0, 0x9E, 0x12]
        return bytes(self._rng.choice(alphabet) for _ in range(n))

    def _reset_regs(self) -> None:
        self.regs = dict(self.model.registers)
        self.regs[CHIP_DETECT_MAGIC_REG_ADDR] = self.model.magic

    # ------------------------------------------------------------ UART RX

    def _rx(self, data: bytes) -> None:
        with self._lock:
            if self.state not in ("download", "stub"):
                return
            for pkt in self._slip.feed(data):
                if self.state not in ("download", "stub"):
                    break
                self._handle(pkt)

    def _respond(self, op: int, value: int = 0, data: bytes = b"", status: int = 0, error: int = 0) -> None:
        if self.fault is Fault.GARBAGE:
            self._tx(self._noise(12 + self._rng.randrange(8)))
            return
        slen = 2 if self.state == "stub" else self.model.rom_status_len
        status_bytes = bytes([status, error]) + b"\x00" * (slen - 2)
        body = data + status_bytes
        pkt = struct.pack("<BBHI", 1, op, len(body), value) + body
        self._tx(slip_encode(pkt))

    def _fail(self, op: int, rom_error: int, stub_error: int) -> None:
        self._respond(op, status=1, error=stub_error if self.state == "stub" else rom_error)

    def _handle(self, pkt: bytes) -> None:
        if len(pkt) < 8 or pkt[0] != 0x00:
            return  # not a command (e.g. READ_FLASH acks) -> ignored like the ROM
        _, op, size, chk = struct.unpack("<BBHI", pkt[:8])
        data = pkt[8 : 8 + size]
        self.commands.append(op)
        stub = self.state == "stub"
        if self.fault is Fault.STOP_MID_WRITE and op in (FLASH_DATA, FLASH_DEFL_DATA):
            if self._data_blocks >= self.stop_after_blocks:
                self._log("power lost mid write")
                self.state = "dead"
                return
            self._data_blocks += 1
        handler = _COMMANDS.get(op) or (_STUB_COMMANDS if stub else _ROM_COMMANDS).get(op)
        if handler is None:
            self._fail(op, ROM_ERR_INVALID_MSG, STUB_ERR_NOT_IMPLEMENTED)
        else:
            handler(self, Command(op, data, chk, stub))

    # opcode handlers: _COMMANDS, _STUB_COMMANDS and _ROM_COMMANDS (after the class) say who answers what

    def _sync(self, cmd: Command) -> None:
        if cmd.data[:4] != b"\x07\x07\x12\x20":
            self._fail(cmd.op, ROM_ERR_INVALID_MSG, STUB_ERR_NOT_IMPLEMENTED)
            return
        value = 0 if cmd.stub else ROM_SYNC_VALUE
        for _ in range(8):
            self._respond(cmd.op, value=value)

    def _read_reg(self, cmd: Command) -> None:
        (addr,) = struct.unpack("<I", cmd.data[:4])
        self._respond(cmd.op, value=self.regs.get(addr, 0))

    def _write_regs(self, cmd: Command) -> None:
        data = cmd.data
        for i in range(0, len(data) - 15, 16):
            addr, value, mask, _delay = struct.unpack("<IIII", data[i : i + 16])
            old = self.regs.get(addr, 0)
            self._write_reg(addr, (old & ~mask) | (value & mask))
        self._respond(cmd.op)

    def _security_info(self, cmd: Command) -> None:
        if self.model.security_info is None or cmd.stub:
            self._fail(cmd.op, ROM_ERR_INVALID_MSG, STUB_ERR_NOT_IMPLEMENTED)
        else:
            self._respond(cmd.op, data=self.model.security_info)

    def _ack(self, cmd: Command) -> None:
        self._respond(cmd.op)

    def _mem_data(self, cmd: Command) -> None:
        if checksum(cmd.data[16:]) != cmd.chk & 0xFF:
            self._fail(cmd.op, ROM_ERR_CHECKSUM, STUB_ERR_BAD_DATA_CHECKSUM)
        else:
            self._respond(cmd.op)

    def _mem_end(self, cmd: Command) -> None:
        no_entry, entry = struct.unpack("<II", cmd.data[:8])
        self._respond(cmd.op)
        if not no_entry and entry and not cmd.stub:
            self.state = "stub"
            self._log("stub running")
            self._tx(slip_encode(b"OHAI"))

    def _flash_begin(self, cmd: Command) -> None:
        deflate = cmd.op == FLASH_DEFL_BEGIN
        if deflate and not cmd.stub and not self.model.rom_has_deflate:
            self._fail(cmd.op, ROM_ERR_INVALID_MSG, STUB_ERR_NOT_IMPLEMENTED)
            return
        size, _blocks, blocksize, offset = struct.unpack("<IIII", cmd.data[:16])
        self._write = {"offset": offset, "blocksize": blocksize, "pos": offset, "size": size}
        self._inflate = zlib.decompressobj() if deflate else None
        if size and not (cmd.stub and deflate):
            # the ROM erases up front (stub erases while writing)
            erase = min(size, FLASH_SIZE - offset) if self.model.name != "esp8266" else 0
            self._flash_fill(offset, erase)
        self._respond(cmd.op)

    def _flash_data(self, cmd: Command) -> None:
        length, seq, _, _ = struct.unpack("<IIII", cmd.data[:16])
        payload = cmd.data[16 : 16 + length]
        if checksum(payload) != cmd.chk & 0xFF or self._write is None:
            self._fail(cmd.op, ROM_ERR_CHECKSUM, STUB_ERR_BAD_DATA_CHECKSUM)
            return
        w = self._write
        if cmd.op == FLASH_DATA:
            self._flash_write(w["offset"] + seq * w["blocksize"], payload)
        else:
            assert self._inflate is not None
            try:
                out = self._inflate.decompress(payload)
            except zlib.error:
                self._fail(cmd.op, 0x0B, 0xC4)
                return
            self._flash_write(w["pos"], out)
            w["pos"] += len(out)
        self._respond(cmd.op)

    def _flash_end(self, cmd: Command) -> None:
        (no_reboot,) = struct.unpack("<I", cmd.data[:4]) if len(cmd.data) >= 4 else (1,)
        self._respond(cmd.op)
        if not no_reboot:
            self._reboot_into_app()

    def _flash_md5(self, cmd: Command) -> None:
        if not cmd.stub and not self.model.rom_has_md5:
            self._fail(cmd.op, ROM_ERR_INVALID_MSG, STUB_ERR_NOT_IMPLEMENTED)
            return
        addr, size = struct.unpack("<II", cmd.data[:8])
        digest = hashlib.md5(bytes(self.flash[addr : addr + size]))
        self._respond(cmd.op, data=digest.digest() if cmd.stub else digest.hexdigest().encode())

    def _erase_flash(self, cmd: Command) -> None:
        self._flash_fill(0, FLASH_SIZE)
        self._respond(cmd.op)

    def _erase_region(self, cmd: Command) -> None:
        offset, size = struct.unpack("<II", cmd.data[:8])
        self._flash_fill(offset, size)
        self._respond(cmd.op)

    def _read_flash(self, cmd: Command) -> None:
        offset, length, sector, _inflight = struct.unpack("<IIII", cmd.data[:16])
        self._respond(cmd.op)
        blob = bytes(self.flash[offset : offset + length])
        for i in range(0, length, sector or 0x1000):
            self._tx(slip_encode(blob[i : i + (sector or 0x1000)]))
        self._tx(slip_encode(hashlib.md5(blob).digest()))

    def _read_flash_slow(self, cmd: Command) -> None:
        offset, length = struct.unpack("<II", cmd.data[:8])
        self._respond(cmd.op, data=bytes(self.flash[offset : offset + length]))

    def _run_user_code(self, cmd: Command) -> None:
        self._reboot_into_app()

    def _reboot_into_app(self) -> None:
        self.state = "app"
        self.boots.append("app")
        self._tx(ESP8266_NORMAL_BANNER if self.model.name == "esp8266" else ESP32_NORMAL_BANNER)

    # ------------------------------------------------------------ flash & SPI

    def _flash_fill(self, offset: int, size: int) -> None:
        if self.fault is Fault.FLASH_ID_FFFFFF:
            return
        end = min(FLASH_SIZE, offset + size)
        self.flash[offset:end] = b"\xff" * max(0, end - offset)

    def _flash_write(self, offset: int, payload: bytes) -> None:
        if self.fault is Fault.FLASH_ID_FFFFFF:
            return  # no flash chip answering: nothing sticks
        end = min(FLASH_SIZE, offset + len(payload))
        self.flash[offset:end] = payload[: end - offset]

    def _write_reg(self, addr: int, value: int) -> None:
        base = self.model.spi_base
        self.regs[addr] = value & 0xFFFFFFFF
        if addr == base and value & (1 << 18):  # SPI_CMD_USR: run a user command
            cmd = self.regs.get(base + self.model.spi_usr2_offs, 0) & 0xFF  # SPI_USR2: command value
            w0 = base + self.model.spi_w0_offs
            if cmd == 0x9F:  # RDID
                self.regs[w0] = self.flash_id
            elif cmd in (0x05, 0x35, 0x15):  # read status registers
                self.regs[w0] = 0xFFFFFF if self.fault is Fault.FLASH_ID_FFFFFF else 0
            else:
                self.regs[w0] = 0xFFFFFFFF if self.fault is Fault.FLASH_ID_FFFFFF else 0
            self.regs[base] = value & ~(1 << 18)  # done immediately


class Command(NamedTuple):
    """One decoded request; ``stub`` says whether the flasher stub (not the ROM) answers it."""

    op: int
    data: bytes
    chk: int
    stub: bool


_Handler = Callable[[VirtualBoard, Command], None]

# what both the ROM loader and the stub answer
_COMMANDS: dict[int, _Handler] = {
    SYNC: VirtualBoard._sync,
    READ_REG: VirtualBoard._read_reg,
    WRITE_REG: VirtualBoard._write_regs,
    GET_SECURITY_INFO: VirtualBoard._security_info,
    SPI_SET_PARAMS: VirtualBoard._ack,
    SPI_ATTACH: VirtualBoard._ack,
    CHANGE_BAUDRATE: VirtualBoard._ack,
    MEM_BEGIN: VirtualBoard._ack,
    MEM_DATA: VirtualBoard._mem_data,
    MEM_END: VirtualBoard._mem_end,
    FLASH_BEGIN: VirtualBoard._flash_begin,
    FLASH_DEFL_BEGIN: VirtualBoard._flash_begin,
    FLASH_DATA: VirtualBoard._flash_data,
    FLASH_DEFL_DATA: VirtualBoard._flash_data,
    FLASH_END: VirtualBoard._flash_end,
    FLASH_DEFL_END: VirtualBoard._flash_end,
    SPI_FLASH_MD5: VirtualBoard._flash_md5,
}
# the stub's extra commands; the ROM refuses them, so esptool --no-stub must get by without
_STUB_COMMANDS: dict[int, _Handler] = {
    ERASE_FLASH: VirtualBoard._erase_flash,
    ERASE_REGION: VirtualBoard._erase_region,
    READ_FLASH: VirtualBoard._read_flash,
    RUN_USER_CODE: VirtualBoard._run_user_code,
}
# the ROM's slow read, which the stub replaced by READ_FLASH
_ROM_COMMANDS: dict[int, _Handler] = {
    READ_FLASH_SLOW: VirtualBoard._read_flash_slow,
}


def main() -> None:  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chip", default="esp32", choices=["esp8266", "esp32"])
    ap.add_argument("--fault", default="none", choices=[f.value for f in Fault])
    ap.add_argument("--protocol", default="rfc2217", choices=["rfc2217", "socket"])
    ap.add_argument("--log", action="store_true")
    args = ap.parse_args()
    with VirtualBoard(args.chip, args.fault, protocol=args.protocol, log=args.log) as board:
        print(f"listening: {board.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)


if __name__ == "__main__":  # pragma: no cover
    main()

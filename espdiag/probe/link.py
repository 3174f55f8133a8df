"""The serial link: open any pyserial URL, drive DTR/RTS the way esptool does, name a port's holder.

pyserial is an optional dependency (``pip install 'espdiag[probe]'``); it is imported here only.
Every wait is bounded: reads use a short port timeout and a deadline, never a blocking read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import time
from collections.abc import Callable
from typing import Any

from espdiag.errors import EspdiagError

READ_SLICE = 0.02  # port read timeout: reads return at least this often, so deadlines hold
DEFAULT_RESET_DELAY = 0.05  # esptool's: how long GPIO0 stays low after EN is released


class ProbeUnavailable(EspdiagError):
    """The probe cannot run at all (pyserial missing, a URL pyserial does not know): exit code 2."""


def serial_module() -> Any:
    try:
        import serial
    except ImportError:
        raise ProbeUnavailable("'espdiag probe' needs pyserial: python3 -m pip install 'espdiag[probe]' "
                               "(or pip install pyserial)") from None
    return serial


class Link:
    """An open port. ``dtr``/``rts`` follow pyserial's sense: True = asserted (the line is low)."""

    def __init__(self, port: Any, url: str) -> None:
        self.port = port
        self.url = url
        self._initial = (bool(port.dtr), bool(port.rts))
        # False for a raw socket (no modem lines at all) and once the OS refused to set DTR/RTS (a pty)
        self.lines_work = not url.startswith("socket://")

    def _lines(self, action: Callable[[], None]) -> None:
        if not self.lines_work:
            return
        try:
            action()
        except OSError as e:
            # ENOTTY/EINVAL: this port has no modem lines (esptool warns "Chip was NOT reset" here)
            if e.errno not in (errno.ENOTTY, errno.EINVAL):
                raise
            self.lines_work = False

    @property
    def has_fileno(self) -> bool:
        try:
            self.port.fileno()
        except Exception:  # socket:// and rfc2217:// ports have none
            return False
        return True

    def set_dtr(self, state: bool) -> None:
        def act() -> None:
            self.port.dtr = state
        self._lines(act)

    def set_rts(self, state: bool) -> None:
        def act() -> None:
            self.port.rts = state
            # esptool's work-around for Windows usbser.sys: repeat DTR so the new RTS is sent
            self.port.dtr = self.port.dtr
        self._lines(act)

    def set_both(self, dtr: bool, rts: bool) -> None:
        self._lines(lambda: self._set_both(dtr, rts))

    def _set_both(self, dtr: bool, rts: bool) -> None:
        """Both lines in one ioctl where the OS allows it (esptool's Unix 'tight' reset), else one by one."""
        if os.name != "nt" and self.has_fileno:
            import fcntl
            import termios

            tiocmget = getattr(termios, "TIOCMGET", 0x5415)
            tiocmset = getattr(termios, "TIOCMSET", 0x5418)
            bit_dtr = getattr(termios, "TIOCM_DTR", 0x002)
            bit_rts = getattr(termios, "TIOCM_RTS", 0x004)
            status = struct.unpack("I", fcntl.ioctl(self.port.fileno(), tiocmget, struct.pack("I", 0)))[0]
            status = (status | bit_dtr) if dtr else (status & ~bit_dtr)
            status = (status | bit_rts) if rts else (status & ~bit_rts)
            fcntl.ioctl(self.port.fileno(), tiocmset, struct.pack("I", status))
            return
        self.port.dtr = dtr
        self.port.rts = rts

    def set_baud(self, baud: int) -> None:
        if self.port.baudrate != baud:
            self.port.baudrate = baud

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read_for(self, seconds: float, until: Callable[[bytes], bool] | None = None, limit: int = 65536) -> bytes:
        """Everything that arrives within ``seconds`` (or until ``until(data)`` holds), at most ``limit`` bytes."""
        deadline = time.monotonic() + seconds
        data = bytearray()
        while time.monotonic() < deadline and len(data) < limit:
            waiting = self.port.in_waiting
            chunk = self.port.read(min(max(1, waiting), limit - len(data)))
            if chunk:
                data += chunk
                if until is not None and until(bytes(data)):
                    break
        return bytes(data)

    def drain(self) -> None:
        with contextlib.suppress(Exception):
            self.port.reset_input_buffer()

    def restore(self) -> None:
        """Put DTR/RTS back as they were when the port opened; never raises (runs on the way out)."""
        with contextlib.suppress(Exception):
            self.port.dtr, self.port.rts = self._initial
        with contextlib.suppress(Exception):
            self.port.close()


def open_link(url: str, baud: int = 115200) -> Link:
    """Open ``url`` exclusively (a busy port fails here, as with esptool 4+). Raises pyserial's error."""
    serial = serial_module()
    try:
        port = serial.serial_for_url(url, do_not_open=True, baudrate=baud, timeout=READ_SLICE)
    except ValueError as e:  # an unknown URL scheme or bad parameter: the user's typo, not the board's
        raise ProbeUnavailable(f"{url}: {e}") from None
    if "://" not in url:
        # device paths only: pyserial's RFC 2217 client has no write timeout, URLs no exclusive lock
        port.write_timeout = 2
        with contextlib.suppress(AttributeError, ValueError):
            port.exclusive = True
    # idle lines before the open, so opening does not reset the chip through the auto-reset circuit
    port.dtr = False
    port.rts = False
    port.open()
    return Link(port, url)


def holders(path: str, limit: int = 4096) -> list[str]:
    """'PID (name)' of the processes that have ``path`` open, where the OS shows it (Linux /proc; own processes)."""
    try:
        target = os.path.realpath(path)
        pids = [p for p in os.listdir("/proc") if p.isdigit()][:limit]
    except OSError:
        return []
    found: list[str] = []
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # another user's process, or gone
        for fd in fds[:1024]:
            with contextlib.suppress(OSError):
                if os.readlink(f"{fd_dir}/{fd}") == target:
                    name = ""
                    with contextlib.suppress(OSError), open(f"/proc/{pid}/comm", encoding="utf-8") as f:
                        name = f.read().strip()
                    found.append(f"{pid} ({name})" if name else pid)
                    break
    return found

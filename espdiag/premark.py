"""Line marks computed ahead by a helper process, for a big log file on a machine with a spare CPU.

On a big log the scanner's cost is per line: splitting a block into lines, then looking every line up
among the distinct lines already parsed (which hashes all of it) to get its one-byte mark. The
attempt-level work that follows runs on the marks alone. So for a big regular file a forked helper
does the look-ups (and the parsing of new distinct lines) while the scanner does everything else:

* the helper reads the same file through its own positional reads (``os.pread``: the descriptor's
  offset stays the scanner's), splits it with the same reader, so its batches are the scanner's
  batches, and sends each batch's marks down a pipe;
* the scanner takes a batch's marks from the pipe and checks they fit (same first line, same number
  of lines); if they do not, or the helper is gone, it computes the marks itself from then on, so the
  result is always the one the sequential scan gives;
* the scanner still parses the lines it folds into a context or keeps as an attempt's events; when
  that is most lines (a log of distinct lines that is one long attempt), it ends the helper.

Off when ``ESPDIAG_JOBS=1``, on platforms without ``fork``, with one usable CPU, for pipes and small
files, and when other threads run (forking those is unsafe).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import struct
import threading
from collections.abc import Callable
from typing import BinaryIO

from espdiag.reader import iter_batches

MIN_BYTES = 32 << 20  # smaller files are scanned in one process: forking costs more than it saves
USELESS_AFTER = 20_000  # lines the scanner parsed itself before it may judge the helper useless
_HEADER = struct.Struct("<QI")  # number of the batch's first line, number of lines (= marks that follow)
_PIPE_BYTES = 1 << 20  # let the helper run ahead by this much (Linux; elsewhere the default)


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def wanted(size: int) -> bool:
    if os.environ.get("ESPDIAG_JOBS", "").strip() == "1":
        return False
    return size >= MIN_BYTES and hasattr(os, "fork") and _cpus() >= 2 and threading.active_count() == 1


class _PositionalReader:
    """``read(n)`` over a descriptor with its own offset, so two processes can share the descriptor."""

    def __init__(self, fd: int, offset: int) -> None:
        self.fd = fd
        self.offset = offset

    def read(self, n: int = -1) -> bytes:
        data = os.pread(self.fd, n, self.offset)
        self.offset += len(data)
        return data


class Helper:
    """The scanner's end of the pipe."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._pipe: BinaryIO | None = os.fdopen(fd, "rb", buffering=1 << 16)

    def marks(self, first: int, n: int) -> bytes | None:
        """The marks of the batch of ``n`` lines starting at line ``first``, or None from now on."""
        pipe = self._pipe
        if pipe is None:
            return None
        read = pipe.read
        head = read(_HEADER.size)
        if len(head) == _HEADER.size:
            got_first, got_n = _HEADER.unpack(head)
            if got_first == first and got_n == n:
                data: bytes = read(n)
                if len(data) == n:
                    return data
        self.close()  # out of step or gone: the scanner carries on by itself
        return None

    def close(self) -> None:
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()
        if self.pid:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
            self.pid = 0


def start(
    stream: BinaryIO, name: str, marks_of: Callable[[list[bytes]], bytes], prepare: Callable[[], object] = lambda: None
) -> Helper | None:
    """Fork a helper for ``stream`` if it is a big regular file; ``marks_of`` marks one batch.

    ``prepare`` runs before the fork, so that what both processes need (the parser) is loaded once.
    """
    try:
        fd = stream.fileno()
        offset = stream.tell()
        st = os.fstat(fd)
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode) or not wanted(st.st_size - offset):
        return None
    prepare()
    try:
        r, w = os.pipe()
    except OSError:
        return None
    with contextlib.suppress(ImportError, OSError, AttributeError):
        import fcntl

        fcntl.fcntl(w, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)
    try:
        pid = os.fork()
    except OSError:
        os.close(r)
        os.close(w)
        return None
    if pid == 0:  # pragma: no cover - the helper process (coverage does not follow a fork)
        code = 0
        try:
            os.close(r)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the scanner handles Ctrl-C and ends us
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _serve(_PositionalReader(fd, offset), name, w, marks_of)
        except BaseException:  # any failure: the scanner notices the short pipe
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    return Helper(pid, r)


def _serve(stream: _PositionalReader, name: str, fd: int, marks_of: Callable[[list[bytes]], bytes]) -> None:  # pragma: no cover
    with os.fdopen(fd, "wb", buffering=1 << 16) as out:
        for first, lines in iter_batches(stream, name):  # type: ignore[arg-type]
            marks = marks_of(lines)
            out.write(_HEADER.pack(first, len(marks)))
            out.write(marks)
            out.flush()  # the scanner is waiting for it

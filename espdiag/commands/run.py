"""``espdiag run [options] -- <upload command...>`` and ``... 2>&1 | espdiag --passthrough``.

Both show the upload's output as it arrives, unchanged, and diagnose it in the same pass: the
bytes are read once, in chunks, copied out and fed to the streaming diagnosis (``diagnose_stream``),
so memory does not grow with the length of the log.

``run``: the command's stdout and stderr, merged through one pipe, are copied byte for byte to
espdiag's stdout. When the command ends, the diagnosis is written to **stderr** (so stdout stays
exactly the command's output and ``--format json`` can be captured with ``2>report.json``), but
only if the upload failed: a non-zero exit or a failure found in the output. The exit code is the
command's own (128+N if a signal N killed it, 127 if it could not be started, 130 after Ctrl-C).
A stdout that is closed, gone or full never stops the upload: the copy to it stops, ``--tee``
keeps every byte, the diagnosis still goes to stderr, one line says what happened to stdout.
Once the command has exited, the pipe is read for at most ``DRAIN`` seconds more (a background
process it started may keep the pipe open for ever), and a signal then ends espdiag at once.

``--passthrough``: standard input is copied to stdout as it arrives and the diagnosis is appended
to stdout at end of input; the exit code is that of the plain ``espdiag`` command.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import BinaryIO, TextIO

from espdiag.api import diagnose_stream
from espdiag.errors import EspdiagError, ExitCode, InputError
from espdiag.inputs import STDIN_NAME, exit_code, note_incomplete
from espdiag.output import OutputError, silence_stdout, write_reports
from espdiag.report import Report
from espdiag.rules import RuleSet

CHUNK = 1 << 16
SNIFF = 4096  # the diagnosis gets at least this much (or all of a shorter log) in its first read
EXIT_CANNOT_RUN = 127
FORWARD_GRACE = 0.2  # seconds a terminal Ctrl-C (which reaches the child too) gets before we forward it
DRAIN = 0.5  # seconds to wait for more output once the command has exited
DRAIN_MAX = 5.0  # ... and to keep reading output that still flows (from a process it left running)
POLL = 0.1  # how often a blocked read checks whether the command has exited
TEXT_FORMATS = ("auto", "rich", "text")

Read = Callable[[int], bytes]


class _Sink:
    """Write bytes to a text stream's file descriptor unbuffered, or to its buffer when it has none.

    The first failed write (the reader went away, a full disk, a closed descriptor) stops the copy
    for good and is remembered in ``error``; the caller carries on reading its input.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.error: OSError | None = None
        self.fd: int | None = None
        if stream is None:  # started with stdout closed
            self.error = OSError(errno.EBADF, "standard output is closed")
            return
        try:
            self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        with contextlib.suppress(OSError, ValueError):
            stream.flush()

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def reader_gone(self) -> bool:
        return isinstance(self.error, BrokenPipeError)

    def write(self, data: bytes) -> None:
        if self.error is not None or not data or self.stream is None:
            return
        try:
            if self.fd is not None:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view) :]
            else:
                buffer: BinaryIO = self.stream.buffer
                buffer.write(data)
                buffer.flush()
        except (OSError, ValueError) as e:
            self.error = e if isinstance(e, OSError) else OSError(errno.EBADF, str(e))

    def problem(self) -> str | None:
        """One line for stderr when stdout failed for a reason other than its reader going away."""
        if self.error is None or self.reader_gone:
            return None
        if self.stream is None:
            return "standard output is closed, so the output was not shown"
        return f"standard output failed ({self.error.strerror or self.error}), so the output was not all shown"


class EchoReader:
    """A read-only binary stream that copies every chunk it reads to ``sinks`` before returning it.

    ``read(n)`` returns what has arrived (up to ``n`` bytes) as soon as anything has, so the copy
    is never delayed by the consumer's buffering; only the first read collects ``SNIFF`` bytes
    (echoing each piece at once) so the diagnosis can tell the log's encoding from a fair sample.
    """

    def __init__(self, read: Read, sinks: Sequence[Callable[[bytes], object]]) -> None:
        self._read = read
        self._sinks = sinks
        self._first = True
        self.eof = False
        self.total = 0
        self.last = b""

    def _chunk(self, n: int) -> bytes:
        if self.eof:
            return b""
        data = self._read(n)
        if not data:
            self.eof = True
            return b""
        for sink in self._sinks:
            sink(data)
        self.total += len(data)
        self.last = data[-1:]
        return data

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self._chunk(CHUNK), b""))
        if not self._first:
            return self._chunk(n)
        self._first = False
        parts = []
        got = 0
        while got < min(n, SNIFF):
            piece = self._chunk(n - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        """Copy out the rest of the input without diagnosing it."""
        while self._chunk(CHUNK):
            pass

    @property
    def ends_mid_line(self) -> bool:
        return self.total > 0 and self.last != b"\n"


def fd_reader(fd: int) -> Read:
    return lambda n: os.read(fd, n)


def stream_reader(stream: BinaryIO) -> Read:
    try:
        return fd_reader(stream.fileno())
    except (AttributeError, OSError, ValueError):
        read1 = getattr(stream, "read1", None)
        return read1 if callable(read1) else stream.read


def _diagnose_echoing(reader: EchoReader, name: str, rules: RuleSet) -> Report:
    """Diagnose while echoing; on any error still copy out the rest of the input, then re-raise."""
    try:
        return diagnose_stream(reader, name, rules)  # type: ignore[arg-type]
    except Exception:
        reader.drain()
        raise


def _write_report(report: Report, fmt: str, colour: str, verbose: bool, stream: TextIO, mid_line: bool) -> None:
    if mid_line:
        stream.write("\n")
    if fmt in TEXT_FORMATS:
        stream.write("\n")  # a blank line between the upload's output and the report
    stream.flush()
    write_reports([report], fmt, colour, verbose, stream)
    stream.flush()


# ---------------------------------------------------------------- espdiag --passthrough


def passthrough(files: Sequence[str], rules: RuleSet, fmt: str, colour: str, verbose: bool, exit_zero: bool) -> int:
    """Echo standard input to stdout as it arrives, then append its diagnosis; exit like ``espdiag``."""
    if any(f != "-" for f in files):
        raise InputError("--passthrough reads standard input only; give no FILE")
    sink = _Sink(sys.stdout)
    reader = EchoReader(stream_reader(sys.stdin.buffer), [sink.write])
    report = note_incomplete(_diagnose_echoing(reader, STDIN_NAME, rules))
    if sink.reader_gone:
        raise BrokenPipeError
    if sink.error is not None or sys.stdout is None:
        silence_stdout()
        raise OutputError(sink.problem() or "standard output failed")
    _write_report(report, fmt, colour, verbose, sys.stdout, reader.ends_mid_line)
    return exit_code([report], exit_zero)


# ---------------------------------------------------------------- espdiag run


def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


def _ended(returncode: int) -> str:
    """How the command ended, for the report: a signal by its name (137 means nothing to most people)."""
    if returncode >= 0:
        return f"The command exited with code {returncode}."
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"The command was killed by {name} (exit code {128 - returncode})."


class _Stop(BaseException):
    """A signal arrived after the command had exited: stop reading at once (not an Exception, so no
    handler on the way swallows it)."""


class _Watch:
    """What the reader of the command's output and the signal handler share."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.received: list[int] = []
        self.exited_at: float | None = None  # when the reader saw the command gone


def _command_reader(fd: int, watch: _Watch) -> Read:
    """Read the command's output; once the command has exited, stop after a short drain.

    A process the command left running (``setsid sleep 20 &``) may hold the pipe open long after the
    command is gone: waiting for its end would make espdiag hang. After a signal, only what is
    already in the pipe is read. Windows has no ``select`` on pipes, so there the read blocks until
    the pipe closes.
    """
    if os.name == "nt":
        return fd_reader(fd)

    def read(n: int) -> bytes:
        while True:
            if watch.exited_at is None and watch.proc.poll() is not None:
                watch.exited_at = time.monotonic()
            timeout = POLL
            if watch.exited_at is not None:
                waited = time.monotonic() - watch.exited_at
                if waited > DRAIN_MAX:
                    return b""
                timeout = 0.0 if watch.received else max(0.0, DRAIN - waited)
            ready, _, _ = select.select([fd], [], [], timeout)
            if ready:
                return os.read(fd, n)
            if watch.exited_at is not None:
                return b""

    return read


@contextlib.contextmanager
def _forward_signals(watch: _Watch) -> Iterator[None]:
    """While the child runs: Ctrl-C / SIGTERM / SIGHUP go to the child, not to us.

    A terminal's Ctrl-C reaches the whole foreground process group, the child included, so the
    first SIGINT is forwarded only if the child has not exited within ``FORWARD_GRACE``; a
    second one is sent on as SIGTERM and a third as SIGKILL. A signal that comes once the reader
    has seen the child exit (it is only draining the pipe) stops espdiag at once (``_Stop``).
    """
    proc, received = watch.proc, watch.received

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if watch.exited_at is not None:
            raise _Stop
        if proc.poll() is not None:
            return  # it just ended, likely by this very Ctrl-C: its last words are read, then we stop
        if signum == signal.SIGINT and received.count(signal.SIGINT) == 1:
            deadline = time.monotonic() + FORWARD_GRACE
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return
                time.sleep(0.01)
        with contextlib.suppress(OSError):
            if len(received) >= 3:
                proc.kill()
            elif len(received) == 2 and signum == signal.SIGINT:
                proc.terminate()
            else:
                proc.send_signal(signum)

    names = ("SIGINT", "SIGTERM", "SIGHUP")
    wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
    previous = {}
    for sig in wanted:
        with contextlib.suppress(ValueError, OSError):  # not the main thread
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _open_tee(tee: Path | None) -> BinaryIO | None:
    if tee is None:
        return None
    try:
        return open(tee, "wb", buffering=0)  # closed by the caller
    except OSError as e:
        raise InputError(f"--tee {tee}: cannot write: {e.strerror or e}") from None


def _source(command: Sequence[str], tee: Path | None) -> str:
    """The report's source: the --tee file (its line numbers are the report's), else the command in
    angle brackets, which every format shows as a name and none takes for a file to point at."""
    if tee is not None:
        return str(tee)
    name = shlex.join(command)
    return f"<{name[:197] + '...' if len(name) > 200 else name}>"


def _diagnose_command(watch: _Watch, reader: EchoReader, name: str, rules: RuleSet) -> Report | None:
    """Diagnose the command's output as it runs; never lose the command to a problem in the diagnosis."""
    try:
        with _forward_signals(watch):
            try:
                return _diagnose_echoing(reader, name, rules)
            except EspdiagError as e:
                print(f"espdiag: cannot diagnose the output: {e}", file=sys.stderr)
            except Exception as e:
                print(f"espdiag: internal error while diagnosing: {type(e).__name__}: {e}", file=sys.stderr)
    except _Stop:
        pass
    return None


def run_command(
    command: Sequence[str],
    rules: RuleSet,
    fmt: str = "auto",
    colour: str = "auto",
    verbose: bool = False,
    tee: Path | None = None,
    probe: bool = False,
) -> int:
    """Run ``command``, echo its merged output to stdout, diagnose it; return the command's exit code."""
    tee_file = _open_tee(tee)
    sink = _Sink(sys.stdout)
    try:
        try:
            proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            print(f"espdiag: cannot run {command[0]!r}: {reason}", file=sys.stderr)
            return EXIT_CANNOT_RUN
        sinks: list[Callable[[bytes], object]] = [sink.write]
        if tee_file is not None:
            sinks.append(tee_file.write)
        assert proc.stdout is not None
        watch = _Watch(proc)
        reader = EchoReader(_command_reader(proc.stdout.fileno(), watch), sinks)
        report = _diagnose_command(watch, reader, _source(command, tee), rules)
        proc.stdout.close()
        returncode = proc.wait()
    finally:
        if tee_file is not None:
            tee_file.close()
    code = _finish(returncode, watch.received, report, sink, reader.ends_mid_line, (fmt, colour, verbose))
    if probe and report is not None and not watch.received and (code != 0 or report.verdict == "failure"):
        from espdiag.probe.hook import probe_after_upload  # espdiag run --probe (issue 15)

        probe_after_upload(report, rules, fmt, colour, verbose, sys.stderr)
    return code


def _finish(returncode: int, received: list[int], report: Report | None, sink: _Sink, mid_line: bool,
            style: tuple[str, str, bool]) -> int:
    problem = sink.problem()
    if problem:
        print(f"espdiag: {problem}", file=sys.stderr)
    if sink.broken:
        silence_stdout()  # nothing pending may fail again at exit
    if received:
        first = received[0]
        return int(ExitCode.INTERRUPTED) if first == signal.SIGINT else 128 + first
    code = _exit_code(returncode)
    if report is not None and (code != 0 or report.verdict == "failure"):
        if code != 0:
            report.notes.append(_ended(returncode))
        with contextlib.suppress(OSError):  # stderr gone too: the exit code is all that is left
            _write_report(report, *style, sys.stderr, mid_line)
    return code

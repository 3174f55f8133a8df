"""``espdiag run [options] -- <upload command...>`` and ``... 2>&1 | espdiag --passthrough``.

Both show the upload's output as it arrives, unchanged, and diagnose it in the same pass: the
bytes are read once, in chunks, copied out and fed to the streaming diagnosis (``diagnose_stream``),
so memory does not grow with the length of the log.

``run``: the command's stdout and stderr, merged through one pipe, are copied byte for byte to
espdiag's stdout. When the command ends, the diagnosis is written to **stderr** (so stdout stays
exactly the command's output and ``--format json`` can be captured with ``2>report.json``), but
only if the upload failed: a non-zero exit or a failure found in the output. The exit code is the
command's own (128+N if a signal N killed it, 127 if it could not be started, 130 after Ctrl-C).

``--passthrough``: standard input is copied to stdout as it arrives and the diagnosis is appended
to stdout at end of input; the exit code is that of the plain ``espdiag`` command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
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
from espdiag.output import prepare_stdout, write_reports
from espdiag.report import Report
from espdiag.rulecache import load_rules
from espdiag.rules import RuleSet

CHUNK = 1 << 16
SNIFF = 4096  # the diagnosis gets at least this much (or all of a shorter log) in its first read
EXIT_CANNOT_RUN = 127
FORWARD_GRACE = 0.2  # seconds a terminal Ctrl-C (which reaches the child too) gets before we forward it
TEXT_FORMATS = ("auto", "rich", "text")

Read = Callable[[int], bytes]


class _Sink:
    """Write bytes to a text stream's file descriptor unbuffered, or to its buffer when it has none."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.broken = False
        self.fd: int | None
        try:
            self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        with contextlib.suppress(OSError, ValueError):
            stream.flush()

    def write(self, data: bytes) -> None:
        if self.broken or not data:
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
        except BrokenPipeError:
            # the reader went away (... | head): stop echoing, keep reading so the writer is not stopped
            self.broken = True


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
    out = prepare_stdout()
    sink = _Sink(out)
    reader = EchoReader(stream_reader(sys.stdin.buffer), [sink.write])
    report = _diagnose_echoing(reader, "<stdin>", rules)
    if sink.broken:
        raise BrokenPipeError
    _write_report(report, fmt, colour, verbose, out, reader.ends_mid_line)
    if not exit_zero and report.verdict == "failure":
        return ExitCode.FAILURE
    return ExitCode.OK


# ---------------------------------------------------------------- espdiag run


def build_parser(prog: str = "espdiag run") -> argparse.ArgumentParser:
    from espdiag.main import _add_output_options, _add_rules_option, _Parser

    p = _Parser(
        prog=prog,
        usage=f"{prog} [options] -- COMMAND [ARG...]",
        description="Run an upload command, show its output unchanged as it arrives, and if the upload "
        "fails, print the diagnosis (to stderr) when it ends. Exits with the command's exit code "
        "(127 if it cannot be started, 130 on Ctrl-C).",
        epilog="examples:\n  espdiag run -- esptool.py --port /dev/ttyUSB0 write_flash 0x0 fw.bin\n"
        "  espdiag run --tee upload.log -- pio run -t upload\n"
        "  espdiag run --format json -- arduino-cli upload -p COM3 2>report.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_output_options(p)
    _add_rules_option(p)
    p.add_argument("--tee", metavar="FILE", type=Path, help="also write the command's raw output to FILE")
    p.add_argument("--probe", action="store_true",
                   help="if the upload failed and the log cannot decide, probe the board on its port (espdiag probe)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the upload command and its arguments, after '--'")
    return p


def run_main(argv: Sequence[str]) -> int:
    argv = list(argv)
    p = build_parser()
    if "--" in argv:  # everything after the first '--' is the command, even words that look like options
        cut = argv.index("--")
        args = p.parse_args(argv[:cut])
        if args.command:
            p.error(f"unexpected argument {args.command[0]!r} before '--'")
        args.command = argv[cut + 1 :]
    else:
        args = p.parse_args(argv)
    if not args.command:
        p.error("no command given: espdiag run [options] -- COMMAND [ARG...]")
    rules = load_rules(args.rules)
    return run_command(args.command, rules, args.format, args.colour, args.verbose, args.tee, args.probe)


def _exit_code(returncode: int) -> int:
    return returncode if returncode >= 0 else 128 - returncode


@contextlib.contextmanager
def _forward_signals(proc: subprocess.Popen[bytes], received: list[int]) -> Iterator[None]:
    """While the child runs: Ctrl-C / SIGTERM / SIGHUP go to the child, not to us.

    A terminal's Ctrl-C reaches the whole foreground process group, the child included, so the
    first SIGINT is forwarded only if the child has not exited within ``FORWARD_GRACE``; a
    second one is sent on as SIGTERM and a third as SIGKILL.
    """

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        if proc.poll() is not None:
            return
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
    name = shlex.join(command)
    if len(name) > 200:
        name = name[:197] + "..."
    tee_file = None
    if tee is not None:
        try:
            tee_file = open(tee, "wb", buffering=0)  # noqa: SIM115 - closed below
        except OSError as e:
            raise InputError(f"--tee {tee}: cannot write: {e.strerror or e}") from None
    try:
        try:
            proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        except (OSError, ValueError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            print(f"espdiag: cannot run {command[0]!r}: {reason}", file=sys.stderr)
            return EXIT_CANNOT_RUN
        sink = _Sink(sys.stdout)
        sinks: list[Callable[[bytes], object]] = [sink.write]
        if tee_file is not None:
            sinks.append(tee_file.write)
        assert proc.stdout is not None
        reader = EchoReader(fd_reader(proc.stdout.fileno()), sinks)
        received: list[int] = []
        report: Report | None = None
        with _forward_signals(proc, received):
            try:
                report = _diagnose_echoing(reader, name, rules)
            except EspdiagError as e:
                print(f"espdiag: cannot diagnose the output: {e}", file=sys.stderr)
            except Exception as e:  # never lose the command's exit code to a bug in the diagnosis
                print(f"espdiag: internal error while diagnosing: {type(e).__name__}: {e}", file=sys.stderr)
            proc.stdout.close()
            returncode = proc.wait()
    finally:
        if tee_file is not None:
            tee_file.close()
    if received:
        first = received[0]
        return int(ExitCode.INTERRUPTED) if first == signal.SIGINT else 128 + first
    code = _exit_code(returncode)
    if report is not None and (code != 0 or report.verdict == "failure"):
        if code != 0:
            report.notes.append(f"The command exited with code {code}.")
        _write_report(report, fmt, colour, verbose, sys.stderr, reader.ends_mid_line)
        if probe:
            from espdiag.probe.hook import probe_after_upload

            probe_after_upload(report, rules, fmt, colour, verbose, sys.stderr)
    return code

"""``espdiag probe [--port PORT] [--chip ...]``: ask the board itself, read-only, and diagnose what it says.

Exit codes as for diagnose: 0 nothing wrong found, 1 a problem found (the port included), 2 usage or the
probe cannot run (pyserial missing, an unknown URL scheme, no port given and none found).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from espdiag.errors import ExitCode
from espdiag.output import FORMATS, prepare_stdout, write_reports
from espdiag.rules import RuleSet

if TYPE_CHECKING:
    from espdiag.probe.report import ProbeReport

CHIPS = ("auto", "esp8266", "esp32", "esp32s2", "esp32s3", "esp32c2", "esp32c3", "esp32c6", "esp32h2")
PROBE_FORMATS = tuple(f for f in FORMATS if f not in ("github", "sarif"))

DESCRIPTION = (
    "Ask the board why uploads fail. Opens PORT (a device path, or any pyserial URL such as "
    "rfc2217://host:port or socket://host:port), checks that it opens and takes writes, resets the chip into "
    "normal boot and listens to its ROM (74880 baud ESP8266, 115200 ESP32), resets it into download mode with "
    "esptool's DTR/RTS sequences, sends SYNC at 115200 then 57600 and, if the ROM answers, reads the chip and "
    "flash id. Everything the board printed is diagnosed like an upload log. Safe: it never writes or erases "
    "flash, never touches eFuses, bounds every step by a timeout and puts DTR/RTS back on exit or Ctrl-C. "
    "Needs pyserial: pip install 'espdiag[probe]'."
)
EPILOG = """\
examples:
  espdiag probe --port /dev/ttyUSB0
  espdiag probe --port COM5 --chip esp32 --format markdown
  espdiag probe --port rfc2217://testfarm:4000 --format json

exit codes: 0 the board answered and nothing is wrong
            1 a problem was found (a missing, busy or forbidden port too)
            2 usage error, or the probe cannot run (no pyserial)
            130 interrupted
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.05 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text} is not between 0.05 and 10 seconds")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The probe's options (main.py builds the parser, as for every command, and adds --rules)."""
    p.add_argument("--port", "-p", help="serial port or pyserial URL (default: the only USB serial port present)")
    p.add_argument("--chip", "-c", default="auto", choices=CHIPS, metavar="CHIP",
                   help=f"{', '.join(CHIPS)} (default: auto)")
    p.add_argument("--format", "-f", default="auto", choices=PROBE_FORMATS, metavar="FORMAT",
                   help=f"{', '.join(PROBE_FORMATS)} (default: rich on a terminal, text otherwise)")
    p.add_argument("--color", "--colour", dest="colour", default="auto", choices=("auto", "always", "never"),
                   metavar="WHEN", help="auto, always, never: colour in the terminal report")
    p.add_argument("--verbose", "-v", action="store_true", help="show every cause, not only the top five")
    p.add_argument("--quiet", "-q", action="store_true", help="do not echo the probe's steps to standard error")
    p.add_argument("--listen", type=_seconds, default=0.8, metavar="SECONDS",
                   help="how long to listen after each reset (default 0.8)")


def _default_port() -> str:
    from espdiag.probe.link import ProbeUnavailable, serial_module

    serial_module()
    from serial.tools import list_ports

    usb = [p.device for p in list_ports.comports() if getattr(p, "vid", None) is not None]
    if len(usb) == 1:
        return str(usb[0])
    found = ", ".join(usb) if usb else "none found"
    raise ProbeUnavailable(f"give the board's port with --port (USB serial ports: {found})")


def probe(a: argparse.Namespace, rules: RuleSet) -> int:
    """Run the probe with the parsed options and print the report; the exit code as documented above."""
    from espdiag.probe.report import diagnose_transcript
    from espdiag.probe.steps import Probe, Timing

    port = a.port or _default_port()
    say = None if a.quiet else (lambda line: print(f"  {line}", file=sys.stderr, flush=True))
    transcript = Probe(port, a.chip, Timing(listen=a.listen), say).run()
    report = diagnose_transcript(transcript, rules)
    write_probe_report(report, a.format, a.colour, a.verbose, prepare_stdout())
    return ExitCode.FAILURE if report.verdict == "failure" else ExitCode.OK


def write_probe_report(report: ProbeReport, fmt: str, colour: str, verbose: bool, out: TextIO) -> None:
    """The usual report, then the transcript its evidence points into (JSON: a 'transcript' key)."""
    if fmt == "json":
        from espdiag.render.json_out import to_dict

        data = to_dict(report)
        data["transcript"] = list(report.transcript)
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        write_reports([report], fmt, colour, verbose, out)
        write_transcript(report.transcript, fmt, out)
    out.flush()


def write_transcript(lines: Sequence[str], fmt: str, out: TextIO) -> None:
    """The transcript after the report: the evidence line numbers point into it."""
    width = len(str(len(lines)))
    body = [f"{i:>{width}} | {line}" for i, line in enumerate(lines, 1)]
    write = out.write
    if fmt == "markdown":
        from espdiag.render.markdown import _fence

        fence = _fence(body)
        write(f"\n<details><summary>Probe transcript ({len(lines)} lines)</summary>\n\n{fence}text\n")
        write("\n".join(body) + f"\n{fence}\n\n</details>\n")
    else:
        write("\nProbe transcript:\n" + "".join(f"  {b}\n" for b in body))

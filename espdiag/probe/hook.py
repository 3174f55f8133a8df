"""``espdiag run --probe``: after a failed upload whose diagnosis stays ambiguous, probe the port the log names.

Kept out of commands/run.py so that the hook there is two lines: the upload's report is printed first,
then (to the same stream) the probe's, each with its own evidence.
"""

from __future__ import annotations

import sys
from typing import TextIO

from espdiag.probe.link import ProbeUnavailable
from espdiag.report import Report
from espdiag.rules import RuleSet

_CHIP_OPTIONS = {"ESP8266": "esp8266", "ESP8285": "esp8266", "ESP32": "esp32"}


def chip_option(chip: object) -> str:
    """The probe's --chip for a chip named in the log (ESP32-S3 -> esp32s3), 'auto' when unsure."""
    from espdiag.commands.probe import CHIPS

    text = str(chip or "").upper()
    option = _CHIP_OPTIONS.get(text) or text.lower().replace("-", "")
    return option if option in CHIPS else "auto"


def probe_after_upload(report: Report, rules: RuleSet, fmt: str, colour: str, verbose: bool, stream: TextIO) -> None:
    """Probe the upload's port when the upload failed and its top causes are close (the report has checks)."""
    port = report.context.get("port")
    if report.verdict != "failure" or not report.checks:
        return  # the log decided on its own: no reason to touch the board
    if not port:
        print("espdiag: --probe: the log names no port to probe", file=stream)
        return
    from espdiag.commands.probe import write_probe_report
    from espdiag.probe.report import diagnose_transcript
    from espdiag.probe.steps import Probe

    print(f"\nespdiag: the log cannot decide; probing {port} ...", file=stream, flush=True)
    try:
        transcript = Probe(str(port), chip_option(report.context.get("chip")),
                           say=lambda line: print(f"  {line}", file=sys.stderr, flush=True)).run()
    except ProbeUnavailable as e:
        print(f"espdiag: --probe: {e}", file=stream)
        return
    probe_report = diagnose_transcript(transcript, rules)
    stream.write("\n")
    write_probe_report(probe_report, fmt, colour, verbose, stream)

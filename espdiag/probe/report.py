"""Diagnose a probe transcript with the usual grammar and rules, and merge its phases into one report.

Each phase is diagnosed as a log of its own, with the port lines in front so that the context (port,
OS) is known: the normal-boot phase is boot output (rules with ``verdict: any`` read its banner), the
download phase is an upload attempt. Causes found in both combine as independent evidence, the same
way ranking.py combines rules. Evidence line numbers are those of the whole transcript.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from espdiag.api import diagnose_text
from espdiag.events import Event, FieldValue
from espdiag.probe.steps import Transcript
from espdiag.ranking import Cause
from espdiag.report import Report
from espdiag.rules import RuleSet

_ESP8266_MODE = re.compile(r"boot mode:\((\d+),(\d+)\)")
_ESP32_BOOT = re.compile(r"boot:0x([0-9a-fA-F]{1,2})\b")
_ESP32_BITS = ((0x20, "GPIO12 (MTDI)"), (0x10, "GPIO0"), (0x08, "GPIO2"), (0x04, "GPIO4"), (0x02, "GPIO15 (MTDO)"),
               (0x01, "GPIO5"))


@dataclasses.dataclass
class ProbeReport(Report):
    transcript: tuple[str, ...] = ()
    chip: str | None = None
    flash_id: int | None = None

    @property
    def summary(self) -> str:
        if self.verdict == "failure":
            if not self.causes:
                return "The probe found a problem that no rule explains."
            return f"The probe found a problem: {self.causes[0].title}."
        if self.verdict == "success":
            flash = f", flash id 0x{self.flash_id:06x}" if self.flash_id is not None else ""
            return f"The board answered ({self.chip or 'chip'}{flash}); nothing wrong found."
        return "The probe could not tell whether the board works."


def strapping_notes(lines: list[str]) -> Iterator[str]:
    """What the ROM read from its strapping pins, spelled out per banner (the rules decide what is wrong)."""
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        m = _ESP8266_MODE.search(line)
        if m and m.group(0) not in seen:
            seen.add(m.group(0))
            v = int(m.group(1))
            pins = f"GPIO15={v >> 2 & 1}, GPIO0={v >> 1 & 1}, GPIO2={v & 1}"
            yield f"Line {number}: '{m.group(0)}' means the ROM read {pins} at reset (normal boot is 0,1,1; download 0,0,1)."
        m = _ESP32_BOOT.search(line)
        if m and "rst:" in line and m.group(0) not in seen:
            seen.add(m.group(0))
            v = int(m.group(1), 16)
            pins = ", ".join(f"{name}={int(bool(v & bit))}" for bit, name in _ESP32_BITS)
            yield f"Line {number}: '{m.group(0)}' means the ROM read {pins} at reset."


def _shift(cause: Cause, head: int, offset: int) -> Cause:
    """Evidence of a phase diagnosed as 'head port lines + phase lines' renumbered into the transcript."""
    def move(e: Event) -> Event:
        return e if e.line <= head else dataclasses.replace(e, line=e.line - head + offset)
    return dataclasses.replace(cause, evidence=tuple(move(e) for e in cause.evidence))


def _combine(a: Cause, b: Cause) -> Cause:
    best, other = (a, b) if a.confidence >= b.confidence else (b, a)
    evidence = {e.line: e for e in (*a.evidence, *b.evidence)}
    return dataclasses.replace(
        best,
        confidence=round(min(0.99, 1 - (1 - a.confidence) * (1 - b.confidence)), 3),
        evidence=tuple(sorted(evidence.values(), key=lambda e: e.line)),
        evidence_counts={**other.evidence_counts, **best.evidence_counts},
        fixes=tuple(dict.fromkeys((*best.fixes, *other.fixes))),
        docs=tuple(dict.fromkeys((*best.docs, *other.docs))),
        rules=tuple(dict.fromkeys((*best.rules, *other.rules))),
        notes=tuple(dict.fromkeys((*best.notes, *other.notes))),
    )


def diagnose_transcript(t: Transcript, rules: RuleSet | None = None) -> ProbeReport:
    port_lines = t.phases[0].lines if t.phases else []
    head = len(port_lines)
    merged: dict[str, Cause] = {}
    context: dict[str, FieldValue] = {}
    failed = False
    offset = head
    for index, phase in enumerate(t.phases):
        lines = phase.lines if index == 0 else [*port_lines, *phase.lines]
        if index > 0 and not phase.lines:
            continue
        r = diagnose_text("\n".join(lines) + "\n", f"probe {phase.name}", rules)
        context.update(r.context)
        failed = failed or r.verdict == "failure" or any(c.confidence >= 0.5 for c in r.causes)
        for cause in r.causes:
            moved = _shift(cause, head, offset) if index > 0 else cause
            merged[cause.id] = _combine(merged[cause.id], moved) if cause.id in merged else moved
        if index > 0:
            offset += len(phase.lines)
    if t.chip:
        context["chip"] = t.chip
    context["probe_url"] = t.url
    causes = sorted(merged.values(), key=lambda c: (-c.confidence, c.id))
    verdict = "failure" if failed else ("success" if t.answered else "unknown")
    transcript = tuple(t.lines())
    notes = list(t.notes) + list(strapping_notes(list(transcript)))[:4]
    return ProbeReport(
        source=f"probe {t.url}", verdict=verdict, context=dict(sorted(context.items())), causes=causes,
        attempts=1, failed_attempts=int(failed), first_line=1 if transcript else 0, last_line=len(transcript),
        lines=len(transcript), notes=notes, transcript=transcript, chip=t.chip, flash_id=t.flash_id,
    )

"""The result of diagnosing one log: verdict, context, ranked causes. Renderers only read this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from espdiag.events import FieldValue
from espdiag.ranking import Cause

if TYPE_CHECKING:
    from espdiag.checks import Selected

SCHEMA = 1
LIKELY = 0.5  # a cause below this confidence is a guess, and worded as one
# what to try when the log shows a failure that no rule explains
CHECKLIST = (
    "Check that the selected port is the board's port (unplug the board and see which port disappears).",
    "Use a USB cable known to carry data, plugged straight into the computer (no hub).",
    "Close every program that may hold the port: serial monitors, other IDE windows, 3D-printer hosts.",
    "Put the chip in download mode by hand: hold BOOT/FLASH (GPIO0), tap RESET/EN, release BOOT, upload.",
    "Lower the upload speed to 115200 baud.",
    "Disconnect everything wired to the board's pins and try again.",
)


@dataclass
class Report:
    source: str
    verdict: str  # failure | success | unknown
    context: dict[str, FieldValue]
    causes: list[Cause]
    attempts: int = 1  # upload attempts; 0 when the log holds no upload
    failed_attempts: int = 0
    first_line: int = 0
    last_line: int = 0
    lines: int = 0
    notes: list[str] = field(default_factory=list)
    # False for a log with no upload in it, only the chip's boot output (a serial monitor capture):
    # its verdict is about that output (failure: it shows a problem; success: it booted from flash)
    upload: bool = True

    @property
    def tool(self) -> str | None:
        tool = self.context.get("tool")
        return str(tool) if tool else None

    @property
    def checklist(self) -> tuple[str, ...]:
        confident = [c for c in self.causes if c.confidence >= 0.5]
        return CHECKLIST if self.verdict == "failure" and not confident else ()

    @property
    def checks(self) -> list[Selected]:
        """Tell-apart checks when the log cannot decide between its top causes (espdiag/checks.py)."""
        from espdiag.checks import select

        return select(self.verdict, self.causes, self.context)

    @property
    def headline(self) -> str:
        """The verdict in one or two words, for the first line of a human report."""
        if not self.upload:
            return {"failure": "BOOT PROBLEM", "success": "BOOTED"}.get(self.verdict, "BOOT OUTPUT")
        return self.verdict.upper()

    @property
    def summary(self) -> str:
        top = self.causes[0] if self.causes else None
        if top is not None and top.confidence < LIKELY:
            # a guess is not stated as a fact
            cause = f"possible cause ({top.confidence:.0%}): {top.title}."
        else:
            cause = f"{top.title}." if top is not None else ""
        if not self.upload:
            start = "This log holds no upload, only the chip's boot output"
            if self.verdict == "failure":
                return f"{start}, and it shows a problem: {cause}"
            if self.verdict == "success":
                return f"{start}; the chip booted from flash, so the firmware was written."
            return f"{start}; it shows no clear problem" + (f", {cause}" if top is not None else ".")
        if self.verdict == "success":
            return "The upload succeeded."
        if self.verdict == "unknown":
            return "No upload result found in this log."
        if top is None:
            return "The upload failed, and no rule explains why."
        if top.confidence < LIKELY:
            return f"The upload failed; {cause}"
        return f"The upload failed: {cause}"

"""Split the event stream into upload attempts and keep each one in bounded memory.

A paste often holds several attempts ("tried again at 115200: ..."); a serial capture of a retry
loop holds thousands. An attempt keeps, per event kind, the first and last few events and an exact
count, so rules see the beginning, the end and the totals however long the log is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from espdiag import context as ctxmod
from espdiag.events import KINDS, Event, FieldValue

KEEP = 12  # events kept at each end, per kind
MAX_DISTINCT = 10_000  # distinct line texts counted per attempt


Kept = tuple[int, str, Mapping[str, FieldValue]]  # (line, text, fields): an Event made only when asked for


@dataclass
class _KindStore:
    count: int = 0
    first: list[Kept] = field(default_factory=list)
    last: deque[Kept] = field(default_factory=lambda: deque(maxlen=KEEP))


@dataclass
class Session:
    index: int  # 1-based attempt number
    first_line: int = 0
    last_line: int = 0
    kinds: dict[str, _KindStore] = field(default_factory=dict)
    context: ctxmod.Context = field(default_factory=dict)
    progressed: bool = False
    failure_seen: int = 0  # line of the last failure event, 0 if none
    success_seen: int = 0  # line of the last conclusive success event (hash verified), 0 if none
    weak_success: bool = False  # a wrapper said "done", which some print even after a failure
    text_counts: dict[str, int] = field(default_factory=dict)
    _events: list[Event] | None = None

    def add(self, event: Event) -> None:
        self.keep(event.kind, event.line, event.text, event.fields)

    def keep(self, kind: str, line: int, text: str, fields: Mapping[str, FieldValue]) -> None:
        store = self.kinds.get(kind)
        if store is None:
            store = self.kinds[kind] = _KindStore()
        store.count += 1
        counts = self.text_counts
        if text in counts:
            counts[text] += 1
        elif len(counts) < MAX_DISTINCT:
            counts[text] = 1
        if len(store.first) < KEEP:
            store.first.append((line, text, fields))
        else:
            store.last.append((line, text, fields))
        if not self.first_line:
            self.first_line = line
        self.last_line = line
        self._events = None

    def count(self, kind: str) -> int:
        store = self.kinds.get(kind)
        return store.count if store else 0

    def events(self) -> list[Event]:
        """The kept events in line order."""
        if self._events is None:
            out: list[Event] = []
            for kind, store in self.kinds.items():
                out.extend(Event(kind, line, text, fields) for line, text, fields in store.first)
                out.extend(Event(kind, line, text, fields) for line, text, fields in store.last)
            out.sort(key=lambda e: e.line)
            self._events = out
        return self._events

    @property
    def verdict(self) -> str:
        return verdict(self.success_seen, self.failure_seen, self.weak_success)


class VerdictInputs(Protocol):
    progressed: bool
    failure_seen: int
    success_seen: int
    weak_success: bool


def note(target: VerdictInputs, line: int, bits: int) -> None:
    """Fold one event's effect (see :func:`effect`) into an attempt's verdict inputs."""
    if bits:
        target.progressed = True
        if bits & FAILURE:
            target.failure_seen = line
        elif bits & WEAK:
            target.weak_success = True
        elif bits & SUCCESS:
            target.success_seen = line


def verdict(success_seen: int, failure_seen: int, weak_success: bool) -> str:
    """An attempt's verdict from its verdict inputs (``Session.verdict``; the scanner uses it directly)."""
    # a success after the last failure means a retry inside the attempt worked
    if success_seen and success_seen > failure_seen:
        return "success"
    if failure_seen:
        return "failure"
    return "success" if weak_success else "unknown"


class Tracker:
    """Feeds events into sessions; keeps only the current one and the last failing one."""

    def __init__(self) -> None:
        self.current = Session(index=1)
        self.last_failure: Session | None = None
        self.last_success: Session | None = None
        self.attempts = 1
        self.failed_attempts = 0
        self.events_seen = 0
        self.lines_other = 0

    def add(self, line: int, kind: str, text: str, fields: Mapping[str, FieldValue]) -> None:
        self.events_seen += 1
        if kind == "other":
            self.lines_other += 1
        info = KINDS[kind]
        session = self.current
        if info.role == "start" and session.progressed:
            self._close()
            session = self.current
        session.keep(kind, line, text, fields)
        note(session, line, effect(kind, fields))
        if updates_context(kind):
            ctxmod.update(session.context, kind, fields, text)

    def _close(self) -> None:
        done = self.current
        verdict = done.verdict
        if verdict == "failure":
            self.last_failure = done
            self.failed_attempts += 1
        elif verdict == "success":
            self.last_success = done
        self.attempts += 1
        # context the wrapper printed once (IDE banner, OS) carries over to the next attempt
        inherited = {k: v for k, v in done.context.items() if k in _STICKY}
        self.current = Session(index=self.attempts, context=inherited)

    def result(self) -> tuple[Session, int, int, int]:
        """The attempt to diagnose, the number of attempts, how many of them failed, and ``unfinished``.

        That is the last attempt, unless it has no result: then the last failed attempt, when no success
        came after it. Trailing text (no progress) is not an attempt at all; an attempt that progressed
        but ends without a result (a paste cut short, a capture of a retry loop stopped mid-way) is
        counted and its number returned as ``unfinished`` (else 0), so that the report can say which
        attempt it explains.
        """
        cur = self.current
        failed = self.failed_attempts + (1 if cur.verdict == "failure" else 0)
        attempts = self.attempts
        failure = self.last_failure  # the last failed attempt, unless a success came after it
        if failure is not None and self.last_success is not None and self.last_success.index > failure.index:
            failure = None
        if failure is not None and cur.verdict == "failure" and _wrapper_summary(cur):
            # a start line (ESP-IDF's "esptool.py ..." echo, an IDE's command line) between the
            # flasher's error and the wrapper's own "exit status 2" / "make: *** Error 2": the wrapper
            # is reporting the attempt before, not starting one
            for key, value in cur.context.items():
                failure.context.setdefault(key, value)
            return self._finished(failure), attempts - 1, failed - 1, 0
        if cur.verdict == "unknown" and self.attempts > 1:
            if cur.progressed:
                if failure is not None:
                    return self._finished(failure), attempts, failed, cur.index
                return self._finished(cur), attempts, failed, 0
            attempts -= 1  # trailing text after the last attempt is not an attempt
            if failure is not None:
                # a command line pasted after the error output still describes that attempt
                for key, value in cur.context.items():
                    failure.context.setdefault(key, value)
                return self._finished(failure), attempts, failed, 0
            if self.last_success is not None:
                return self._finished(self.last_success), attempts, failed, 0
        return self._finished(cur), attempts, failed, 0

    @staticmethod
    def _finished(session: Session) -> Session:
        ctxmod.finish(session.context)
        return session


WRAPPER_FAILURES = {"exit_status", "upload_error"}  # a wrapper summing up the flasher's failure


def _wrapper_summary(session: Session) -> bool:
    """The attempt holds nothing but start/info lines and a wrapper's failure summary."""
    return all(kind in WRAPPER_FAILURES or KINDS[kind].role in ("start", "info", "other") for kind in session.kinds)


# the data went through but nothing verified it (truncated pastes, --no-stub, v5 logs without "Leaving")
_WEAK_SUCCESS = {"wrapper_success", "wrote", "hard_reset", "leaving"}


PROGRESSED, FAILURE, SUCCESS, WEAK = 1, 2, 4, 8


def effect(kind: str, fields: Mapping[str, FieldValue]) -> int:
    """How one event moves its attempt's verdict, as bits: PROGRESSED | one of FAILURE, WEAK, SUCCESS.

    The one place that decides it: ``Tracker.add`` and the bulk path in scanner.py both use it.
    """
    role = KINDS[kind].role
    if role in ("info", "start", "other"):
        return 0
    if role == "failure":
        return PROGRESSED | FAILURE
    if kind in _WEAK_SUCCESS or (kind == "writing" and _percent(fields) >= 100):
        return PROGRESSED | WEAK
    if role == "success":
        return PROGRESSED | SUCCESS
    return PROGRESSED


def updates_context(kind: str) -> bool:
    """Whether ``Tracker.add`` folds an event of this kind into the attempt's context: the kinds
    ``context.update`` reads, so the many lines it would ignore (features, hints, tracebacks) cost nothing."""
    # failures too: "Failed to connect to ESP32-S2: ..." names the chip when nothing else does
    return KINDS[kind].role in ("start", "failure") or kind in _CONTEXT_KINDS


def _percent(fields: Mapping[str, FieldValue]) -> int:
    value = fields.get("percent", 0)
    return value if isinstance(value, int) else 0
_STICKY = {"os", "os_version", "env", "board", "board_style", "chip", "tool", "tool_version"}
# besides start and failure events (see context.update; build_info and others carry ESPHome's "INFO")
_CONTEXT_KINDS = {
    "ide_banner", "serial_port", "pio_port_search", "ck_setting", "build_info", "chip_detect", "chip_is",
    "connected", "baud_change", "writing", "baud_retry", "wrapper_success",
}

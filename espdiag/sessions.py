"""Split the event stream into upload attempts and keep each one in bounded memory.

A paste often holds several attempts ("tried again at 115200: ..."); a serial capture of a retry
loop holds thousands. An attempt keeps, per event kind, the first and last few events and an exact
count, so rules see the beginning, the end and the totals however long the log is.

This module alone decides what an event does to an attempt: ``Tracker.add`` one event at a time,
``Session.record`` for an attempt's kept events, ``plan_run``/``Session.apply`` for a run of lines at
once, ``Attempts`` for which attempts a report can use. The fast path (scanner.py) only calls these.
``judge`` turns the diagnosed attempt's verdict into the reported one.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from espdiag import context as ctxmod
from espdiag.events import KINDS, Event, FieldValue

KEEP = 12  # events kept at each end, per kind
KEEP_OTHER = 24  # unknown lines kept per attempt; the rest are only counted
MAX_DISTINCT = 10_000  # distinct line texts counted per attempt ...
MAX_DISTINCT_BYTES = 1 << 20  # ... holding at most this much text (a line is at most 4 KB)


Kept = tuple[int, str, Mapping[str, FieldValue]]  # (line, text, fields): an Event made only when asked for


@dataclass
class KindStore:
    """The events of one kind in an attempt: how many, and the first and last ``KEEP`` of them."""

    count: int = 0
    first: list[Kept] = field(default_factory=list)
    last: deque[Kept] = field(default_factory=lambda: deque(maxlen=KEEP))


@dataclass
class Session:
    index: int  # 1-based attempt number
    first_line: int = 0
    last_line: int = 0
    kinds: dict[str, KindStore] = field(default_factory=dict)
    context: ctxmod.Context = field(default_factory=dict)
    progressed: bool = False
    failure_seen: int = 0  # line of the last failure event, 0 if none
    success_seen: int = 0  # line of the last conclusive success event (hash verified), 0 if none
    weak_success: bool = False  # a wrapper said "done", which some print even after a failure
    text_counts: dict[str, int] = field(default_factory=dict)
    text_bytes: int = 0  # the size of the texts in text_counts
    _events: list[Event] | None = None

    def record(self, kind: str, line: int, text: str, fields: Mapping[str, FieldValue]) -> None:
        """What one event does to the attempt's kept events and verdict inputs (``Tracker.add``)."""
        if kind == "other" and self.count("other") >= KEEP_OTHER:
            return  # counted by the tracker only
        self.keep(kind, line, text, fields)
        note(self, line, effect(kind, fields))

    def keep(self, kind: str, line: int, text: str, fields: Mapping[str, FieldValue]) -> None:
        store = self.kinds.get(kind)
        if store is None:
            store = self.kinds[kind] = KindStore()
        store.count += 1
        self._count_text(text, 1)
        if len(store.first) < KEEP:
            store.first.append((line, text, fields))
        else:
            store.last.append((line, text, fields))
        if not self.first_line:
            self.first_line = line
        self.last_line = line
        self._events = None

    def _count_text(self, text: str, n: int) -> None:
        counts = self.text_counts
        if text in counts:
            counts[text] += n
        elif len(counts) < MAX_DISTINCT and self.text_bytes + len(text) <= MAX_DISTINCT_BYTES:
            counts[text] = n
            self.text_bytes += len(text)

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

    # ------------------------------------------------------------------ a run of lines at once
    def plan_state(self) -> tuple[tuple[tuple[str, int], ...], int]:
        """The little of this attempt's state that :func:`plan_run` depends on (a memo key for plans)."""
        other = self.kinds.get("other")
        return tuple([(k, len(st.first)) for k, st in self.kinds.items()]), other.count if other else 0

    def apply(self, plan: RunPlan, base: int) -> None:
        """Keep a run of lines planned by :func:`plan_run`; its first line is line number ``base``.

        The same result as :meth:`record` for each of its lines, in order."""
        kinds = self.kinds
        for kind, total, head, tail in plan.kinds:
            store = kinds.get(kind)
            if store is None:
                store = kinds[kind] = KindStore()
            store.count += total
            if head:
                store.first.extend([(base + p, text, fields) for p, text, fields in head])
            if tail:
                store.last.extend([(base + p, text, fields) for p, text, fields in tail])
        for text, n in plan.texts:
            self._count_text(text, n)
        if plan.last < 0:
            return
        if not self.first_line:
            self.first_line = base + plan.first
        self.last_line = base + plan.last
        self._events = None
        if plan.progressed:
            self.progressed = True
        if plan.failure_seen >= 0:
            self.failure_seen = base + plan.failure_seen
        if plan.success_seen >= 0:
            self.success_seen = base + plan.success_seen
        if plan.weak_success:
            self.weak_success = True


class Line(Protocol):
    """One physical line holding one logical line or none (``kind`` is "" for a blank line)."""

    kind: str
    text: str
    fields: dict[str, FieldValue]
    effect: int  # effect(kind, fields)


Entry = tuple[int, str, Mapping[str, FieldValue]]  # (position in the run, text, fields)


class RunPlan:
    """What keeping a run of lines does to an attempt, with positions relative to the run's first line.

    A retry loop repeats the same runs, so a caller may memoise plans on the run and on
    :meth:`Session.plan_state`."""

    __slots__ = ("failure_seen", "first", "kinds", "last", "progressed", "success_seen", "texts", "weak_success")

    def __init__(self) -> None:
        self.kinds: list[tuple[str, int, list[Entry], list[Entry]]] = []  # kind, events kept, first, last
        self.texts: list[tuple[str, int]] = []  # text and occurrences kept, in order of first occurrence
        self.first = -1
        self.last = -1
        self.failure_seen = -1
        self.success_seen = -1
        self.progressed = False
        self.weak_success = False

    def size(self) -> int:
        """How many entries the plan holds (what memoising it costs)."""
        return 1 + len(self.texts) + sum(len(h) + len(t) for _, _, h, t in self.kinds)


def plan_run(run: Sequence[Line], session: Session) -> RunPlan:
    """Plan keeping ``run`` (lines with no ``start`` event) in ``session``, as :meth:`Session.record` would."""
    counts = Counter(run)
    if len(counts) * 6 > len(run):
        return _plan_by_walking(run, session)  # few repeats: one pass is cheaper than searching
    return _plan_by_counting(run, counts, session)


def _plan_by_walking(run: Sequence[Line], session: Session) -> RunPlan:
    """Step through the run like :meth:`Session.record` does."""
    plan = RunPlan()
    store = session.kinds.get("other")
    room = KEEP_OTHER - (store.count if store else 0)
    filled = {k: len(st.first) for k, st in session.kinds.items()}
    totals: dict[str, int] = {}
    heads: dict[str, list[Entry]] = {}
    tails: dict[str, deque[Entry]] = {}
    texts: dict[str, int] = {}
    for p, rec in enumerate(run):
        kind = rec.kind
        if not kind:
            continue
        if kind == "other":
            if room <= 0:
                continue
            room -= 1
        totals[kind] = totals.get(kind, 0) + 1
        texts[rec.text] = texts.get(rec.text, 0) + 1
        entry = (p, rec.text, rec.fields)
        if filled.get(kind, 0) < KEEP:
            filled[kind] = filled.get(kind, 0) + 1
            heads.setdefault(kind, []).append(entry)
        else:
            tail = tails.get(kind)
            if tail is None:
                tail = tails[kind] = deque(maxlen=KEEP)
            tail.append(entry)
        if plan.first < 0:
            plan.first = p
        plan.last = p
        note(plan, p, rec.effect)  # positions relative to the run; -1 when none
    plan.kinds = [(k, n, heads.get(k, []), list(tails.get(k, ()))) for k, n in totals.items()]
    plan.texts = list(texts.items())
    return plan


class _Positions:
    """Where the occurrences of a line are in a run, found with ``list.index`` (in C)."""

    def __init__(self, run: Sequence[Line]) -> None:
        self.run = list(run)
        self._rev: list[Line] | None = None

    def first(self, rec: Line, m: int) -> list[int]:
        out = []
        pos = -1
        index = self.run.index
        for _ in range(m):
            pos = index(rec, pos + 1)
            out.append(pos)
        return out

    def last(self, rec: Line, m: int) -> list[int]:
        if self._rev is None:
            self._rev = self.run[::-1]
        out = []
        pos = -1
        index = self._rev.index
        top = len(self.run) - 1
        for _ in range(m):
            pos = index(rec, pos + 1)
            out.append(top - pos)
        return out


def _note_latest(plan: RunPlan, pos: int, bits: int) -> None:
    """:func:`note` for positions that do not come in order: the latest one wins."""
    if bits:
        plan.progressed = True
        if bits & FAILURE:
            plan.failure_seen = max(plan.failure_seen, pos)
        elif bits & WEAK:
            plan.weak_success = True
        elif bits & SUCCESS:
            plan.success_seen = max(plan.success_seen, pos)


Stored = tuple[str, int, list[int], list[int]]  # kind, events kept, first and last positions


def _plan_by_counting(run: Sequence[Line], counts: Counter[Line], session: Session) -> RunPlan:
    """The same plan as :func:`_plan_by_walking`, from exact counts and the first/last positions of
    each distinct line: a run with many repeats costs per distinct line, not per line."""
    plan = RunPlan()
    by_kind: dict[str, list[Line]] = {}
    for rec in counts:
        if rec.kind:  # not blank after normalising
            by_kind.setdefault(rec.kind, []).append(rec)
    where = _Positions(run)
    texts: list[tuple[int, str, int]] = []  # (first position, text, occurrences kept)
    stored: list[Stored] = []
    others = by_kind.pop("other", None)
    if others:
        stored.extend(_plan_other(others, counts, where, session, texts))
    for kind, recs in by_kind.items():
        stored.append(_plan_kind(kind, recs, counts, where, session, texts, plan))
    for kind, total, head, tail in stored:
        plan.kinds.append((kind, total, _entries(run, head), _entries(run, tail)))
        _span(plan, head, tail)
    texts.sort(key=lambda t: t[0])
    plan.texts = [(text, n) for _, text, n in texts]
    return plan


def _entries(run: Sequence[Line], positions: list[int]) -> list[Entry]:
    return [(p, run[p].text, run[p].fields) for p in positions]


def _span(plan: RunPlan, head: list[int], tail: list[int]) -> None:
    hi = max(tail[-1] if tail else -1, head[-1] if head else -1)
    if hi < 0:
        return
    lo = head[0] if head else tail[0]
    plan.last = max(plan.last, hi)
    plan.first = lo if plan.first < 0 else min(plan.first, lo)


def _plan_other(
    recs: list[Line], counts: Counter[Line], where: _Positions, session: Session, texts: list[tuple[int, str, int]]
) -> list[Stored]:
    """Unknown lines: only the first ``KEEP_OTHER`` of the attempt are kept."""
    store = session.kinds.get("other")
    room = KEEP_OTHER - (store.count if store else 0)
    if room <= 0:
        return []
    owner: dict[int, Line] = {}
    for rec in recs:
        owner.update(dict.fromkeys(where.first(rec, min(room, counts[rec])), rec))
    kept = sorted(owner)[:room]
    seen: dict[Line, list[int]] = {}
    for pos in kept:
        seen.setdefault(owner[pos], []).append(pos)
    texts.extend((got[0], rec.text, len(got)) for rec, got in seen.items())
    cut = max(KEEP - (len(store.first) if store else 0), 0)
    return [("other", len(kept), kept[:cut], kept[cut:][-KEEP:])]


def _plan_kind(
    kind: str, recs: list[Line], counts: Counter[Line], where: _Positions, session: Session,
    texts: list[tuple[int, str, int]], plan: RunPlan,
) -> Stored:
    store = session.kinds.get(kind)
    need = KEEP - (len(store.first) if store else 0)
    total = 0
    head: list[int] = []
    tail: list[int] = []
    for rec in recs:
        n = counts[rec]
        total += n
        got = where.first(rec, min(max(need, 1), n))
        texts.append((got[0], rec.text, n))
        if need > 0:
            head.extend(got)
        back = where.last(rec, min(KEEP, n))
        tail.extend(back)
        _note_latest(plan, back[0], rec.effect)  # back[0] is the last occurrence
    head.sort()
    head = head[: max(need, 0)]
    taken = set(head)
    tail = sorted(p for p in set(tail) if p not in taken)[-KEEP:]
    return kind, total, head, tail


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


A = TypeVar("A")


class Attempts(Generic[A]):
    """The attempts a report can use: the current one, the last failed one and the last successful one,
    and how many there were. :class:`Tracker` keeps sessions in it; the scanner keeps attempts it
    builds into sessions only at the end (scanner.py)."""

    def __init__(self, first: A) -> None:
        self.current = first
        self.last_failure: A | None = None
        self.last_success: A | None = None
        self.attempts = 1
        self.failed_attempts = 0

    def close(self, verdict: str, following: A) -> None:
        """The current attempt ended with ``verdict``; ``following`` is the next one."""
        done = self.current
        if verdict == "failure":
            self.closed(1, 1, done, None, following)
        else:
            self.closed(1, 0, None, done if verdict == "success" else None, following)

    def closed(self, n: int, failed: int, last_failure: A | None, last_success: A | None, current: A) -> None:
        """``n`` attempts ended at once, ``failed`` of them failed; the last failed and the last successful
        of them (None if there was none), and the attempt that follows them."""
        self.attempts += n
        self.failed_attempts += failed
        if last_failure is not None:
            self.last_failure = last_failure
        if last_success is not None:
            self.last_success = last_success
        self.current = current


def starts_attempt(kind: str, current: VerdictInputs) -> bool:
    """A ``start`` event after progress ends the current attempt and opens the next."""
    return current.progressed and KINDS[kind].role == "start"


def inherited(context: Mapping[str, FieldValue]) -> ctxmod.Context:
    """The context the next attempt inherits: what the wrapper printed once (IDE banner, OS)."""
    return {k: v for k, v in context.items() if k in _STICKY}


class Tracker(Attempts[Session]):
    """Feeds events into sessions; keeps only the attempts a report can use."""

    def __init__(self) -> None:
        super().__init__(Session(index=1))
        self.events_seen = 0
        self.lines_other = 0

    def add(self, line: int, kind: str, text: str, fields: Mapping[str, FieldValue]) -> None:
        self.events_seen += 1
        if kind == "other":
            self.lines_other += 1
        session = self.current
        if starts_attempt(kind, session):
            session = Session(index=self.attempts + 1, context=inherited(session.context))
            self.close(self.current.verdict, session)
        session.record(kind, line, text, fields)
        if updates_context(kind):
            ctxmod.update(session.context, kind, fields, text)

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


# ------------------------------------------------------------------------------- the reported verdict
@dataclass
class Judgement:
    """The verdict to report for the diagnosed attempt, where the log's own events are not the whole story,
    and the notes that explain an override (``notes`` come first in the report, ``late_notes`` last)."""

    verdict: str
    boot_only: bool = False  # the log holds the chip's boot output and nothing of an upload
    failed_after_rules: bool = False  # after_rules made it a failure: the attempt counts as failed
    notes: list[str] = field(default_factory=list)
    late_notes: list[str] = field(default_factory=list)

    def after_rules(self, session: Session, problem: bool) -> None:
        """``problem``: a cause the rules found is confident (>= 0.5)."""
        if not problem:
            return
        if self.verdict == "success" and not self.boot_only and not verified(session):
            # nothing confirmed the write (no "Hash of data verified") and the log shows a problem
            self.verdict = "failure"
            self.failed_after_rules = True
            self.late_notes.append("Nothing in the log verifies the written data, and the log shows a problem.")
        elif self.boot_only:
            # the boot output itself shows a problem (strapping pins, brownout): not a healthy result
            self.verdict = "failure"


def judge(session: Session) -> Judgement:
    """The verdict before the rules run: the attempt's own, unless the log says more."""
    judgement = Judgement(session.verdict)
    # no upload at all: the report has its own wording for that (report.py)
    judgement.boot_only = judgement.verdict == "unknown" and boot_output_only(session)
    if judgement.boot_only and boot_only_success(session):
        judgement.verdict = "success"
    if judgement.verdict == "failure" and failed_only_after_upload(session):
        judgement.verdict = "success"
        judgement.notes.append("The data was written and verified; the error came from a step after the upload "
                               "(resetting the chip or opening a monitor).")
    return judgement


_BOOT_KINDS = frozenset({"rom_banner_8266", "rom_banner_32", "rom_boot_note", "brownout", "flash_read_err",
                         "invalid_header"})


def boot_output_only(session: Session) -> bool:
    """The log holds the chip's boot output and nothing of an upload (no flasher, no wrapper)."""
    kinds = session.kinds
    return any(k in _BOOT_KINDS for k in kinds) and all(KINDS[k].role in ("info", "other") for k in kinds)


def boot_only_success(session: Session) -> bool:
    """A log with no upload at all but a ROM banner that booted from flash: the upload went through."""
    for e in session.events():
        if e.kind == "rom_banner_32" and "FLASH" in str(e.get("boot_name", "")):
            return True
        if e.kind == "rom_banner_8266" and e.get("mode") == 3:
            return True
    return False


def verified(session: Session) -> bool:
    return bool(session.count("hash_verified") or session.count("ck_done"))


def failed_only_after_upload(session: Session) -> bool:
    """The flasher verified the data, and only the wrapper's summary failed afterwards (a reset or
    monitor step after the write, e.g. an ESP32-S3 left in download mode): the upload itself worked."""
    events = session.events()
    last_verified = max((e.line for e in events if e.kind == "hash_verified"), default=0)
    later = [e for e in events if e.line > last_verified and e.role == "failure"]
    return bool(last_verified and later) and all(e.kind in WRAPPER_FAILURES for e in later)

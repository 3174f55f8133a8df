"""The fast path from a log's bytes to a session tracker: block at a time, not line at a time.

``scan`` gives exactly the result of feeding every logical line to :meth:`Tracker.add` in order (the
reference loop in ``tests/test_scan_equivalence.py``), but it does almost no Python-level work per
line, and little per attempt, on a big log. What an event does to an attempt is decided in
sessions.py alone (``Session.record``, and ``plan_run``/``Session.apply`` for a run of lines at once;
``Attempts`` for which attempts a report can use); this module only decides when to call them:

* the reader splits a whole block into lines in C; each distinct physical line is decoded,
  normalised and parsed once (``_Line``, memoised on its raw bytes), and a batch becomes one byte
  per line (``_Line.mark``: start, failure, success, progress, context...) by a C-level lookup;
* attempts are cut with ``bytes.find`` on the marks (an attempt ends at the first ``start`` line after
  progress); for each one only the verdict inputs (``rfind`` on the marks) and the context (folded in
  line order, memoised on interned contexts) are computed eagerly;
* the kept events of an attempt (the expensive part) are deferred: only the current, last failed
  and last successful attempts are built at the end, by replaying their lines through sessions.py
  (``Scanner._build``). An attempt holding too many pending lines, or lines the cache is about to
  let go, is built early.

Memory stays flat: every cache and memo here is bounded in entries and in (estimated) bytes, and a
batch is cut into slices of at most ``BATCH_LINES`` lines (``tests/test_scan_equivalence.py`` checks
the bounds on a generated log).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import chain, compress
from operator import attrgetter
from typing import BinaryIO

from espdiag import context as ctxmod
from espdiag.events import KINDS, FieldValue
from espdiag.normalise import normalise
from espdiag.parse import parse_line
from espdiag.reader import iter_batches
from espdiag.sessions import (
    FAILURE,
    SUCCESS,
    WEAK,
    Attempts,
    RunPlan,
    Session,
    Tracker,
    effect,
    inherited,
    note,
    plan_run,
    starts_attempt,
    updates_context,
    verdict,
)

BATCH_LINES = 16_384  # a longer batch is fed in slices: per-batch structures stay small
CACHE_LINES = 20_000  # distinct physical lines remembered ...
CACHE_BYTES = 4 << 20  # ... and what they cost (estimated: raw bytes and RAW_BYTES each)
RAW_BYTES = 150  # what remembering one raw line costs besides its bytes
TEXT_LINES = 20_000  # distinct parsed records (by their text after normalising) remembered ...
TEXT_BYTES = 10 << 20  # ... and what they cost (estimated: twice the text, and RECORD_BYTES each)
RECORD_BYTES = 400  # what one parsed record costs besides its text
MIN_RUN = 12  # shorter runs go line by line: the bulk set-up costs more than it saves
MEMO_RUN = 4096  # longer runs are planned afresh (their set-up cost is spread over many lines)
MEMO_ENTRIES = 4096  # entries in each memo (plans, contexts, interned contexts) ...
PLAN_REFS = 1 << 18  # ... memoised plans holding at most this many line references and entries
CONTEXT_MEMO_BYTES = 2 << 20  # ... folded contexts, keyed on raw lines of at most this size in all
INTERN_BYTES = 2 << 20  # ... interned contexts holding at most this much
SHAPE_BYTES = 1 << 20  # attempt shapes (their marks) remembered, in bytes
PENDING_BYTES = 8 << 20  # what an attempt's pending lines may hold (estimated) before it is built ...
BATCH_BYTES = 2 << 20  # ... counting each batch it refers to as this much: a batch is one block the reader
# read (1 MiB, plus the unfinished line before it, at most 64 KiB; more after transcoding UTF-16), or a
# slice of it, and a reference to any of its lines keeps it all

Item = tuple[str, str, dict[str, FieldValue]]  # (text, kind, fields) of one logical line

# One mark byte per physical line, so that a whole batch is classified by C-level bytes operations.
# A line that also updates the context (``updates_context``) has the lower-case letter (":" for ".").
MANY = b"M"  # several logical lines: replayed alone, like a start line
START = b"S"  # a ``start`` event (always folded into the context)
UNKNOWN = b"O"  # a line the grammar does not know
BLANK = b"_"  # nothing after normalising
FAILED = b"F"  # a failure event
VERIFIED = b"K"  # a conclusive success
WEAK_SUCCESS = b"W"  # a weak success (the wrapper said "done")
PROGRESS = b"P"  # other progress
NOTHING = b"."  # an event with no effect on the verdict
_EFFECTS = b"FKWPfkwp"  # the marks of lines with progress


class _Line:
    """One distinct physical line, parsed; shared by every occurrence (compared by identity)."""

    __slots__ = ("alone", "effect", "fields", "items", "kind", "mark", "text")

    def __init__(self, items: tuple[Item, ...]) -> None:
        self.items = items
        self.kind = ""  # "" for a blank line: no event at all
        self.text = ""
        self.fields: dict[str, FieldValue] = {}
        self.effect = 0
        # replayed on its own, not in a bulk run: it may start an attempt, or holds several lines
        self.alone = True
        if len(items) > 1:
            self.mark = MANY[0]
            return
        if not items:
            self.alone = False
            self.mark = BLANK[0]
            return
        self.text, self.kind, self.fields = items[0]
        self.effect = effect(self.kind, self.fields)
        if KINDS[self.kind].role == "start":
            self.mark = START[0]
            return
        self.alone = False
        self.mark = _mark(self.kind, self.effect, updates_context(self.kind))


def _mark(kind: str, bits: int, ctx: bool) -> int:
    if bits & FAILURE:
        c = FAILED
    elif bits & WEAK:
        c = WEAK_SUCCESS
    elif bits & SUCCESS:
        c = VERIFIED
    elif bits:
        c = PROGRESS
    else:
        c = UNKNOWN if kind == "other" else NOTHING
    if ctx:
        c = b":" if c == NOTHING else c.lower()
    return c[0]


_VERDICT = bytes.maketrans(b"fkwp:", b"FKWP.")  # marks without the context letters
_PROGRESS = bytes.maketrans(b"FKW", b"PPP")  # every line with progress as P (after _VERDICT)
_CONTEXT = bytes(1 if chr(c) in "Sfkwp:" else 0 for c in range(256))  # 1 for lines folded into the context
_ALONE = attrgetter("alone")
# One whole attempt inside a batch, in the marks: its start line, anything up to its first progress,
# then everything up to (not including) the next start line, which must be there.
_ATTEMPT = re.compile(rb"S[^%s]*[%s][^S]*(?=S)" % (_EFFECTS, _EFFECTS))
_BLANK = _Line(())


def parse_raw(raw: bytes) -> tuple[Item, ...]:
    """Decode, normalise and parse one physical line into its logical lines."""
    return _parse_texts(_texts(raw))


def _texts(raw: bytes) -> tuple[str, ...]:
    return tuple(normalise(raw.decode("utf-8", "replace")))


def _parse_texts(texts: tuple[str, ...]) -> tuple[Item, ...]:
    return tuple((t, *_kind_fields(t)) for t in texts)


def _kind_fields(text: str) -> tuple[str, dict[str, FieldValue]]:
    kind, fields = parse_line(text)
    return kind, dict(fields)


class _Ctx:
    """A context as its items in insertion order, interned so that memo keys hash by identity."""

    __slots__ = ("items", "sticky")

    def __init__(self, items: tuple[tuple[str, FieldValue], ...]) -> None:
        self.items = items
        self.sticky: _Ctx | None = None  # what the next attempt inherits (sessions.inherited)


def _context_cost(items: tuple[tuple[str, FieldValue], ...]) -> int:
    return 64 + sum(64 + (len(v) if isinstance(v, str) else 0) for _, v in items)


# a stretch of lines an attempt has not built yet: (batch lines, start, end, number of lines[0]), or
# the logical lines of one physical line: (line, items)
Pending = tuple[list[bytes], int, int, int] | tuple[int, tuple[Item, ...]]


class _Batch:
    """One batch of lines and its marks, while it is fed."""

    __slots__ = ("base", "context_flags", "context_lines", "context_used", "lines", "marks", "progress", "verdicts")

    def __init__(self, lines: list[bytes], marks: bytes, base: int) -> None:
        self.lines = lines
        self.base = base  # number of lines[0]
        self.marks = marks  # _Line.mark of each line
        self.verdicts = marks.translate(_VERDICT)  # the marks without the context letters
        self.progress = self.verdicts.translate(_PROGRESS)  # P for every line with progress
        self.context_flags = marks.translate(_CONTEXT)  # 1 for a line folded into the context
        self.context_lines = tuple(compress(lines, self.context_flags))  # those lines, in order
        self.context_used = 0  # how many of them the attempts have folded so far


class _Attempt:
    """What the scanner knows eagerly about one attempt: its verdict inputs and context.

    Its kept events (``Session.kinds``, ``text_counts``...) are built only if it is needed, by replaying
    its pending lines through sessions.py (``Scanner._build``): most attempts of a retry loop are
    dropped unbuilt.
    """

    __slots__ = ("batch", "ctx", "failure_seen", "held", "index", "pending", "progressed", "session", "success_seen",
                 "weak_success")

    def __init__(self, index: int, ctx: _Ctx) -> None:
        self.index = index
        self.ctx = ctx
        self.progressed = False
        self.failure_seen = 0
        self.success_seen = 0
        self.weak_success = False
        self.pending: list[Pending] = []
        self.held = 0  # what the pending lines hold, estimated in bytes
        self.batch: list[bytes] | None = None  # the lines of the last batch it refers to
        self.session: Session | None = None

    @property
    def verdict(self) -> str:
        return verdict(self.success_seen, self.failure_seen, self.weak_success)


Closed = tuple[int, _Ctx, int, int]  # an attempt closed inside a batch: index, context, first and end line


class Scanner:
    def __init__(self) -> None:
        self.lines = 0
        self.events_seen = 0
        self.lines_other = 0
        self.parsed = 0  # distinct lines (after normalising) this scanner parsed
        self._cache: dict[bytes, _Line] = {b"": _BLANK}
        self._by_text: dict[tuple[str, ...], _Line] = {(): _BLANK}  # parsed records, by their texts
        self._marks: dict[bytes, int] = {b"": _BLANK.mark}
        self._cache_bytes = 0
        self._text_bytes = 0
        self._plans: dict[object, RunPlan] = {}
        self._plan_refs = 0
        self._shapes: dict[bytes, tuple[int, int, str]] = {}
        self._shape_bytes = 0
        self._contexts: dict[tuple[_Ctx, tuple[bytes, ...]], _Ctx] = {}
        self._context_bytes = 0
        self._interned: dict[object, _Ctx] = {}
        self._intern_bytes = 0
        self.book: Attempts[_Attempt] = Attempts(_Attempt(1, self._intern(())))

    def memory(self) -> dict[str, int]:
        """What each bounded structure holds now, in the units of its bound (a test checks them)."""
        return {
            "cache_lines": len(self._cache), "cache_bytes": self._cache_bytes, "texts": len(self._by_text),
            "text_bytes": self._text_bytes, "plans": len(self._plans),
            "plan_refs": self._plan_refs, "shape_bytes": self._shape_bytes, "contexts": len(self._contexts),
            "context_bytes": self._context_bytes, "interned": len(self._interned), "intern_bytes": self._intern_bytes,
            "pending_bytes": max([a.held for a in self._unbuilt()], default=0),
        }

    def _unbuilt(self) -> list[_Attempt]:
        book = self.book
        return [a for a in (book.current, book.last_failure, book.last_success) if a is not None and a.pending]

    # ------------------------------------------------------------------------- distinct lines
    def _learn(self, lines: list[bytes], build: bool = True) -> None:
        """Parse the batch's lines not seen yet (the caches are bounded: clear them when they would overflow).

        Before letting the cache go, the attempts whose pending lines it holds are built (``build``), so
        that nothing is parsed twice; a build that meets an unknown line learns it without that step.
        """
        new = set(lines)
        new.difference_update(self._cache.keys())
        if not new:
            return
        texts = {raw: _texts(raw) for raw in new}
        raw_full, text_full = self._overflow(texts)
        if raw_full or text_full:
            if build:
                for att in self._unbuilt():
                    self._build(att)
            self._forget(text_full)
            for raw in set(lines).difference(texts):  # cached before, forgotten now
                texts[raw] = _texts(raw)
            texts.pop(b"", None)
        self._cache_bytes += sum(map(len, texts)) + RAW_BYTES * len(texts)
        cache = self._cache
        marks = self._marks
        for raw, text in texts.items():
            rec = self._record(text)
            cache[raw] = rec
            marks[raw] = rec.mark

    def _overflow(self, texts: dict[bytes, tuple[str, ...]]) -> tuple[bool, bool]:
        """Whether learning these raw lines (and their texts) would overflow the raw cache, the records."""
        raw_cost = sum(map(len, texts)) + RAW_BYTES * len(texts)
        raw_full = len(self._cache) + len(texts) > CACHE_LINES or self._cache_bytes + raw_cost > CACHE_BYTES
        fresh = set(texts.values()).difference(self._by_text)
        text_cost = 2 * sum(map(len, chain.from_iterable(fresh))) + RECORD_BYTES * len(fresh)
        text_full = len(self._by_text) + len(fresh) > TEXT_LINES or self._text_bytes + text_cost > TEXT_BYTES
        return raw_full, text_full

    def _record(self, texts: tuple[str, ...]) -> _Line:
        # Distinct raw lines often share their text: a serial monitor stamps every line with the time
        # ("12:34:56.789 -> "), which normalising removes. Such lines share one record, which
        # outlives the raw lines in the cache.
        rec = self._by_text.get(texts)
        if rec is None:
            rec = self._by_text[texts] = _Line(_parse_texts(texts))
            self._text_bytes += 2 * sum(map(len, texts)) + RECORD_BYTES
            self.parsed += 1
        return rec

    def _forget(self, texts: bool) -> None:
        """Clear the raw-line cache, and with ``texts`` the parsed records and the plans that hold them."""
        self._cache.clear()
        self._cache[b""] = _BLANK
        self._marks.clear()
        self._marks[b""] = _BLANK.mark
        self._cache_bytes = 0
        if texts:
            self._by_text.clear()
            self._by_text[()] = _BLANK
            self._text_bytes = 0
            self._plans.clear()
            self._plan_refs = 0

    def _records(self, lines: list[bytes]) -> list[_Line]:
        try:
            return list(map(self._cache.__getitem__, lines))
        except KeyError:  # the cache was cleared since these lines were marked
            self._learn(lines, build=False)
            return list(map(self._cache.__getitem__, lines))

    def _marks_of(self, lines: list[bytes]) -> bytes:
        """One mark (``_Line.mark``) per line, parsing the lines not seen yet."""
        try:
            return bytes(map(self._marks.__getitem__, lines))
        except KeyError:
            self._learn(lines)
            return bytes(map(self._marks.__getitem__, lines))

    # ------------------------------------------------------------------------- feeding
    def feed(self, first: int, lines: list[bytes]) -> None:
        """Feed one batch of physical lines; ``first`` is the number of ``lines[0]``."""
        if len(lines) <= BATCH_LINES:
            self._feed(first, lines)
            return
        for i in range(0, len(lines), BATCH_LINES):
            self._feed(first + i, lines[i : i + BATCH_LINES])

    def _feed(self, first: int, lines: list[bytes]) -> None:
        if not lines:
            return
        marks = self._marks_of(lines)
        n = len(lines)
        self.lines = first + n - 1
        many = marks.count(MANY)
        self.events_seen += n - marks.count(BLANK) - many
        self.lines_other += marks.count(UNKNOWN)
        batch = _Batch(lines, marks, first)
        lo = 0
        while many:
            j = marks.find(MANY, lo)
            self._block(batch, lo, j)
            self._many(self._records([lines[j]])[0], first + j)
            lo = j + 1
            many -= 1
        self._block(batch, lo, n)

    def _block(self, batch: _Batch, lo: int, hi: int) -> None:
        """Fold ``lines[lo:hi]`` (one logical line or none each) into the attempts, closing them.

        An attempt ends at the first ``start`` line after progress: ``find`` on the marks gives it.
        """
        if lo >= hi:
            return
        if self.book.current.progressed:
            c = batch.marks.find(START, lo, hi)
        else:
            q = batch.progress.find(PROGRESS, lo, hi)
            c = batch.marks.find(START, q, hi) if q >= 0 else -1
        if c < 0:
            self._stretch(batch, lo, hi)
            return
        if c > lo:
            self._stretch(batch, lo, c)
        self._close()
        self._stretch(batch, self._whole_attempts(batch, c, hi), hi)

    def _whole_attempts(self, batch: _Batch, c: int, hi: int) -> int:
        """Close the attempts wholly inside ``lines[c:hi]``; return where the last one (still open) starts.

        Each starts afresh and holds progress, so one regex over the marks cuts them all (in C), and
        what each one's marks mean (verdict, context lines) is memoised on its marks: a retry loop
        repeats a few shapes. Only the context is folded attempt by attempt.
        """
        shapes = self._shapes
        lines = batch.context_lines
        used = batch.context_used
        contexts = self._contexts
        ctx = self.book.current.ctx
        first = index = self.book.current.index
        failed = 0
        last: dict[str, Closed] = {}
        a = c
        for shape in _ATTEMPT.findall(batch.marks, c, hi):
            n, k, outcome = shapes.get(shape) or self._shape(shape)
            if k:
                key = (ctx, lines[used : used + k])
                used += k
                ctx = contexts.get(key) or self._fold(key)
            last[outcome] = (index, ctx, a, a + n)
            failed += outcome == "failure"
            index += 1
            ctx = ctx.sticky or self._sticky(ctx)
            a += n
        batch.context_used = used
        failure, success = last.get("failure"), last.get("success")
        self.book.closed(
            index - first,
            failed,
            self._closed(batch, *failure) if failure else None,
            self._closed(batch, *success) if success else None,
            _Attempt(index, ctx),
        )
        return a

    def _shape(self, shape: bytes) -> tuple[int, int, str]:
        """Length, number of context lines and verdict of an attempt with these marks."""
        verdicts = shape.translate(_VERDICT)
        # positions + 1 stand for line numbers: verdict() only compares them (0 = none seen)
        outcome = verdict(verdicts.rfind(VERIFIED) + 1, verdicts.rfind(FAILED) + 1, WEAK_SUCCESS in verdicts)
        info = (len(shape), shape.translate(_CONTEXT).count(1), outcome)
        self._shape_bytes += len(shape)
        if len(self._shapes) >= MEMO_ENTRIES or self._shape_bytes > SHAPE_BYTES:
            self._shapes.clear()
            self._shape_bytes = len(shape)
        self._shapes[shape] = info
        return info

    def _closed(self, batch: _Batch, index: int, ctx: _Ctx, a: int, b: int) -> _Attempt:
        att = _Attempt(index, ctx)
        att.pending.append((batch.lines, a, b, batch.base))
        att.held = BATCH_BYTES
        att.batch = batch.lines
        return att

    def _stretch(self, batch: _Batch, a: int, b: int) -> None:
        """Lines ``a:b`` of a batch belong to the current attempt: fold the cheap summary, defer the rest."""
        att = self.book.current
        att.pending.append((batch.lines, a, b, batch.base))
        if att.batch is not batch.lines:
            att.batch = batch.lines
            att.held += BATCH_BYTES
        if batch.progress.find(PROGRESS, a, b) >= 0:
            self._note_stretch(att, batch, a, b)
        k = batch.context_flags.count(1, a, b)
        if k:
            used = batch.context_used
            key = (att.ctx, batch.context_lines[used : used + k])
            batch.context_used = used + k
            att.ctx = self._contexts.get(key) or self._fold(key)
        if att.held > PENDING_BYTES:
            self._build(att)

    @staticmethod
    def _note_stretch(att: _Attempt, batch: _Batch, a: int, b: int) -> None:
        """The verdict inputs of lines ``a:b`` (which hold progress), from their marks."""
        verdicts = batch.verdicts
        att.progressed = True
        f = verdicts.rfind(FAILED, a, b)
        if f >= 0:
            att.failure_seen = batch.base + f
        k = verdicts.rfind(VERIFIED, a, b)
        if k >= 0:
            att.success_seen = batch.base + k
        if not att.weak_success and verdicts.find(WEAK_SUCCESS, a, b) >= 0:
            att.weak_success = True

    # ------------------------------------------------------------------------- contexts
    def _sticky(self, ctx: _Ctx) -> _Ctx:
        sticky = ctx.sticky = self._intern(tuple(inherited(dict(ctx.items)).items()))
        return sticky

    def _fold(self, key: tuple[_Ctx, tuple[bytes, ...]]) -> _Ctx:
        """Fold context lines into a context, in line order (memoised: ``context.update`` is pure)."""
        ctx, raws = key
        d = dict(ctx.items)
        update = ctxmod.update
        for rec in self._records(list(raws)):
            update(d, rec.kind, rec.fields, rec.text)
        done = self._intern(tuple(d.items()))
        cost = sum(map(len, raws)) + 64 * len(raws)
        if cost <= CONTEXT_MEMO_BYTES // 16:  # a long stretch of context lines is unlikely to come again
            if len(self._contexts) >= MEMO_ENTRIES or self._context_bytes + cost > CONTEXT_MEMO_BYTES:
                self._contexts.clear()
                self._context_bytes = 0
            self._contexts[key] = done
            self._context_bytes += cost
        return done

    def _intern(self, items: tuple[tuple[str, FieldValue], ...]) -> _Ctx:
        try:
            ctx = self._interned.get(items)
        except TypeError:  # pragma: no cover - a context value that cannot be hashed
            return _Ctx(items)
        if ctx is None:
            cost = _context_cost(items)
            if len(self._interned) >= MEMO_ENTRIES or self._intern_bytes + cost > INTERN_BYTES:
                self._interned.clear()
                self._intern_bytes = 0
            ctx = self._interned[items] = _Ctx(items)
            self._intern_bytes += cost
        return ctx

    # ------------------------------------------------------------------------- attempts
    def _many(self, rec: _Line, line: int) -> None:
        """A physical line holding several logical lines: the reference step, one logical line at a time."""
        for item in rec.items:
            text, kind, fields = item
            self.events_seen += 1
            if kind == "other":
                self.lines_other += 1
            if starts_attempt(kind, self.book.current):
                self._close()
            att = self.book.current
            att.pending.append((line, (item,)))
            att.held += 2 * len(text) + RECORD_BYTES
            note(att, line, effect(kind, fields))
            if updates_context(kind):
                d = dict(att.ctx.items)
                ctxmod.update(d, kind, fields, text)
                att.ctx = self._intern(tuple(d.items()))
        att = self.book.current
        if att.held > PENDING_BYTES:
            self._build(att)

    def _close(self) -> None:
        """The current attempt is over; the next one inherits its sticky context."""
        done = self.book.current
        self.book.close(done.verdict, _Attempt(self.book.attempts + 1, done.ctx.sticky or self._sticky(done.ctx)))

    def _build(self, att: _Attempt) -> Session:
        """Replay an attempt's pending lines into its ``Session`` through sessions.py."""
        session = att.session
        if session is None:
            session = att.session = Session(index=att.index)
        for entry in att.pending:
            if len(entry) == 2:
                line, items = entry
                for text, kind, fields in items:
                    session.record(kind, line, text, fields)
            else:
                lines, a, b, base = entry
                self._replay(self._records(lines[a:b]), base + a, session)
        att.pending = []
        att.held = 0
        att.batch = None
        session.context = dict(att.ctx.items)
        return session

    def _replay(self, seg: list[_Line], first: int, session: Session) -> None:
        """Lines with one logical line or none each: runs between lines that go alone are kept in bulk."""
        alone = bytes(map(_ALONE, seg))
        n = len(seg)
        i = 0
        while i < n:
            j = alone.find(1, i)
            if j < 0:
                j = n
            if j - i >= MIN_RUN:
                self._bulk(seg[i:j], session, first + i)
            else:
                for k in range(i, j):
                    rec = seg[k]
                    if rec.kind:
                        session.record(rec.kind, first + k, rec.text, rec.fields)
            if j < n:
                rec = seg[j]
                session.record(rec.kind, first + j, rec.text, rec.fields)
            i = j + 1

    def _bulk(self, seg: list[_Line], session: Session, base: int) -> None:
        """Keep a run of lines with no ``start`` event at once; its first line is line number ``base``.

        A retry loop repeats the same runs, so the plan for a run is memoised on the run and on the
        little of the attempt's state it depends on (``Session.plan_state``).
        """
        if len(seg) > MEMO_RUN:
            session.apply(plan_run(seg, session), base)
            return
        key = (tuple(seg), session.plan_state())
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_run(seg, session)
            refs = len(seg) + plan.size()
            if len(self._plans) >= MEMO_ENTRIES or self._plan_refs + refs > PLAN_REFS:
                self._plans.clear()
                self._plan_refs = 0
            self._plans[key] = plan
            self._plan_refs += refs
        session.apply(plan, base)

    def finish(self) -> Tracker:
        """Build the attempts the report can use and hand them to a tracker."""
        book = self.book
        tracker = Tracker()
        current = self._build(book.current)
        failure = self._build(book.last_failure) if book.last_failure else None
        success = self._build(book.last_success) if book.last_success else None
        tracker.closed(book.attempts - 1, book.failed_attempts, failure, success, current)
        tracker.events_seen = self.events_seen
        tracker.lines_other = self.lines_other
        return tracker


def scan_batches(batches: Iterable[tuple[int, list[bytes]]]) -> tuple[Tracker, int]:
    scanner = Scanner()
    for first, lines in batches:
        scanner.feed(first, lines)
    return scanner.finish(), scanner.lines


def scan(stream: BinaryIO, name: str = "<stdin>") -> tuple[Tracker, int]:
    """Read, normalise and parse a whole log into a session tracker; return it and the line count."""
    return scan_batches(iter_batches(stream, name))


__all__ = ["Scanner", "parse_raw", "scan", "scan_batches"]

"""The fast path from a log's bytes to a session tracker: block at a time, not line at a time.

``scan`` gives exactly the result of feeding every logical line to :meth:`Tracker.add` in order (the
reference loop in ``tests/test_scan_equivalence.py``), but it does almost no Python-level work per
line, and little per attempt, on a big log:

* the reader splits a whole block into lines in C; each distinct physical line is decoded,
  normalised and parsed once (``_Line``, memoised on its raw bytes), and a batch becomes one byte
  per line (``_Line.mark``: start, failure, success, progress, context...) by a C-level lookup;
* attempts are cut with ``bytes.find`` on the marks (an attempt ends at the first ``start`` line after
  progress); for each one only the verdict inputs (``rfind`` on the marks) and the context (folded in
  line order, memoised on interned contexts) are computed eagerly;
* the kept events of an attempt (the expensive part) are deferred: only the current, last failed
  and last successful attempts are built at the end, by replaying their lines through the exact path
  (``Scanner._build``: runs folded in bulk with memoised plans, the rest as ``Tracker.add`` would).
  An attempt holding too many pending lines, or lines the cache is about to let go, is built early.

For a big file, the marks can come from a helper process instead (premark.py, wired in ``scan``).
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Iterable
from itertools import compress
from operator import attrgetter
from typing import BinaryIO

from espdiag import context as ctxmod
from espdiag import premark
from espdiag.events import KINDS, FieldValue
from espdiag.normalise import normalise
from espdiag.parse import parse_line, parser
from espdiag.reader import iter_batches
from espdiag.sessions import (
    _STICKY,
    FAILURE,
    KEEP,
    MAX_DISTINCT,
    SUCCESS,
    WEAK,
    Session,
    Tracker,
    _KindStore,
    effect,
    note,
    updates_context,
    verdict,
)

KEEP_OTHER = 24  # unknown lines kept per attempt; the rest are only counted
CACHE_LINES = 50_000  # distinct physical lines remembered ...
CACHE_BYTES = 8 << 20  # ... and their total size, so memory stays bounded on logs of unique lines
MIN_RUN = 12  # shorter runs go line by line: the bulk set-up costs more than it saves
MEMO_RUN = 4096  # longer runs are planned afresh (their set-up cost is spread over many lines)
MEMO_PLANS = 4096  # plans remembered ...
MEMO_REFS = 1 << 20  # ... holding at most this many line references in their keys
SHAPE_BYTES = 4 << 20  # attempt shapes (their marks) remembered, in bytes

HOT, PLAIN, CTX = 0, 1, 2  # how a line is fed: through Tracker.add, in bulk, in bulk + a context update

Item = tuple[str, str, dict[str, FieldValue]]  # (text, kind, fields) of one logical line


class _Line:
    """One distinct physical line, parsed; shared by every occurrence (compared by identity)."""

    __slots__ = ("effect", "fields", "flag", "items", "kind", "mark", "role", "text")

    def __init__(self, items: tuple[Item, ...]) -> None:
        self.items = items
        self.kind = ""  # "" for a blank line: no event at all
        self.text = ""
        self.fields: dict[str, FieldValue] = {}
        self.role = ""
        self.effect = 0
        self.mark = ord("_")
        if len(items) > 1:
            self.flag = HOT
            self.mark = ord("M")
            return
        self.flag = PLAIN
        if items:
            self.text, self.kind, self.fields = items[0]
            self.role = KINDS[self.kind].role
            self.effect = effect(self.kind, self.fields)
            if self.role == "start":
                self.flag = HOT
                self.mark = ord("S")
            else:
                ctx = updates_context(self.kind)
                if ctx:
                    self.flag = CTX  # Tracker.add folds these into the context, in line order
                self.mark = _mark(self.kind, self.effect, ctx)


# One byte per physical line, so that a whole batch is classified by C-level bytes operations:
#   M several logical lines   S a ``start`` event (folded into the context)   O unknown   _ blank
#   F failure   K conclusive success   W weak success   P other progress   . anything else
# and the same letters in lower case (":" for ".") when the line is also folded into the context.
def _mark(kind: str, bits: int, ctx: bool) -> int:
    if bits & FAILURE:
        c = "F"
    elif bits & WEAK:
        c = "W"
    elif bits & SUCCESS:
        c = "K"
    elif bits:
        c = "P"
    else:
        c = "O" if kind == "other" else "."
    if ctx:
        c = ":" if c == "." else c.lower()
    return ord(c)


_VERDICT = bytes.maketrans(b"fkwp:", b"FKWP.")  # marks without the context letters
_PROGRESS = bytes.maketrans(b"FKW", b"PPP")
_CONTEXT = bytes(1 if chr(c) in "Sfkwp:" else 0 for c in range(256))  # 1 for lines folded into the context
_FLAG = attrgetter("flag")
# One whole attempt inside a block, in the raw marks: its start line, anything up to its first progress,
# then everything up to (not including) the next start line, which must be there.
_ATTEMPT = re.compile(rb"S[^FKWPfkwp]*[FKWPfkwp][^S]*(?=S)")
_BLANK = _Line(())
PENDING_REFS = 50_000  # line references an attempt may hold before it is built (memory bound)


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
        self.sticky: _Ctx | None = None  # what the next attempt inherits (Tracker._close)


# a stretch of lines an attempt has not built yet: (batch lines, start, end, number of lines[0]), or
# the logical lines of one physical line: (line, items)
Pending = tuple[list[bytes], int, int, int] | tuple[int, tuple[Item, ...]]


class _Batch:
    """One batch of lines and its marks, while it is fed."""

    __slots__ = ("base", "ci", "cx", "cxt", "lines", "marks", "prog", "raw")

    def __init__(self, lines: list[bytes], raw: bytes, marks: bytes, cx: bytes, base: int) -> None:
        self.lines = lines
        self.raw = raw  # _Line.mark of each line
        self.marks = marks  # _VERDICT marks
        self.prog = marks.translate(_PROGRESS)  # P for every line with progress
        self.cx = cx  # 1 for a line folded into the context
        self.cxt = tuple(compress(lines, cx))  # those lines, in order
        self.ci = 0  # how many of them the attempts have folded so far
        self.base = base  # number of lines[0]


class _Attempt:
    """What the scanner knows eagerly about one attempt: its verdict inputs and context.

    Its kept events (``Session.kinds``, ``text_counts``...) are built only if it is needed, by replaying
    its pending lines through the exact path (``Scanner._build``): most attempts of a retry loop are
    dropped unbuilt.
    """

    __slots__ = ("ctx", "failure_seen", "index", "pending", "progressed", "refs", "session", "success_seen", "weak_success")

    def __init__(self, index: int, ctx: _Ctx) -> None:
        self.index = index
        self.ctx = ctx
        self.progressed = False
        self.failure_seen = 0
        self.success_seen = 0
        self.weak_success = False
        self.pending: list[Pending] = []
        self.refs = 0
        self.session: Session | None = None


class Scanner:
    def __init__(self) -> None:
        self.tracker = Tracker()
        self.lines = 0
        self._cache: dict[bytes, _Line] = {b"": _BLANK}
        self._by_text: dict[tuple[str, ...], _Line] = {(): _BLANK}  # the records of the cached lines, by text
        self._marks: dict[bytes, int] = {b"": _BLANK.mark}
        self._cache_bytes = 0
        self._plans: dict[object, _Plan] = {}
        self._shapes: dict[bytes, tuple[int, int, str]] = {}
        self._shape_bytes = 0
        self._plan_refs = 0
        self._contexts: dict[tuple[_Ctx, tuple[bytes, ...]], _Ctx] = {}
        self._interned: dict[object, _Ctx] = {}
        self.cur = _Attempt(1, self._intern(()))
        self.last_failure: _Attempt | None = None
        self.last_success: _Attempt | None = None
        self.attempts = 1
        self.failed_attempts = 0
        self.events_seen = 0
        self.lines_other = 0
        self.parsed = 0  # distinct lines (after normalising) this scanner parsed itself

    # ------------------------------------------------------------------------- distinct lines
    def _learn(self, lines: list[bytes], build: bool = True) -> None:
        """Parse the batch's lines not seen yet (the cache is bounded: clear it when it would overflow).

        Before letting the cache go, the attempts whose pending lines it holds are built (``build``), so
        that nothing is parsed twice; a build that meets an unknown line learns it without that step.
        """
        cache = self._cache
        new = set(lines)
        new.difference_update(cache.keys())
        if not new:
            return
        size = sum(map(len, new))
        if len(cache) + len(new) > CACHE_LINES or self._cache_bytes + size > CACHE_BYTES:
            if build:
                for att in (self.cur, self.last_failure, self.last_success):
                    if att is not None and att.pending:
                        self._build(att)
            cache.clear()
            cache[b""] = _BLANK
            self._by_text.clear()
            self._by_text[()] = _BLANK
            self._marks.clear()
            self._marks[b""] = _BLANK.mark
            self._cache_bytes = 0
            new = set(lines)
            new.discard(b"")
            size = sum(map(len, new))
        self._cache_bytes += size
        marks = self._marks
        # Distinct raw lines often share their text: a serial monitor stamps every line with the time
        # ("12:34:56.789 -> "), which normalising removes. Such lines share one record.
        by_text = self._by_text
        for raw in new:
            texts = _texts(raw)
            rec = by_text.get(texts)
            if rec is None:
                rec = by_text[texts] = _Line(_parse_texts(texts))
                self.parsed += 1
            cache[raw] = rec
            marks[raw] = rec.mark

    def _records(self, lines: list[bytes]) -> list[_Line]:
        try:
            return list(map(self._cache.__getitem__, lines))
        except KeyError:  # only when the marks came from the helper process (premark.py)
            self._learn(lines, build=False)
            return list(map(self._cache.__getitem__, lines))

    def marks_of(self, lines: list[bytes]) -> bytes:
        """One mark (``_Line.mark``) per line, parsing the lines not seen yet."""
        try:
            return bytes(map(self._marks.__getitem__, lines))
        except KeyError:
            self._learn(lines)
            return bytes(map(self._marks.__getitem__, lines))

    # ------------------------------------------------------------------------- feeding
    def feed(self, first: int, lines: list[bytes], marks: bytes | None = None) -> None:
        """Feed one batch of physical lines; ``first`` is the number of ``lines[0]``.

        ``marks``, when given, are the batch's marks as :meth:`marks_of` gives them (premark.py).
        """
        if not lines:
            return
        if marks is None:
            marks = self.marks_of(lines)
        n = len(lines)
        self.lines = first + n - 1
        multi = marks.count(b"M")
        self.events_seen += n - marks.count(b"_") - multi
        self.lines_other += marks.count(b"O")
        verdicts = marks.translate(_VERDICT)
        cx = marks.translate(_CONTEXT)
        batch = _Batch(lines, marks, verdicts, cx, first)
        lo = 0
        while multi:
            j = marks.find(b"M", lo)
            self._block(batch, lo, j)
            self._multi(self._records([lines[j]])[0], first + j)
            lo = j + 1
            multi -= 1
        self._block(batch, lo, n)

    def _block(self, batch: _Batch, lo: int, hi: int) -> None:
        """Fold ``lines[lo:hi]`` (one logical line or none each) into the attempts, closing them.

        An attempt ends at the first ``start`` line after progress: ``find`` on the marks gives it.
        """
        if lo >= hi:
            return
        marks = batch.marks
        prog = batch.prog
        if self.cur.progressed:
            c = marks.find(b"S", lo, hi)
        else:
            q = prog.find(b"P", lo, hi)
            c = marks.find(b"S", q, hi) if q >= 0 else -1
        if c < 0:
            self._stretch(batch, lo, hi)
            return
        if c > lo:
            self._stretch(batch, lo, c)
        self._close()
        # Attempts wholly inside the block, each up to the start line of the next: they start afresh
        # and hold progress, so one regex over the marks cuts them all (in C), and what each one's
        # marks mean (verdict, context lines) is memoised on its marks: a retry loop repeats a few
        # shapes. Only the context is folded attempt by attempt.
        shapes = self._shapes
        cxt = batch.cxt
        ci = batch.ci
        contexts = self._contexts
        ctx = self.cur.ctx
        index = self.cur.index
        failed = 0
        last_failure = last_success = None
        a = c
        for shape in _ATTEMPT.findall(batch.raw, c, hi):
            info = shapes.get(shape)
            if info is None:
                info = self._shape(shape)
            n, k, outcome = info
            if k:
                key = (ctx, cxt[ci : ci + k])
                ci += k
                done = contexts.get(key)
                ctx = done if done is not None else self._fold(key)
            if outcome == "failure":
                last_failure = (index, ctx, a, a + n)
                failed += 1
            elif outcome == "success":
                last_success = (index, ctx, a, a + n)
            index += 1
            sticky = ctx.sticky
            ctx = sticky if sticky is not None else self._sticky(ctx)
            a += n
        batch.ci = ci
        self.failed_attempts += failed
        self.attempts = index
        if last_failure is not None:
            self.last_failure = self._closed(batch, *last_failure)
        if last_success is not None:
            self.last_success = self._closed(batch, *last_success)
        self.cur = _Attempt(index, ctx)
        self._stretch(batch, a, hi)

    def _shape(self, shape: bytes) -> tuple[int, int, str]:
        """Length, number of context lines and verdict of an attempt with these marks."""
        verdicts = shape.translate(_VERDICT)
        # positions + 1 stand for line numbers: verdict() only compares them (0 = none seen)
        outcome = verdict(verdicts.rfind(b"K") + 1, verdicts.rfind(b"F") + 1, b"W" in verdicts)
        info = (len(shape), shape.translate(_CONTEXT).count(1), outcome)
        self._shape_bytes += len(shape)
        if len(self._shapes) >= MEMO_PLANS or self._shape_bytes > SHAPE_BYTES:
            self._shapes.clear()
            self._shape_bytes = len(shape)
        self._shapes[shape] = info
        return info

    def _closed(self, batch: _Batch, index: int, ctx: _Ctx, a: int, b: int) -> _Attempt:
        att = _Attempt(index, ctx)
        att.pending.append((batch.lines, a, b, batch.base))
        att.refs = b - a
        return att

    def _stretch(self, batch: _Batch, a: int, b: int) -> None:
        """Lines ``a:b`` of a batch belong to the current attempt: fold the cheap summary, defer the rest."""
        att = self.cur
        att.pending.append((batch.lines, a, b, batch.base))
        att.refs += b - a
        if batch.prog.find(b"P", a, b) >= 0:
            marks = batch.marks
            base = batch.base
            att.progressed = True
            f = marks.rfind(b"F", a, b)
            if f >= 0:
                att.failure_seen = base + f
            k = marks.rfind(b"K", a, b)
            if k >= 0:
                att.success_seen = base + k
            if not att.weak_success and marks.find(b"W", a, b) >= 0:
                att.weak_success = True
        k = batch.cx.count(1, a, b)
        if k:
            ci = batch.ci
            key = (att.ctx, batch.cxt[ci : ci + k])
            batch.ci = ci + k
            done = self._contexts.get(key)
            att.ctx = done if done is not None else self._fold(key)
        if att.refs > PENDING_REFS:
            self._build(att)

    def _sticky(self, ctx: _Ctx) -> _Ctx:
        # context the wrapper printed once (IDE banner, OS) carries over to the next attempt
        sticky = ctx.sticky = self._intern(tuple((k, v) for k, v in ctx.items if k in _STICKY))
        return sticky

    def _fold(self, key: tuple[_Ctx, tuple[bytes, ...]]) -> _Ctx:
        """Fold context lines into a context, in line order (memoised: ``context.update`` is pure)."""
        ctx, raws = key
        d = dict(ctx.items)
        update = ctxmod.update
        for rec in self._records(list(raws)):
            update(d, rec.kind, rec.fields, rec.text)
        done = self._intern(tuple(d.items()))
        if len(self._contexts) >= MEMO_PLANS:
            self._contexts.clear()
        self._contexts[key] = done
        return done

    def _intern(self, items: tuple[tuple[str, FieldValue], ...]) -> _Ctx:
        try:
            ctx = self._interned.get(items)
        except TypeError:  # pragma: no cover - a context value that cannot be hashed
            return _Ctx(items)
        if ctx is None:
            if len(self._interned) >= MEMO_PLANS:
                self._interned.clear()
            ctx = self._interned[items] = _Ctx(items)
        return ctx

    def _multi(self, rec: _Line, line: int) -> None:
        """A physical line holding several logical lines: the reference step, one logical line at a time."""
        for item in rec.items:
            text, kind, fields = item
            self.events_seen += 1
            if kind == "other":
                self.lines_other += 1
            if KINDS[kind].role == "start" and self.cur.progressed:
                self._close()
            att = self.cur
            att.pending.append((line, (item,)))
            att.refs += 1
            note(att, line, effect(kind, fields))
            if updates_context(kind):
                d = dict(att.ctx.items)
                ctxmod.update(d, kind, fields, text)
                att.ctx = self._intern(tuple(d.items()))

    def _close(self) -> None:
        """``Tracker._close``: the current attempt is over."""
        done = self.cur
        v = verdict(done.success_seen, done.failure_seen, done.weak_success)
        if v == "failure":
            self.last_failure = done
            self.failed_attempts += 1
        elif v == "success":
            self.last_success = done
        self.attempts += 1
        sticky = done.ctx.sticky
        self.cur = _Attempt(self.attempts, sticky if sticky is not None else self._sticky(done.ctx))

    # ------------------------------------------------------------------------- building attempts
    def _build(self, att: _Attempt) -> Session:
        """Replay an attempt's pending lines into its ``Session`` through the exact path."""
        session = att.session
        if session is None:
            session = att.session = Session(index=att.index)
        for entry in att.pending:
            if len(entry) == 2:
                line, items = entry
                for text, kind, fields in items:
                    _keep(session, line, kind, text, fields)
            else:
                lines, a, b, base = entry
                self._replay(self._records(lines[a:b]), base + a, session)
        att.pending = []
        att.refs = 0
        session.context = dict(att.ctx.items)
        return session

    def _replay(self, seg: list[_Line], first: int, session: Session) -> None:
        flags = bytes(map(_FLAG, seg))
        n = len(seg)
        i = 0
        while i < n:
            j = flags.find(b"\x00", i)
            if j < 0:
                j = n
            if j - i >= MIN_RUN:
                self._bulk(seg[i:j], session, first + i)
            else:
                for k in range(i, j):
                    rec = seg[k]
                    if rec.kind:
                        _keep(session, first + k, rec.kind, rec.text, rec.fields)
            if j < n:
                rec = seg[j]
                _keep(session, first + j, rec.kind, rec.text, rec.fields)
            i = j + 1

    def _bulk(self, seg: list[_Line], session: Session, base: int) -> None:
        """Fold a run of lines with no ``start`` event and one logical line (or none) each.

        Its first line is line number ``base``. A retry loop repeats the same runs, so the plan for a
        run is memoised on the run and on the little of the attempt's state it depends on (how full
        each kind's store is, how many unknown lines are kept).
        """
        kinds = session.kinds
        other = kinds.get("other")
        sig = (tuple([(k, len(st.first)) for k, st in kinds.items()]), other.count if other else 0)
        if len(seg) <= MEMO_RUN:
            key = (tuple(seg), sig)
            plan = self._plans.get(key)
            if plan is None:
                plan = _plan(seg, session)
                if len(self._plans) >= MEMO_PLANS or self._plan_refs > MEMO_REFS:
                    self._plans.clear()
                    self._plan_refs = 0
                self._plans[key] = plan
                self._plan_refs += len(seg)
        else:
            plan = _plan(seg, session)
        _apply(plan, session, base)

    def finish(self) -> Tracker:
        """Build the attempts the report can use and hand them to the tracker."""
        tracker = self.tracker
        tracker.current = self._build(self.cur)
        tracker.last_failure = self._build(self.last_failure) if self.last_failure else None
        tracker.last_success = self._build(self.last_success) if self.last_success else None
        tracker.attempts = self.attempts
        tracker.failed_attempts = self.failed_attempts
        tracker.events_seen = self.events_seen
        tracker.lines_other = self.lines_other
        return tracker


def _keep(session: Session, line: int, kind: str, text: str, fields: dict[str, FieldValue]) -> None:
    """What ``Tracker.add`` does to the attempt's kept events and verdict inputs (unknown lines capped)."""
    if kind == "other" and session.count("other") >= KEEP_OTHER:
        return
    session.keep(kind, line, text, fields)
    note(session, line, effect(kind, fields))


Entry = tuple[int, str, dict[str, FieldValue]]  # (position in the run, text, fields)


class _Plan:
    """What folding one run does to an attempt, with positions relative to the run's first line."""

    __slots__ = ("events", "failure_seen", "first", "kinds", "last", "others", "progressed", "success_seen", "texts",
                 "weak_success")

    def __init__(self) -> None:
        self.events = 0  # logical lines seen
        self.others = 0  # of which unknown
        self.kinds: list[tuple[str, int, list[Entry], list[Entry]]] = []  # kind, events kept, first, last
        self.texts: list[tuple[str, int]] = []  # text and occurrences kept, in order of first occurrence
        self.first = -1
        self.last = -1
        self.failure_seen = -1
        self.success_seen = -1
        self.progressed = False
        self.weak_success = False


def _plan(seg: list[_Line], session: Session) -> _Plan:
    counts = Counter(seg)
    if len(counts) * 6 > len(seg):
        return _plan_by_walking(seg, session)  # few repeats: one pass is cheaper than searching
    plan = _Plan()
    rev: list[_Line] | None = None
    by_kind: dict[str, list[_Line]] = {}
    other_recs: list[_Line] = []
    for rec, n in counts.items():
        if not rec.kind:
            continue  # blank after normalising
        plan.events += n
        if rec.kind == "other":
            other_recs.append(rec)
        else:
            by_kind.setdefault(rec.kind, []).append(rec)

    def firsts(rec: _Line, m: int) -> list[int]:
        out = []
        pos = -1
        index = seg.index
        for _ in range(m):
            pos = index(rec, pos + 1)
            out.append(pos)
        return out

    def lasts(rec: _Line, m: int) -> list[int]:
        nonlocal rev
        if rev is None:
            rev = seg[::-1]
        out = []
        pos = -1
        index = rev.index
        top = len(seg) - 1
        for _ in range(m):
            pos = index(rec, pos + 1)
            out.append(top - pos)
        return out

    texts: list[tuple[int, str, int]] = []  # (first position, text, occurrences kept)
    stored: list[tuple[str, int, list[int], list[int]]] = []  # kind, events kept, first, last positions
    if other_recs:
        plan.others = sum(counts[r] for r in other_recs)
        store = session.kinds.get("other")
        room = KEEP_OTHER - (store.count if store else 0)
        if room > 0:
            owner: dict[int, _Line] = {}
            for rec in other_recs:
                owner.update(dict.fromkeys(firsts(rec, min(room, counts[rec])), rec))
            kept = sorted(owner)[:room]
            seen: dict[_Line, list[int]] = {}
            for pos in kept:
                seen.setdefault(owner[pos], []).append(pos)
            texts.extend((got[0], rec.text, len(got)) for rec, got in seen.items())
            cut = max(KEEP - (len(store.first) if store else 0), 0)
            stored.append(("other", len(kept), kept[:cut], kept[cut:][-KEEP:]))
    for kind, recs in by_kind.items():
        store = session.kinds.get(kind)
        need = KEEP - (len(store.first) if store else 0)
        total = 0
        head: list[int] = []
        tail: list[int] = []
        for rec in recs:
            n = counts[rec]
            total += n
            got = firsts(rec, min(max(need, 1), n))
            texts.append((got[0], rec.text, n))
            if need > 0:
                head.extend(got)
            back = lasts(rec, min(KEEP, n))
            tail.extend(back)
            bits = rec.effect
            if bits:
                plan.progressed = True
                if bits & FAILURE:
                    plan.failure_seen = max(plan.failure_seen, back[0])
                elif bits & WEAK:
                    plan.weak_success = True
                elif bits & SUCCESS:
                    plan.success_seen = max(plan.success_seen, back[0])
        head.sort()
        head = head[: max(need, 0)]
        taken = set(head)
        tail = sorted(p for p in set(tail) if p not in taken)[-KEEP:]
        stored.append((kind, total, head, tail))
    for kind, total, head, tail in stored:
        entries_head = [(p, seg[p].text, seg[p].fields) for p in head]
        entries_tail = [(p, seg[p].text, seg[p].fields) for p in tail]
        plan.kinds.append((kind, total, entries_head, entries_tail))
        hi = max(tail[-1] if tail else -1, head[-1] if head else -1)
        if hi < 0:
            continue
        lo = head[0] if head else tail[0]
        plan.last = max(plan.last, hi)
        plan.first = lo if plan.first < 0 else min(plan.first, lo)
    texts.sort(key=lambda t: t[0])
    plan.texts = [(text, n) for _, text, n in texts]
    return plan


def _plan_by_walking(seg: list[_Line], session: Session) -> _Plan:
    """The same plan as :func:`_plan`, found by stepping through the run like ``Session.keep`` does."""
    plan = _Plan()
    store = session.kinds.get("other")
    room = KEEP_OTHER - (store.count if store else 0)
    filled = {k: len(st.first) for k, st in session.kinds.items()}
    totals: dict[str, int] = {}
    heads: dict[str, list[Entry]] = {}
    tails: dict[str, deque[Entry]] = {}
    texts: dict[str, int] = {}
    for p, rec in enumerate(seg):
        kind = rec.kind
        if not kind:
            continue
        plan.events += 1
        if kind == "other":
            plan.others += 1
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


def _apply(plan: _Plan, session: Session, base: int) -> None:
    kinds = session.kinds
    for kind, total, head, tail in plan.kinds:
        store = kinds.get(kind)
        if store is None:
            store = kinds[kind] = _KindStore()
        store.count += total
        if head:
            store.first.extend([(base + p, text, fields) for p, text, fields in head])
        if tail:
            store.last.extend([(base + p, text, fields) for p, text, fields in tail])
    text_counts = session.text_counts
    for text, n in plan.texts:
        if text in text_counts:
            text_counts[text] += n
        elif len(text_counts) < MAX_DISTINCT:
            text_counts[text] = n
    if plan.last < 0:
        return
    if not session.first_line:
        session.first_line = base + plan.first
    session.last_line = base + plan.last
    session._events = None
    if plan.progressed:
        session.progressed = True
    if plan.failure_seen >= 0:
        session.failure_seen = base + plan.failure_seen
    if plan.success_seen >= 0:
        session.success_seen = base + plan.success_seen
    if plan.weak_success:
        session.weak_success = True


def scan_batches(batches: Iterable[tuple[int, list[bytes]]], helper: premark.Helper | None = None) -> tuple[Tracker, int]:
    scanner = Scanner()
    for first, lines in batches:
        if helper is None:
            scanner.feed(first, lines)
            continue
        scanner.feed(first, lines, helper.marks(first, len(lines)))
        if scanner.parsed > max(premark.USELESS_AFTER, scanner.lines // 2):
            # the scanner parses most lines anyway (a log of distinct lines that it must keep): the
            # helper only doubles the work
            helper.close()
            helper = None
    return scanner.finish(), scanner.lines


def scan(stream: BinaryIO, name: str = "<stdin>") -> tuple[Tracker, int]:
    """Read, normalise and parse a whole log into a session tracker; return it and the line count.

    A big log file is marked ahead by a helper process where a spare CPU allows (premark.py).
    """
    helper = premark.start(stream, name, Scanner().marks_of, prepare=parser)
    try:
        return scan_batches(iter_batches(stream, name), helper)
    finally:
        if helper is not None:
            helper.close()


__all__ = ["KEEP_OTHER", "Scanner", "Session", "parse_raw", "scan", "scan_batches"]

"""The block-at-a-time scanner (espdiag/scanner.py) must give exactly what the line-by-line loop gives."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_grammar import CASES

from espdiag import scanner
from espdiag.api import parse_stream
from espdiag.sessions import Session, Tracker

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_LINES = sorted({line for p in SAMPLES.glob("*.log") for line in p.read_text("utf-8", "replace").splitlines()})
GRAMMAR_LINES = [c[0] for c in CASES]
POOL = SAMPLE_LINES + GRAMMAR_LINES + ["", "   ", "hello there", "Writing at 0x1000... (5 %)\rWriting at 0x2000... (9 %)"]


def reference_scan(data: bytes) -> tuple[Tracker, int]:
    """The plain loop: every logical line through Tracker.add."""
    tracker = Tracker()
    lines = 0
    for number, items in parse_stream(io.BytesIO(data)):
        lines = number
        for text, kind, fields in items:
            tracker.add(number, kind, text, fields)
    return tracker, lines


def _session_state(s: Session | None) -> object:
    if s is None:
        return None
    return (
        s.index, s.first_line, s.last_line, s.progressed, s.failure_seen, s.success_seen, s.weak_success,
        dict(s.context), list(s.text_counts.items()),
        {k: (st.count, list(st.first), list(st.last)) for k, st in s.kinds.items()},
        [(e.kind, e.line, e.text, dict(e.fields)) for e in s.events()],
    )


def _state(tracker: Tracker, lines: int) -> object:
    return (
        lines, tracker.attempts, tracker.failed_attempts, tracker.events_seen, tracker.lines_other,
        _session_state(tracker.current), _session_state(tracker.last_failure), _session_state(tracker.last_success),
    )


def check_same(data: bytes) -> None:
    want = _state(*reference_scan(data))
    got = _state(*scanner.scan(io.BytesIO(data)))
    assert got == want


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.log")) + sorted(SAMPLES.glob("*.md")), ids=lambda p: p.name)
def test_samples_scan_the_same(path: Path) -> None:
    check_same(path.read_bytes())


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.log")), ids=lambda p: p.name)
def test_repeated_samples_scan_the_same(path: Path) -> None:
    # repeated attempts exercise the memoised plans and long runs
    check_same(path.read_bytes().rstrip(b"\n") * 1 + b"\n" + path.read_bytes() * 40)


@pytest.mark.parametrize("seed", range(12))
def test_random_mixtures_scan_the_same(seed: int) -> None:
    rng = random.Random(seed)
    blocks = [rng.sample(POOL, rng.randint(1, 40)) for _ in range(8)]
    lines: list[str] = []
    for _ in range(rng.randint(1, 300)):
        block = rng.choice(blocks)
        lines.extend(block if rng.random() < 0.8 else rng.sample(block, len(block)))
    check_same("\n".join(lines).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(POOL), max_size=200), st.integers(1, 30))
def test_any_sequence_scans_the_same(lines: list[str], repeat: int) -> None:
    check_same(("\n".join(lines) + "\n").encode() * repeat)


def test_huge_run_of_one_line() -> None:
    check_same(b"read 0, requested 1\n" * 50_000 + b"trying to connect\n" * 3 + b"hello\n" * 5000)


# ----------------------------------------------------------------------------- deferred attempts
# The scanner builds only the attempts the report can use (current, last failed, last successful);
# the others keep only their verdict inputs and context. These cases move those three around.

def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes().rstrip(b"\n") + b"\n"


OK = _sample("esptool4-success.log")
BAD = _sample("esptool2-mid-write.log")
CK = _sample("ck-mid-write.log")
IDE = _sample("arduino-ide2-esp32-timeout.log")
PROSE = b"thanks for any help!\nhere is my sketch:\nvoid setup() {}\n"


@pytest.mark.parametrize(
    "data",
    [
        BAD + OK * 60,
        OK + BAD * 60,
        (BAD + OK) * 30 + CK * 3,
        OK * 20 + BAD + PROSE,
        BAD * 20 + OK + PROSE,
        BAD * 20 + PROSE * 40,
        IDE + BAD * 5 + OK * 5 + IDE + CK * 3 + PROSE,
        PROSE + IDE * 3 + PROSE,
        (CK + BAD + IDE + OK) * 15,
    ],
    ids=["bad-then-ok", "ok-then-bad", "alternating", "ok-bad-prose", "bad-ok-prose", "bad-prose",
         "ide-context", "prose-ide", "mixed"],
)
def test_many_attempts_scan_the_same(data: bytes) -> None:
    check_same(data)


def test_context_is_inherited_across_attempts() -> None:
    # the IDE banner (os, board) is printed once; every later attempt inherits it
    tracker, _ = scanner.scan(io.BytesIO(IDE + BAD * 10 + PROSE))
    ref, _ = reference_scan(IDE + BAD * 10 + PROSE)
    assert tracker.current.context == ref.current.context
    check_same(IDE + BAD * 10 + PROSE)


MULTI = [
    b"Writing at 0x1000... (5 %)\rWriting at 0x2000... (100 %)",
    b"Hash of data verified.\resptool.py v4.5.1",
    b"A fatal error occurred: Failed to connect\resptool.py v3.0\rSerial port /dev/ttyUSB0",
    b"Connecting....\rChip is ESP32-D0WD-V3 (revision v3.1)",
]


@pytest.mark.parametrize("seed", range(8))
def test_lines_holding_several_lines_scan_the_same(seed: int) -> None:
    rng = random.Random(seed)
    parts = [OK, BAD, CK, PROSE, *MULTI]
    check_same(b"\n".join(rng.choice(parts).rstrip(b"\n") for _ in range(rng.randint(5, 80))) + b"\n")


@pytest.mark.parametrize("seed", range(6))
def test_small_bounds_scan_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # tiny bounds: attempts are built part by part (pending lines over the bound, caches cleared)
    monkeypatch.setattr(scanner, "PENDING_BYTES", 5 + seed * 3)
    monkeypatch.setattr(scanner, "BATCH_BYTES", 1)
    monkeypatch.setattr(scanner, "RECORD_BYTES", 1)
    monkeypatch.setattr(scanner, "BATCH_LINES", 7 + seed * 5)
    monkeypatch.setattr(scanner, "CACHE_LINES", 40 + seed * 30)
    monkeypatch.setattr(scanner, "TEXT_LINES", 30 + seed * 20)
    rng = random.Random(seed)
    lines: list[str] = []
    for _ in range(rng.randint(50, 400)):
        lines.extend(rng.sample(POOL, rng.randint(1, 30)))
    data = "\n".join(lines).encode() + b"\n"
    check_same(data)
    check_same(OK + BAD * 30 + data + PROSE)


def test_huge_single_attempt_crosses_the_bound() -> None:
    # one attempt over more batches than PENDING_BYTES allows (built part by part), then two more and prose
    body = b"Writing at 0x00010000... (3 %)\n" + b"read 0, requested 1\nflush start\nhello\n" * (
        scanner.BATCH_LINES * (scanner.PENDING_BYTES // scanner.BATCH_BYTES + 2) // 3)
    check_same(BAD + body + b"A fatal error occurred: Timed out\n" + OK + CK + PROSE)


def test_small_batches_scan_the_same() -> None:
    # attempts that span batches
    data = (CK + BAD + OK + PROSE) * 6
    got = scanner.Scanner()
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    step = 7
    for i in range(0, len(lines), step):
        got.feed(i + 1, lines[i : i + step])
    assert _state(got.finish(), len(lines)) == _state(*reference_scan(data))


def _stamped(data: bytes) -> bytes:
    # a serial monitor's time stamp on every line makes every raw line distinct
    return b"".join(b"12:%02d:%02d.%03d -> %s\n" % (i // 60000 % 60, i // 1000 % 60, i % 1000, line)
                    for i, line in enumerate(data.splitlines()))


@pytest.mark.parametrize("data", [OK * 30 + BAD * 20, (CK + IDE + PROSE) * 25], ids=["esptool", "ck-ide"])
def test_time_stamped_lines_scan_the_same_and_share_records(data: bytes) -> None:
    stamped = _stamped(data)
    check_same(stamped)
    s = scanner.Scanner()
    lines = stamped.split(b"\n")
    s.feed(1, lines)
    # each message is parsed once, however many distinct time stamps it came with
    assert s.parsed <= len(set(data.splitlines())) + 1


# ----------------------------------------------------------------------------- flat memory
# Every cache and memo of the scanner is bounded in entries and in bytes (issue #12: the context memo
# used to keep every raw line that updated the context, only its entry count was capped). With small
# bounds, a generated log of every shape that broke the promise must stay within them after every
# batch, and still scan exactly like the reference loop.

SMALL_BOUNDS = {
    "BATCH_LINES": 400, "CACHE_LINES": 1500, "CACHE_BYTES": 60_000, "TEXT_LINES": 1000, "TEXT_BYTES": 300_000,
    "PLAN_REFS": 6000,
    "CONTEXT_MEMO_BYTES": 32_000, "INTERN_BYTES": 16_000, "SHAPE_BYTES": 4000, "PENDING_BYTES": 40_000,
    "BATCH_BYTES": 10_000,
}


def _hostile_log() -> bytes:
    rng = random.Random(7)
    parts = [OK, BAD * 3, CK]
    for i in range(4000):  # time-stamped progress: every raw line distinct, each updates the context
        parts.append(b"12:%02d:%02d.%03d -> Writing at 0x%08x... (%d %%)\n" % (i // 60000, i // 1000 % 60, i % 1000,
                                                                              0x10000 + i % 200 * 0x400, i % 200 // 2))
    parts.append(OK * 20)
    parts.extend(b"Hello from the sketch, loop %d\n" % i for i in range(3000))  # distinct lines
    parts.extend(b"Changing baud rate to %d\n" % (115200 + i) for i in range(1500))  # distinct contexts
    parts.extend(b"Writing at 0x%08x... (5 %%)\rWriting at 0x%08x... (9 %%)\n" % (i, i + 1) for i in range(800))
    parts.append(b"Flashing with command:esptool.py --port /dev/ttyUSB%d " % 1 + b"--chip esp32 " * 300 + b"\n")
    parts.extend(rng.choice([OK, BAD, CK, IDE, PROSE]) for _ in range(150))
    return b"".join(parts)


def test_caches_stay_within_their_byte_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SMALL_BOUNDS.items():
        monkeypatch.setattr(scanner, name, value)
    data = _hostile_log()
    lines = data.split(b"\n")[:-1]
    s = scanner.Scanner()
    longest = max(map(len, lines))
    raw_batch = (longest + scanner.RAW_BYTES) * scanner.BATCH_LINES  # what one batch alone may add
    text_batch = (2 * longest + scanner.RECORD_BYTES) * scanner.BATCH_LINES
    worst: dict[str, int] = {}
    for i in range(0, len(lines), 997):  # the reader's batches, cut again by the scanner
        s.feed(i + 1, lines[i : i + 997])
        for key, value in s.memory().items():
            worst[key] = max(worst.get(key, 0), value)
    assert worst["cache_lines"] <= scanner.CACHE_LINES + 1 and worst["texts"] <= scanner.TEXT_LINES + 1
    assert worst["cache_bytes"] <= max(scanner.CACHE_BYTES, raw_batch)
    assert worst["text_bytes"] <= max(scanner.TEXT_BYTES, text_batch)
    assert worst["plan_refs"] <= scanner.PLAN_REFS and worst["plans"] <= scanner.MEMO_ENTRIES
    assert worst["context_bytes"] <= scanner.CONTEXT_MEMO_BYTES
    assert worst["intern_bytes"] <= scanner.INTERN_BYTES
    assert worst["shape_bytes"] <= scanner.SHAPE_BYTES
    assert worst["pending_bytes"] <= scanner.PENDING_BYTES
    # the bounds were reached (the log is big enough to test them), and the result is still exact
    assert worst["context_bytes"] > scanner.CONTEXT_MEMO_BYTES // 4 and worst["intern_bytes"] > scanner.INTERN_BYTES // 2
    assert worst["cache_bytes"] > scanner.CACHE_BYTES // 2 and worst["text_bytes"] > scanner.TEXT_BYTES // 2
    assert _state(s.finish(), len(lines)) == _state(*reference_scan(data))

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
    """The plain loop: every logical line through Tracker.add (unknown lines capped per attempt)."""
    tracker = Tracker()
    lines = 0
    for number, items in parse_stream(io.BytesIO(data)):
        lines = number
        for text, kind, fields in items:
            if kind == "other" and tracker.current.count("other") >= scanner.KEEP_OTHER:
                tracker.lines_other += 1
                tracker.events_seen += 1
                continue
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

"""The pre-filter in front of lark (parse.first_token) may only ever skip lines lark would reject."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_grammar import CASES

from espdiag import parse
from espdiag.normalise import normalise

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_LINES = sorted({t for p in SAMPLES.iterdir() if p.suffix in (".log", ".md")
                       for raw in p.read_text("utf-8", "replace").splitlines() for t in normalise(raw)})


def _unfiltered(text: str) -> str:
    try:
        parse.parser().parse(text)
    except Exception:
        return "other"
    return "parsed"


@pytest.mark.parametrize("line", [c[0] for c in CASES if c[1] != "other"])
def test_every_grammar_case_passes_the_filter(line: str) -> None:
    assert parse.first_token().match(line) is not None


@pytest.mark.parametrize("line", SAMPLE_LINES)
def test_filter_never_hides_a_sample_line(line: str) -> None:
    if _unfiltered(line) == "parsed":
        assert parse.first_token().match(line) is not None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE_LINES + [c[0] for c in CASES]), st.integers(0, 40), st.text(max_size=8))
def test_filter_agrees_with_lark(line: str, cut: int, junk: str) -> None:
    for text in (line[cut:], junk + line, line[:cut]):
        if _unfiltered(text) == "parsed":
            assert parse.first_token().match(text) is not None


# ----------------------------------------------------------------------------- linear parse time
# A line that does not parse is tried again from its anchors (parse.parse_line); a crafted line with
# an anchor every few characters used to cost one whole-line lark parse per anchor (34 s per MB).
# The work is counted in lark calls and characters handed to lark, not timed.

def _lark_work(data: bytes) -> tuple[int, int]:
    from espdiag.api import diagnose_bytes

    calls, chars = parse.LarkWork.calls, parse.LarkWork.chars
    diagnose_bytes(data)
    return parse.LarkWork.calls - calls, parse.LarkWork.chars - chars


@pytest.mark.parametrize(
    "line",
    [
        lambda i: b"x%05d " % i + b"Connecting." * 371,  # the crafted input of issue #12 (4 KB lines)
        lambda i: b"Connecting." * 371 + b"%05d" % i,
        lambda i: b"x%05d " % i + b"A fatal error occurred: x%d " % i * 140,
        lambda i: b"x%05d " % i + b"".join(b"Serial port %d " % j for j in range(300)),
    ],
    ids=["connecting-after-junk", "connecting-first", "fatal-repeated", "distinct-anchors"],
)
def test_anchor_retries_are_linear(line: object) -> None:
    make = line  # a line-number -> bytes function
    data = b"\n".join(make(i) for i in range(256)) + b"\n"  # type: ignore[operator]
    assert len(data) > 700_000
    calls, chars = _lark_work(data)
    lines = 256 * 2  # normalising may split a line in two ("Connecting." then the rest)
    assert calls <= lines * (2 + parse.MAX_ANCHOR_TRIES)
    assert chars <= 3 * len(data)  # each line whole about twice at most, plus small windows


def test_anchor_inside_a_line_still_found() -> None:
    # what the retries are for: a known message behind another tool's words
    kind, _ = parse.parse_line("Unexpected error: ESP Chip Auto-Detection failed: Failed to connect to ESP32: "
                               "No serial data received.")
    assert kind != "other"
    long = "[upload] " + "A fatal error occurred: Failed to connect to ESP32: Timed out waiting for packet header"
    assert parse.parse_line(long + " " + "x" * 600)[0] == parse.parse_line(long)[0] != "other"

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

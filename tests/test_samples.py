"""Hand-written logs in the real formats, and the forum thread this project started from."""

from __future__ import annotations

import pytest
import yaml
from conftest import SAMPLES, SHARED

from espdiag.api import diagnose_path

EXPECT = yaml.safe_load((SAMPLES / "expectations.yaml").read_text())


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_sample(name: str) -> None:
    want = EXPECT[name]
    report = diagnose_path(SAMPLES / name)
    ids = [c.id for c in report.causes]
    if "verdict" in want:
        assert report.verdict == want["verdict"]
    if want.get("verdict") == "success":
        assert not [c for c in report.causes if c.confidence >= 0.5]
    if "top" in want:
        assert ids[:1] == [want["top"]], ids
    for cause in want.get("top3", []):
        assert cause in ids[:3], ids
    for cause in want.get("not_top3", []):
        assert cause not in ids[:3], ids
    if "attempts" in want:
        assert report.attempts == want["attempts"]


def test_evidence_points_at_real_lines() -> None:
    path = SAMPLES / "ck-cloud-read-zero.log"
    lines = path.read_text().splitlines()
    report = diagnose_path(path)
    for cause in report.causes:
        for e in cause.evidence:
            assert e.text in lines[e.line - 1]


SEED = SHARED / "seeds" / "forum-thread-espcomm-upload-mem-failed.txt"


@pytest.mark.skipif(not SEED.exists(), reason="shared seed thread not present")
def test_seed_thread_whole_paste() -> None:
    # The whole thread: three logs and prose. The last log (reset method ck, read 0) is diagnosed.
    report = diagnose_path(SEED)
    ids = [c.id for c in report.causes]
    assert report.verdict == "failure"
    assert report.attempts == 3
    assert ids[0] == "boot-mode"
    assert "strapping-gpio15" in ids[:3]
    assert "baud-too-high" not in ids[:3]

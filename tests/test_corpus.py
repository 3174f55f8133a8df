"""The real corpus guards accuracy: tests/corpus (and folders named in ESPDIAG_CORPUS) scored in-process.

Fails when top-1 or top-3 drops below the floors in tests/corpus/FLOORS.json, or when a log labelled with a
failure cause ends with no cause at all (unless espdiag reads it as a successful upload: then the label
and the log disagree, and no cause would be honest). Not a timing test: one diagnosis per case, in-process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import ROOT

from espdiag import corpus

CORPUS = ROOT / "tests" / "corpus"
FLOORS = json.loads((CORPUS / "FLOORS.json").read_text(encoding="utf-8"))


def _roots() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("ESPDIAG_CORPUS", "").split(os.pathsep) if p.strip()]
    return [CORPUS, *extra]


def check(outcomes: list[corpus.Outcome], floors: dict[str, float]) -> list[str]:
    """What falls short of the floors (empty when all is well)."""
    problems = []
    n = len(outcomes)
    if n < floors.get("min_cases", 0):
        problems.append(f"only {n} labelled cases (floor {floors['min_cases']})")
    if n:
        for key in ("top1", "top3"):
            rate = sum(getattr(o, key) for o in outcomes) / n
            if rate < floors[key]:
                problems.append(f"{key} {rate:.1%} is below the floor {floors[key]:.1%}")
    for o in outcomes:
        if o.want != "success" and not o.got and o.verdict != "success":
            problems.append(f"{o.name}: labelled {o.want}, but no cause at all (verdict {o.verdict})")
    return problems


@pytest.mark.parametrize("root", _roots(), ids=str)
def test_corpus_stays_above_its_floors(root: Path) -> None:
    cases = corpus.load_cases([root])
    if not cases and root == CORPUS and not FLOORS.get("min_cases"):
        pytest.skip("tests/corpus holds no labelled cases on this branch")
    outcomes = [corpus.judge(s) for s in corpus.diagnose(cases)]
    # the case count guards the in-repo corpus only (other folders are as big as they are)
    floors = FLOORS if root == CORPUS else {k: v for k, v in FLOORS.items() if k != "min_cases"}
    problems = check(outcomes, floors)
    assert not problems, f"{corpus.summary(outcomes)}\n" + "\n".join(problems)


def _case(root: Path, name: str, cause: str, log: str, source: str = "https://example.org/t/1") -> None:
    folder = root / name
    folder.mkdir()
    (folder / "log.txt").write_text(log, encoding="utf-8")
    (folder / "label.yaml").write_text(f"source: {source}\ncause: {cause}\n", encoding="utf-8")


NO_SYNC = "esptool.py v4.7.0\nSerial port COM3\nConnecting......\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n"
DENIED = ("esptool v5.1.0\nSerial port /dev/ttyUSB0:\n\nA fatal error occurred: Could not open /dev/ttyUSB0, the port is "
          "busy or doesn't exist.\n([Errno 13] could not open port /dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0')\n")


def test_the_floors_catch_a_drop(tmp_path: Path) -> None:
    _case(tmp_path, "a", "boot-mode", NO_SYNC)
    _case(tmp_path, "b", "port-permission", DENIED, "https://example.org/t/2")
    _case(tmp_path, "c", "wrong-chip", NO_SYNC, "https://example.org/t/3")  # a miss on purpose
    outcomes = [corpus.judge(s) for s in corpus.diagnose(corpus.load_cases([tmp_path]))]
    assert [o.top1 for o in outcomes] == [True, True, False]
    assert check(outcomes, {"top1": 0.6, "top3": 0.6}) == []
    assert check(outcomes, {"top1": 0.7, "top3": 0.6}) == ["top1 66.7% is below the floor 70.0%"]
    assert check(outcomes, {"top1": 0.0, "top3": 0.0, "min_cases": 4}) == ["only 3 labelled cases (floor 4)"]


def test_a_failure_label_with_no_cause_is_caught(tmp_path: Path) -> None:
    _case(tmp_path, "quiet", "usb-cable", "hello\nworld\n")
    outcomes = [corpus.judge(s) for s in corpus.diagnose(corpus.load_cases([tmp_path]))]
    assert check(outcomes, {"top1": 0.0, "top3": 0.0}) == ["quiet: labelled usb-cable, but no cause at all (verdict unknown)"]


def test_threads_stay_in_one_fold(tmp_path: Path) -> None:
    for i in range(12):
        _case(tmp_path, f"c{i}", "boot-mode", NO_SYNC, f"https://example.org/t/{i // 2}#comment-{i}")
    scored = corpus.diagnose(corpus.load_cases([tmp_path]))
    assert len({s.case.thread for s in scored}) == 6
    for train, test in corpus.folds(scored, 5):
        assert not {s.case.thread for s in train} & {s.case.thread for s in test}
    assert len(corpus.cross_validate(scored, 5)) == 12

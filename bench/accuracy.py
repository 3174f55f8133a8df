"""Score espdiag against folders of labelled upload logs: top-1/top-3, a reliability table and the ECE.

Layout (the same as the project's corpus, tests/corpus): one folder per case holding ``log.txt`` and
``label.yaml`` with ``cause: <taxonomy id>`` (``success`` for a log of a good upload, ``unknown`` to
skip) and ``source: <thread URL>``. A ``success`` case counts as right when the verdict is success and
no cause reaches 0.5; its confidence is 1 minus the highest cause's.

    python bench/accuracy.py path/to/corpus [more/folders ...] [--verbose] [--cv 5]

``--cv K`` also prints the cross-validated numbers: the confidence model (espdiag/calibration.json)
refitted K times, each time without one fold of threads, and each case judged by the model that did not
see its thread (see bench/calibrate.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from espdiag import corpus
from espdiag.rules import load_rules


def table(outcomes: Sequence[corpus.Outcome]) -> str:
    lines = ["confidence   cases  mean confidence  right at top-1"]
    for label, n, mean_conf, acc in corpus.reliability(outcomes):
        lines.append(f"{label:11} {n:6}  {mean_conf:15.2f}  {acc:14.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--rules", action="append", default=[], type=Path, help="extra rule folders")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case, not only misses")
    ap.add_argument("--cv", type=int, default=0, metavar="K", help="also cross-validate the confidence model")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    cases = corpus.load_cases(args.roots)
    if not cases:
        print("no labelled cases found")
        return 2
    scored = corpus.diagnose(cases, load_rules(args.rules))
    outcomes = [corpus.judge(s) for s in scored]
    for s, o in zip(scored, outcomes, strict=True):
        if args.verbose or not o.top1:
            mark = "ok  " if o.top1 else ("top3" if o.top3 else "MISS")
            got = ", ".join(f"{c} {v:.2f}" for c, v in o.got[:3]) or "-"
            stage = f" [{s.report.stage.id}]" if s.report.stage else ""
            print(f"{mark} {o.name}: want {o.want}; got {o.verdict}{stage}: {got}")
    print(table(outcomes))
    print(f"{corpus.summary(outcomes)}  time {time.perf_counter() - started:.1f}s")
    if args.cv:
        cv = corpus.cross_validate(scored, args.cv)
        print(f"cross-validated ({args.cv} folds grouped by thread):")
        print(table(cv))
        print(corpus.summary(cv))
    return 0


if __name__ == "__main__":
    sys.exit(main())

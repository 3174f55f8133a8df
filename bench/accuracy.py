#!/usr/bin/env python3
"""Score espdiag against folders of labelled upload logs; prints per-case results and top-1/top-3.

Layout (the same as the project's shared corpus): one folder per case holding ``log.txt`` and
``label.yaml`` with ``cause: <taxonomy id>`` (``success`` for a log of a good upload, ``unknown`` to
skip). A ``success`` case counts as right when the verdict is success and no cause reaches 0.5.

    python bench/accuracy.py path/to/corpus [more/folders ...] [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

from espdiag.api import diagnose_path
from espdiag.rules import load_rules


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--rules", action="append", default=[], type=Path, help="extra rule folders")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every case, not only misses")
    args = ap.parse_args(argv)
    rules = load_rules(args.rules)
    n = top1 = top3 = 0
    started = time.perf_counter()
    for root in args.roots:
        for label_path in sorted(root.rglob("label.yaml")):
            log = label_path.with_name("log.txt")
            if not log.exists():
                continue
            label = yaml.safe_load(label_path.read_text(encoding="utf-8", errors="replace")) or {}
            want = str(label.get("cause", "unknown"))
            if want == "unknown":
                continue
            n += 1
            report = diagnose_path(log, rules)
            ids = [c.id for c in report.causes]
            if want == "success":
                ok1 = ok3 = report.verdict == "success" and not [c for c in report.causes if c.confidence >= 0.5]
            else:
                ok1, ok3 = ids[:1] == [want], want in ids[:3]
            top1 += ok1
            top3 += ok3
            if args.verbose or not ok1:
                mark = "ok  " if ok1 else ("top3" if ok3 else "MISS")
                got = ", ".join(f"{c.id} {c.confidence:.2f}" for c in report.causes[:3]) or "-"
                print(f"{mark} {label_path.parent.name}: want {want}; got {report.verdict}: {got}")
    if not n:
        print("no labelled cases found")
        return 2
    elapsed = time.perf_counter() - started
    print(f"cases {n}  top1 {top1}/{n} = {top1 / n:.1%}  top3 {top3}/{n} = {top3 / n:.1%}  time {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

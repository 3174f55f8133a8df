"""Fit espdiag's confidence model on the labelled corpus and write it to espdiag/calibration.json.

    python bench/calibrate.py                 # tests/corpus
    python bench/calibrate.py DIR [DIR ...]   # other folders of cases (same layout)

What is fitted (espdiag/calibration.py): how often each cause fixed a failure in each stage (per tool and
per chip), the weights of rule score, rule match and that base rate, and the isotonic curve from the
resulting probability to a confidence. Before writing, it prints the cross-validated numbers (5 folds
grouped by thread: no thread's logs are fitted and judged in the same fold) and the in-sample ones.
Pure Python; a few seconds for a few hundred cases.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from espdiag import corpus

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "espdiag" / "calibration.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("roots", nargs="*", type=Path, default=[ROOT / "tests" / "corpus"])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--dry-run", action="store_true", help="print the numbers, write nothing")
    args = ap.parse_args(argv)
    cases = corpus.load_cases(args.roots)
    if not cases:
        print("no labelled cases found", file=sys.stderr)
        return 2
    scored = corpus.diagnose(cases)
    cv = corpus.cross_validate(scored, args.folds)
    model = corpus.fit(scored)
    fitted = [corpus.judge(s, model) for s in scored]
    print(f"cross-validated ({args.folds} folds grouped by thread): {corpus.summary(cv)}")
    for label, n, mean_conf, acc in corpus.reliability(cv):
        print(f"  {label}: {n} cases, mean confidence {mean_conf:.2f}, right {acc:.2f}")
    print(f"in-sample: {corpus.summary(fitted)}")
    print(f"weights: rule {model.w_rule}, match {model.w_match}, prior {model.w_prior}, hand {model.hand_weight}; "
          f"curve {list(model.curve)}")
    if args.dry_run:
        return 0
    data = model.to_json()
    data["fitted_on"] = {
        "cases": len(scored), "threads": len({s.case.thread for s in scored}),
        "cross_validated": corpus.summary(cv), "in_sample": corpus.summary(fitted),
    }
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

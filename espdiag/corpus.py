"""Score espdiag on folders of labelled real logs, fit the confidence model, cross-validate it by thread.

A case is a folder with ``log.txt`` and ``label.yaml`` (``cause:`` a taxonomy id, ``success`` for a good
upload, ``unknown`` to skip; ``source:`` the thread's URL). Used by bench/accuracy.py, bench/calibrate.py
and tests/test_corpus.py; all in-process (one diagnosis per case, then every refit re-ranks from the
rule scores and the stage alone).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from espdiag import api, calibration, ranking
from espdiag.calibration import Model
from espdiag.report import Report
from espdiag.rules import RuleSet

# the confidence bins of the project's scorer (shared/tools/score-corpus), so the ECEs agree
BINS = ((0.0, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 1.01))
_URL = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Case:
    name: str
    log: Path
    cause: str
    thread: str  # the source thread, so that logs of one thread stay in one fold


@dataclass(frozen=True)
class Scored:
    case: Case
    report: Report

    def ranked(self, model: Model | None) -> list[tuple[str, float]]:
        """The causes as espdiag would show them with ``model`` (None: as diagnosed)."""
        r = self.report
        if model is None or r.stage is None:
            return [(c.id, c.confidence) for c in r.causes]
        named = [c for c, v in r.rule_scores.items() if v >= ranking.MIN_CONFIDENCE]
        return ranking.shown_causes(calibration.confidences(model, r.rule_scores, r.stage.id, r.context), named)


@dataclass(frozen=True)
class Outcome:
    name: str
    want: str
    got: tuple[tuple[str, float], ...]
    verdict: str
    top1: bool
    top3: bool
    confidence: float  # of the answer judged at top-1 (for a success case: 1 - the highest cause's)


def thread_of(source: object, fallback: str) -> str:
    m = _URL.search(str(source or ""))
    if not m:
        return fallback
    url = m.group(0).split("#", 1)[0].rstrip(").,;'\"/").lower()
    return re.sub(r"^https?://(?:www\.)?", "", url)


def load_cases(roots: Iterable[Path]) -> list[Case]:
    cases = []
    for root in roots:
        for label_path in sorted(Path(root).rglob("label.yaml")):
            log = label_path.with_name("log.txt")
            if not log.exists():
                continue
            label = yaml.safe_load(label_path.read_text(encoding="utf-8", errors="replace")) or {}
            cause = str(label.get("cause", "unknown")) if isinstance(label, dict) else "unknown"
            if cause == "unknown":
                continue
            name = label_path.parent.name
            cases.append(Case(name, log, cause, thread_of(label.get("source"), name)))
    return cases


def diagnose(cases: Iterable[Case], rules: RuleSet | None = None, model: Model | None = None) -> list[Scored]:
    return [Scored(c, api.diagnose_path(c.log, rules, model)) for c in cases]


def judge(s: Scored, model: Model | None = None) -> Outcome:
    got = tuple(s.ranked(model))
    want, verdict = s.case.cause, s.report.verdict
    if want == "success":
        ok1 = ok3 = verdict == "success" and not any(v >= 0.5 for _, v in got)
        conf = 1.0 - max((v for _, v in got), default=0.0)
    else:
        ids = [c for c, _ in got]
        ok1, ok3 = ids[:1] == [want], want in ids[:3]
        conf = got[0][1] if got else 0.0
    return Outcome(s.case.name, want, got, verdict, ok1, ok3, conf)


def ece(outcomes: Sequence[Outcome]) -> float:
    return sum(abs(mc - acc) * n for _, n, mc, acc in reliability(outcomes)) / max(1, len(outcomes))


def reliability(outcomes: Sequence[Outcome]) -> list[tuple[str, int, float, float]]:
    """Per confidence bin: label, cases, mean confidence, share right at top-1."""
    rows = []
    for lo, hi in BINS:
        inside = [o for o in outcomes if lo <= o.confidence < hi]
        if inside:
            rows.append((f"{lo:.2f}-{min(hi, 1.0):.2f}", len(inside), sum(o.confidence for o in inside) / len(inside),
                         sum(o.top1 for o in inside) / len(inside)))
    return rows


def summary(outcomes: Sequence[Outcome]) -> str:
    n = len(outcomes) or 1
    t1, t3 = sum(o.top1 for o in outcomes), sum(o.top3 for o in outcomes)
    return (f"cases {len(outcomes)}  top1 {t1}/{len(outcomes)} = {t1 / n:.1%}  top3 {t3}/{len(outcomes)} = {t3 / n:.1%}"
            f"  ECE {ece(outcomes):.3f}")


# ---------------------------------------------------------------------------------------- fitting --
# The weights of rule score, rule match and base rate are set (calibration.Model's defaults): on a corpus
# of a hundred or two cases, refitting them by likelihood moved them a lot for no gain in top-1/top-3
# across folds. What is fitted is the base rates, how much the hand prior counts, and the curve.
_GRID_HAND = (2.0, 4.0, 8.0)
DEFAULT = Model()


def _failures(scored: Sequence[Scored]) -> list[Scored]:
    return [s for s in scored if s.report.stage is not None]


def count(scored: Sequence[Scored]) -> calibration.Counts:
    """How often each cause fixed a failure, per stage, stage and tool, stage and chip."""
    counts: calibration.Counts = {}
    for s in _failures(scored):
        if s.case.cause == "success" or s.report.stage is None:
            continue
        for key in calibration.count_keys(s.report.stage.id, s.report.context):
            bucket = counts.setdefault(key, {})
            bucket[s.case.cause] = bucket.get(s.case.cause, 0.0) + 1.0
    return counts


def _loo_probs(model: Model, s: Scored) -> dict[str, float]:
    """The case's softmax probabilities with its own label left out of the counts."""
    stage = s.report.stage
    assert stage is not None
    minus = s.case.cause if s.case.cause != "success" else None
    rates = calibration.base_rates(model, stage.id, s.report.context, minus=minus)
    return calibration.softmax_scores(model, s.report.rule_scores, rates)


def fit(scored: Sequence[Scored]) -> Model:
    """Base rates from the corpus, the hand prior's weight by leave-one-out likelihood of the cause that fixed
    each failure, then the isotonic curve from leave-one-out probabilities."""
    fails = _failures(scored)
    counts = count(scored)
    labelled = [s for s in fails if s.case.cause != "success"]
    best: tuple[float, Model] | None = None
    for hand in _GRID_HAND:
        model = Model(DEFAULT.w_rule, DEFAULT.w_match, DEFAULT.w_prior, hand, counts)
        loglik = sum(math.log(max(1e-6, _loo_probs(model, s).get(s.case.cause, 0.0))) for s in labelled)
        if best is None or loglik > best[0] + 1e-9:
            best = (loglik, model)
    model = best[1] if best else Model(counts=counts)
    points = []
    for s in fails:
        probs = _loo_probs(model, s)
        top, p = max(probs.items(), key=lambda item: (item[1], item[0]), default=("", 0.0))
        points.append((p, top == s.case.cause))
    curve = calibration.isotonic(points, min_bin=10) if len(points) >= 10 else ()
    return Model(model.w_rule, model.w_match, model.w_prior, model.hand_weight, counts, curve)


def folds(scored: Sequence[Scored], k: int = 5) -> list[tuple[list[Scored], list[Scored]]]:
    """k train/test splits; every thread's cases fall in one test fold (a stable hash of its URL)."""
    threads = sorted({s.case.thread for s in scored})
    k = max(2, min(k, len(threads)))
    fold_of = {t: int(hashlib.sha1(t.encode()).hexdigest(), 16) % k for t in threads}
    out = []
    for i in range(k):
        test = [s for s in scored if fold_of[s.case.thread] == i]
        train = [s for s in scored if fold_of[s.case.thread] != i]
        if test and train:
            out.append((train, test))
    return out


def cross_validate(scored: Sequence[Scored], k: int = 5) -> list[Outcome]:
    """Every case judged by a model fitted without its thread."""
    outcomes: list[Outcome] = []
    for train, test in folds(scored, k):
        model = fit(train)
        outcomes.extend(judge(s, model) for s in test)
    return outcomes

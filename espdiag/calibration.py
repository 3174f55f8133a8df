"""Turn rule scores and the failed stage into calibrated confidences (the fitted model is data).

For a failed upload every cause the stage or a rule names is a candidate. Each gets a score

    w_rule * rule_confidence + w_match * [a rule matched] + w_prior * log(base rate of the cause)

and the confidences are the softmax of the scores over the candidates (one cause fixed the upload), then
mapped through a monotone (isotonic) table so that a cause shown at 70 % is right about 7 times in 10.
The base rate of a cause is how often it fixed a failure in the same stage, with the same tool and
chip, in the labelled corpus, on top of the stage's hand-set prior (espdiag/stages.yaml).
bench/calibrate.py fits the weights, counts and table and writes espdiag/calibration.json.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from espdiag import stages
from espdiag.events import FieldValue

Counts = dict[str, dict[str, float]]  # key ("stage", "stage|tool=X", "stage|chip=Y") -> cause -> count


@dataclass(frozen=True)
class Model:
    # defaults (and the centre of the fit's ridge): a matching rule outweighs the stage's base rates,
    # which order the causes no rule names
    w_rule: float = 2.0
    w_match: float = 3.0
    w_prior: float = 0.5
    hand_weight: float = 4.0  # how many corpus cases the hand-set prior of a stage is worth
    counts: Counts = field(default_factory=dict)
    curve: tuple[tuple[float, float], ...] = ()  # isotonic map, (softmax probability, confidence), x ascending

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": {"rule": self.w_rule, "match": self.w_match, "prior": self.w_prior, "hand": self.hand_weight},
            "counts": {k: dict(sorted(v.items())) for k, v in sorted(self.counts.items())},
            "curve": [list(p) for p in self.curve],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        w = data.get("weights", {})
        return cls(
            w_rule=float(w.get("rule", cls.w_rule)), w_match=float(w.get("match", cls.w_match)),
            w_prior=float(w.get("prior", cls.w_prior)), hand_weight=float(w.get("hand", cls.hand_weight)),
            counts={str(k): {str(c): float(n) for c, n in v.items()} for k, v in data.get("counts", {}).items()},
            curve=tuple((float(x), float(y)) for x, y in data.get("curve", ())),
        )


@functools.cache
def default_model() -> Model:
    try:
        text = resources.files("espdiag").joinpath("calibration.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return Model()
    return Model.from_json(json.loads(text))


def tool_key(ctx: Mapping[str, FieldValue]) -> str:
    tool = str(ctx.get("tool", "") or "")
    if tool in ("esptool.py", "esptool"):
        return "esptool"
    return tool if tool in ("esptool-ck", "espflash", "esptool-js") else "other"


def chip_key(ctx: Mapping[str, FieldValue]) -> str:
    chip = str(ctx.get("chip", "") or "")
    return chip if chip in ("ESP8266", "ESP32") else ("native-usb" if chip else "unknown")


def count_keys(stage: str, ctx: Mapping[str, FieldValue]) -> tuple[str, ...]:
    return (stage, f"{stage}|tool={tool_key(ctx)}", f"{stage}|chip={chip_key(ctx)}")


def base_rates(model: Model, stage: str, ctx: Mapping[str, FieldValue], minus: str | None = None) -> dict[str, float]:
    """P(cause | stage, tool, chip): the hand prior worth ``hand_weight`` cases plus the corpus counts.

    ``minus`` leaves one labelled cause out of the counts (the case being fitted, so it does not vote for itself).
    """
    hand = {c: w for c, w in stages.prior_weights(stage).items() if stages.applicable(c, ctx)}
    total = sum(hand.values()) or 1.0
    weights = {c: model.hand_weight * w / total for c, w in hand.items()}
    for key in count_keys(stage, ctx):
        for cause, n in model.counts.get(key, {}).items():
            if cause in weights:
                weights[cause] += max(0.0, n - (1.0 if cause == minus else 0.0))
    norm = sum(weights.values()) or 1.0
    return {c: w / norm for c, w in weights.items()}


def _logit(p: float) -> float:
    p = min(0.99, max(0.01, p))
    return math.log(p / (1.0 - p))


def softmax_scores(model: Model, rule: Mapping[str, float], rates: Mapping[str, float]) -> dict[str, float]:
    candidates = set(rates) | set(rule)
    floor = min(rates.values(), default=1e-3) / 2
    scores = {
        c: (model.w_rule * _logit(rule[c]) + model.w_match if c in rule else 0.0)
        + model.w_prior * math.log(rates.get(c, floor))
        for c in candidates
    }
    top = max(scores.values(), default=0.0)
    exp = {c: math.exp(s - top) for c, s in scores.items()}
    norm = sum(exp.values()) or 1.0
    return {c: e / norm for c, e in exp.items()}


def apply_curve(curve: Iterable[tuple[float, float]], p: float) -> float:
    points = list(curve)
    if not points:
        return p
    if p <= points[0][0]:
        return points[0][1] * (p / points[0][0]) if points[0][0] > 0 else points[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if p <= x1:
            return y0 + (y1 - y0) * (p - x0) / (x1 - x0) if x1 > x0 else y1
    return points[-1][1]


def confidences(model: Model, rule: Mapping[str, float], stage: str, ctx: Mapping[str, FieldValue]) -> dict[str, float]:
    """Calibrated confidence for every candidate cause of a failure in ``stage``."""
    probs = softmax_scores(model, rule, base_rates(model, stage, ctx))
    return calibrate(model, probs)


def calibrate(model: Model, probs: Mapping[str, float]) -> dict[str, float]:
    """The curve is fitted on the first answer's probability, so it maps the first; the others share what
    is left (1 - the first's confidence) in proportion to their probabilities, never above the first."""
    if not probs:
        return {}
    p_top = max(probs.values())
    c_top = min(0.99, max(0.01, apply_curve(model.curve, p_top)))
    scale = (1.0 - c_top) / max(1e-9, 1.0 - p_top)
    out = {}
    for c, p in probs.items():
        out[c] = round(c_top if p == p_top else min(c_top - 0.001, p * scale), 3)
    return out


def _merge(blocks: list[list[float]], i: int) -> None:
    """Merge block i+1 into block i."""
    nxt = blocks.pop(i + 1)
    for j in range(3):
        blocks[i][j] += nxt[j]


def isotonic(points: list[tuple[float, bool]], min_bin: int = 5) -> tuple[tuple[float, float], ...]:
    """Pool-adjacent-violators on (probability, right?) pairs: a monotone curve through bin means.

    Bins hold at least ``min_bin`` cases; a bin's confidence is shrunk towards its mean probability
    (two pseudo-cases) so that a small bin never claims 0 or 100 %.
    """
    blocks: list[list[float]] = []  # [sum_x, sum_y, n], means ascending
    for x, right in sorted(points):
        blocks.append([x, float(right), 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            _merge(blocks, len(blocks) - 2)
    # merging neighbours of a monotone sequence keeps it monotone (the merged mean lies between)
    while len(blocks) > 1:
        small = min(range(len(blocks)), key=lambda i: blocks[i][2])
        if blocks[small][2] >= min_bin:
            break
        _merge(blocks, small - 1 if small == len(blocks) - 1 else small)
    curve = []
    for sx, sy, n in blocks:
        mean_x = sx / n
        curve.append((round(mean_x, 4), round((sy + 2 * mean_x) / (n + 2), 4)))
    # keep it monotone after the shrinking
    out: list[tuple[float, float]] = []
    for x, y in curve:
        out.append((x, max(y, out[-1][1]) if out else y))
    return tuple(out)

"""Tell-apart checks: what to look at when the log cannot decide between its top causes.

The checks are data (``espdiag/checks.yaml``, loaded with ``yaml.safe_load`` and validated here);
this module only picks the ones that separate the report's candidate causes, cheapest first, and
fills in the port. A forum expert's next move is a question ("what does the serial monitor show at
74880 baud after RST?"); these are those questions, each with what every answer means.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from espdiag.events import FieldValue

if TYPE_CHECKING:
    from espdiag.ranking import Cause

CHECKS_FILE = Path(__file__).with_name("checks.yaml")
COSTS = ("look", "monitor", "meter")  # cheapest first
CHIP_FAMILIES = ("esp8266", "esp32")
MAX_CHECKS = 6
# per cost, so that the serial-monitor and multimeter questions are not crowded out by many cheap ones
PER_COST = {"look": 3, "monitor": 2, "meter": 1}
MAX_CANDIDATES = 5
CLOSE = 0.25  # the second cause within this much of the first: the log cannot decide
SURE = 0.9  # a top cause this confident needs no checks
# evidence kinds of an upload whose chip never answered the sync: the commonest ambiguous failure
NEVER_ANSWERED = frozenset({"no_serial_data", "timeout_packet_header", "connect_failed", "tx_path_down",
                            "ck_no_response", "ck_failed"})
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Answer:
    answer: str
    means: str
    points_to: tuple[str, ...]
    rules_out: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    id: str
    cost: str
    ask: str
    answers: tuple[Answer, ...]
    chips: tuple[str, ...] = ()

    @property
    def separates(self) -> frozenset[str]:
        return frozenset(c for a in self.answers for c in (*a.points_to, *a.rules_out))


@dataclass(frozen=True)
class Selected:
    """A check chosen for one report: placeholders filled, answers limited to what concerns the candidates."""

    check: Check
    ask: str
    answers: tuple[Answer, ...]
    candidates: tuple[str, ...]  # the report's causes this check tells apart


class ChecksFileError(ValueError):
    """The built-in checks file is broken: a bug in espdiag, caught by its tests."""


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and _ID.match(v) for v in value):
        raise ChecksFileError(f"{where}: expected a list of ids")
    return tuple(value)


def _text(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ChecksFileError(f"{where}: '{key}' must be a non-empty string")
    return value


def _answer(item: Any, where: str) -> Answer:
    if not isinstance(item, dict) or set(item) - {"answer", "means", "points_to", "rules_out"}:
        raise ChecksFileError(f"{where}: an answer has the keys answer, means, points_to, rules_out")
    answer = Answer(_text(item, "answer", where), _text(item, "means", where),
                    _strings(item.get("points_to"), where), _strings(item.get("rules_out"), where))
    if not answer.points_to and not answer.rules_out:
        raise ChecksFileError(f"{where}: answer {answer.answer!r} neither points to nor rules out a cause")
    return answer


def parse_checks(data: Any, name: str = "checks.yaml") -> tuple[Check, ...]:
    if not isinstance(data, dict) or set(data) != {"checks"} or not isinstance(data["checks"], list):
        raise ChecksFileError(f"{name}: expected a mapping with one key, 'checks', holding a list")
    checks: list[Check] = []
    for i, item in enumerate(data["checks"], 1):
        where = f"{name}: check {i}"
        if not isinstance(item, dict) or set(item) - {"id", "cost", "ask", "answers", "chips"}:
            raise ChecksFileError(f"{where}: a check has the keys id, cost, ask, answers, chips")
        cid = _text(item, "id", where)
        if not _ID.match(cid) or any(c.id == cid for c in checks):
            raise ChecksFileError(f"{where}: id {cid!r} is malformed or repeated")
        cost = item.get("cost")
        if cost not in COSTS:
            raise ChecksFileError(f"{where}: cost must be one of {', '.join(COSTS)}")
        chips = _strings(item.get("chips"), where)
        if set(chips) - set(CHIP_FAMILIES):
            raise ChecksFileError(f"{where}: chips must be among {', '.join(CHIP_FAMILIES)}")
        answers = item.get("answers")
        if not isinstance(answers, list) or len(answers) < 2:
            raise ChecksFileError(f"{where}: a check needs at least two answers")
        checks.append(Check(cid, str(cost), _text(item, "ask", where),
                            tuple(_answer(a, f"{where}, answer {j}") for j, a in enumerate(answers, 1)), chips))
    return tuple(checks)


@functools.cache
def load_checks(path: Path = CHECKS_FILE) -> tuple[Check, ...]:
    with open(path, encoding="utf-8") as f:
        return parse_checks(yaml.safe_load(f), path.name)


def chip_family(chip: FieldValue | None) -> str | None:
    text = str(chip or "").lower().replace("-", "")
    if text.startswith("esp8266") or text.startswith("esp8285"):
        return "esp8266"
    if text.startswith("esp32"):
        return "esp32"
    return None


def _fill(text: str, ctx: Mapping[str, FieldValue]) -> str:
    port = str(ctx.get("port") or "the board's port")
    return text.replace("{port}", port)


def candidates(causes: Sequence[Cause]) -> tuple[str, ...]:
    """The causes worth telling apart: the top one and those not far below it."""
    if not causes:
        return ()
    top = causes[0].confidence
    floor = max(0.15, top - 0.5)
    return tuple(c.id for c in causes[:MAX_CANDIDATES] if c.confidence >= floor)


def ambiguous(verdict: str, causes: Sequence[Cause]) -> bool:
    """Whether the report needs checks: a failure whose top causes are close, or whose chip never answered."""
    if verdict != "failure" or not causes or causes[0].confidence >= SURE:
        return False
    if len(causes) > 1 and causes[0].confidence - causes[1].confidence <= CLOSE:
        return True
    if causes[0].confidence < 0.5:
        return True
    return any(e.kind in NEVER_ANSWERED for c in causes for e in c.evidence)


def select(verdict: str, causes: Sequence[Cause], ctx: Mapping[str, FieldValue],
           checks: Sequence[Check] | None = None) -> list[Selected]:
    """The checks that separate the report's candidate causes, cheapest first (at most MAX_CHECKS)."""
    if not ambiguous(verdict, causes):
        return []
    cands = candidates(causes)
    family = chip_family(ctx.get("chip"))
    scored: list[tuple[int, int, int, Selected]] = []
    for order, check in enumerate(checks if checks is not None else load_checks()):
        if check.chips and family is not None and family not in check.chips:
            continue
        touched = tuple(c for c in cands if c in check.separates)
        # a check earns its place by splitting two candidates, or by confirming/ruling out a lone one
        if len(touched) < min(2, len(cands)):
            continue
        answers = tuple(a for a in check.answers if set(a.points_to) & set(cands) or set(a.rules_out) & set(cands))
        if len(answers) < 2:
            continue
        ask = _fill(check.ask, ctx)
        filled = tuple(Answer(a.answer, _fill(a.means, ctx), a.points_to, a.rules_out) for a in answers)
        scored.append((COSTS.index(check.cost), -len(touched), order, Selected(check, ask, filled, touched)))
    scored.sort(key=lambda s: s[:3])
    chosen: list[Selected] = []
    for cost, name in enumerate(COSTS):
        chosen += [s[3] for s in scored if s[0] == cost][: PER_COST[name]]
    return chosen[:MAX_CHECKS]


def answer_summary(answer: Answer, cands: Sequence[str]) -> str:
    """'points to X, Y; rules out Z' limited to the report's candidates (shared by every format)."""
    parts = []
    to = [c for c in answer.points_to if c in cands]
    out = [c for c in answer.rules_out if c in cands]
    if to:
        parts.append("points to " + ", ".join(to))
    if out:
        parts.append("rules out " + ", ".join(out))
    return "; ".join(parts)


def to_json(selected: Sequence[Selected]) -> list[dict[str, Any]]:
    return [
        {
            "id": s.check.id,
            "cost": s.check.cost,
            "ask": s.ask,
            "candidates": list(s.candidates),
            "answers": [
                {"answer": a.answer, "means": a.means, "points_to": list(a.points_to), "rules_out": list(a.rules_out)}
                for a in s.answers
            ],
        }
        for s in selected
    ]

"""Combine rule matches into ranked causes with a confidence in 0..1."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from espdiag import calibration, context, stages
from espdiag.context import KEYS as CONTEXT_KEYS
from espdiag.engine import Match, evaluate
from espdiag.events import Event, FieldValue
from espdiag.rules import MISSING_FIELD, Fix, fill
from espdiag.sessions import Session

MAX_EVIDENCE = 8
MIN_CONFIDENCE = 0.05
MIN_SHOWN = 3  # an unsure diagnosis of a failed upload shows at least this many ranked causes
MIN_STAGE_ONLY = 0.1  # a cause only the failed stage names is shown from this confidence (or to reach MIN_SHOWN)


@dataclass(frozen=True)
class Cause:
    id: str
    confidence: float
    title: str
    explain: str
    evidence: tuple[Event, ...]
    evidence_counts: Mapping[str, int]  # text -> how often that line occurred in the attempt
    fixes: tuple[str, ...]
    docs: tuple[str, ...]
    rules: tuple[str, ...]
    notes: tuple[str, ...]


def _values(ctx: Mapping[str, FieldValue], quoted: Iterable[Event]) -> Callable[[str], str]:
    """What a rule's {name} reads: the context key, else the field of the first quoted event that has it;
    the chip's own words for {boot_pin}, {strapping_pins} and {docs_chip}.

    The loader allows only these names, so no "{name}" or "<name>" can reach a report.
    """
    words = context.chip_words(str(ctx.get("chip", "") or ""))

    def value(name: str) -> str:
        if name in ctx:
            return str(ctx[name])
        if name in words:
            return words[name]
        found = next((e.fields[name] for e in quoted if name in e.fields), None)
        return str(found) if found is not None else CONTEXT_KEYS.get(name, MISSING_FIELD)

    return value


def _fill(text: str, ctx: Mapping[str, FieldValue], quoted: Iterable[Event] = ()) -> str:
    return fill(text, _values(ctx, tuple(quoted)))


_ASIDE = re.compile(r"\([^()]*\)")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def fix_meaning(text: str) -> str:
    """A fix reduced to what it asks for: lower case, no asides in parentheses, no punctuation.

    "Lower the upload speed to 115200 baud." and "Lower the upload speed to 115200 baud (460800 if
    that works, to save time)." are one step, given once (the first, from the best-scoring rule).
    """
    return _NON_WORD.sub(" ", _ASIDE.sub(" ", text.lower())).strip()


def _variant_text(text: str, variants: Mapping[str, str], ctx: Mapping[str, FieldValue]) -> str:
    """A fix with the words for the user's tool; for an Arduino log that does not say whether the IDE or
    arduino-cli ran, the IDE's menu first and the CLI's spelling second."""
    env = str(ctx.get("env", ""))
    variant = variants.get(env)
    if env == "arduino-cli" and variant is None:
        variant = variants.get("arduino-ide")
    elif env == "arduino-ide" and not ctx.get("ide") and variants.get("arduino-cli"):
        variant = " ".join(v for v in (variant, variants["arduino-cli"]) if v)
    return f"{text} {variant}".strip() if variant else text


def _fix_text(fix: Fix, ctx: Mapping[str, FieldValue]) -> str:
    return _variant_text(fix.text, fix.variants, ctx)


def _doc(url: str, ctx: Mapping[str, FieldValue]) -> str:
    """esptool's documentation has one tree per chip: link the detected chip's pages."""
    chip = str(ctx.get("chip", "") or "")
    return _ESPTOOL_DOCS.sub(rf"\g<1>{context.chip_words(chip)['docs_chip']}/", url) if chip else url


_ESPTOOL_DOCS = re.compile(r"^(https://docs\.espressif\.com/projects/esptool/en/(?:latest|stable|v[\w.]+)/)esp\w+/")


Hints = Mapping[str, tuple[float, tuple[Event, ...]]]  # cause -> (score, lines): a tool's own words (stages.hints)


def rule_confidences(matches: list[Match], hints: Hints | None = None) -> dict[str, float]:
    """Rules of one cause (and the words that name it) combine as independent evidence:
    1 - (1 - s1)(1 - s2)..., capped at 0.99."""
    out: dict[str, float] = {}
    scores = [(m.rule.cause, m.score) for m in matches] + [(c, v[0]) for c, v in (hints or {}).items()]
    for cause, score in scores:
        out[cause] = 1.0 - (1.0 - out.get(cause, 0.0)) * (1.0 - score)
    return {c: round(min(0.99, v), 3) for c, v in out.items()}


def shown_causes(confidences: Mapping[str, float], matched: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The candidates a failed upload shows, best first: every cause a rule names (``matched``: the rules'
    scores, already without those below MIN_CONFIDENCE), those only the stage names from MIN_STAGE_ONLY,
    and when the best is below 0.5 at least MIN_SHOWN; never none."""
    named = set(matched)
    ordered = sorted(confidences.items(), key=lambda item: (-item[1], item[0]))
    unsure = not ordered or ordered[0][1] < 0.5
    return [
        (c, v) for i, (c, v) in enumerate(ordered)
        if i == 0 or c in named or (unsure and i < MIN_SHOWN) or v >= MIN_STAGE_ONLY
    ]


def rank(
    matches: list[Match], session: Session, ctx: Mapping[str, FieldValue],
    stage: stages.Stage | None = None, model: calibration.Model | None = None, hints: Hints | None = None,
) -> list[Cause]:
    """Ranked causes. For a failed attempt (``stage`` given) every cause of the stage is a candidate and
    the confidences come from the fitted model; otherwise only the rules' own scores count."""
    by_cause: dict[str, list[Match]] = {}
    for m in matches:
        by_cause.setdefault(m.rule.cause, []).append(m)
    hints = hints or {}
    raw = rule_confidences(matches, hints)
    if stage is None:
        scores = {c: v for c, v in raw.items() if v >= MIN_CONFIDENCE}
    else:
        named = {c: v for c, v in raw.items() if v >= MIN_CONFIDENCE}
        scores = dict(shown_causes(calibration.confidences(model or calibration.default_model(), raw, stage.id, ctx), named))
    causes = []
    for cause_id, confidence in scores.items():
        group = by_cause.get(cause_id)
        if group is None:
            if stage is not None:
                causes.append(_from_stage(cause_id, confidence, stage, session, ctx, hints.get(cause_id)))
            continue
        group.sort(key=lambda m: -m.score)
        best = group[0]
        evidence: dict[int, Event] = {}
        for m in group:
            for e in m.evidence:
                evidence.setdefault(e.line, e)
        shown = _pick_evidence(sorted(evidence.values(), key=lambda e: e.line))
        counts = {e.text: session.text_counts.get(e.text, 1) for e in shown}
        fixes: list[str] = []
        said: set[str] = set()  # the meaning of each fix given (two rules often share one)
        for m in group:
            for fix in m.rule.fixes:
                if fix.unless is not None and evaluate(fix.unless, session, ctx)[0]:
                    continue
                values = _values(ctx, m.evidence)
                key = fix_meaning(fill(fix.text, values))
                if key not in said:
                    said.add(key)
                    fixes.append(fill(_fix_text(fix, ctx), values))
        docs = tuple(dict.fromkeys(_doc(d, ctx) for m in group for d in m.rule.docs))
        causes.append(Cause(
            id=cause_id, confidence=confidence, title=_fill(best.rule.title, ctx, best.evidence),
            explain=_fill(best.rule.explain, ctx, best.evidence), evidence=tuple(shown), evidence_counts=counts,
            fixes=tuple(fixes), docs=docs, rules=tuple(m.rule.id for m in group),
            notes=tuple(n for m in group for n in m.notes),
        ))
    causes.sort(key=lambda c: (-c.confidence, c.id))
    return causes


def _from_stage(
    cause_id: str, confidence: float, stage: stages.Stage, session: Session, ctx: Mapping[str, FieldValue],
    hint: tuple[float, tuple[Event, ...]] | None = None,
) -> Cause:
    """A cause that no rule names: the cause's generic card, with the stage (and the tool's own words that
    name the cause, if any) as the reason."""
    t = stages.tables()
    card = t.cards[cause_id]
    fixes: list[str] = []
    for fix in card.fixes:
        if isinstance(fix, str):
            text = fix
        else:
            text = _variant_text(str(fix["text"]), {str(k): str(v) for k, v in fix.get("for", {}).items()}, ctx)
        fixes.append(_fill(text, ctx))
    chip_words = context.chip_words(str(ctx.get("chip", "") or ""))
    docs = tuple(t.docs[d].replace("{docs_chip}", chip_words["docs_chip"]) for d in card.docs if d in t.docs)
    shown = sorted({e.line: e for e in (*stage.evidence, *(hint[1] if hint else ()))}.values(), key=lambda e: e.line)
    notes = [f"ranked by the failed stage ({stage.id}): {stage.why}"]
    if hint:
        notes.append("the tool's own words name this cause: " + "; ".join(e.text.strip()[:120] for e in hint[1]))
    return Cause(
        id=cause_id, confidence=confidence, title=_fill(card.title, ctx),
        explain=f"{_fill(card.explain, ctx)} When an upload fails while {stage.name}, this is a usual cause.",
        evidence=tuple(shown), evidence_counts={e.text: session.text_counts.get(e.text, 1) for e in shown},
        fixes=tuple(fixes), docs=docs, rules=(), notes=tuple(notes),
    )


def _pick_evidence(events: list[Event]) -> list[Event]:
    """Distinct lines first (a retry loop repeats itself), keeping the first and the last."""
    seen: dict[str, Event] = {}
    for e in events:
        seen.setdefault(e.text, e)
    distinct = sorted(seen.values(), key=lambda e: e.line)
    if len(distinct) <= MAX_EVIDENCE:
        return distinct
    return distinct[: MAX_EVIDENCE - 1] + distinct[-1:]

"""Where an upload attempt failed (its stage) and which causes usually stand behind a failure there.

The tables are data (espdiag/stages.yaml): which event kinds show which stage, generic words for lines
the grammar does not know, each stage's candidate causes, and a generic card per cause. The fitted
numbers that say how often each cause fixed each stage come from espdiag/calibration.json (see
bench/calibrate.py); this module only reads them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from espdiag.events import Event, FieldValue
from espdiag.sessions import Session

# event kinds whose text may hold a tool's own words (lines the grammar only half understood)
_WORDY = ("other", "fatal_error", "python_exception", "timeout_error", "upload_error", "connect_failed", "io_error")
_OPEN = re.compile(r"\bopen\b", re.IGNORECASE)
_BOOT_OUTPUT = ("rom_banner_8266", "rom_banner_32", "rom_boot_note", "invalid_header", "flash_read_err", "brownout")


@dataclass(frozen=True)
class StageInfo:
    id: str
    index: int
    name: str
    why: str
    causes: Mapping[str, float]


@dataclass(frozen=True)
class Card:
    title: str
    explain: str
    fixes: tuple[Any, ...]  # str or {text, for}
    docs: tuple[str, ...]
    chips: tuple[str, ...]


@dataclass(frozen=True)
class Tables:
    stages: tuple[StageInfo, ...]
    by_id: Mapping[str, StageInfo]
    kinds: Mapping[str, tuple[str, str]]
    ck_failed: Mapping[str, str]
    words: tuple[tuple[str, re.Pattern[str]], ...]
    failure_words: re.Pattern[str]
    success_words: re.Pattern[str]
    cards: Mapping[str, Card]
    docs: Mapping[str, str]
    floor: float
    hints: tuple[tuple[str, float, re.Pattern[str]], ...]


@dataclass(frozen=True)
class Stage:
    """The stage an attempt failed in, and the lines that show it."""

    id: str
    name: str
    why: str
    evidence: tuple[Event, ...]
    source: str  # "event" (a recognised failure), "words" (a tool's own words), "progress" (how far it got)

    @property
    def sentence(self) -> str:
        return f"Failed while {self.name}: {self.why}."


def _load_yaml(text: str) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)  # a safe loader (the C one when present)


@functools.cache
def tables() -> Tables:
    data = _load_yaml(resources.files("espdiag").joinpath("stages.yaml").read_text(encoding="utf-8"))
    stages = tuple(
        StageInfo(s["id"], i, s["name"], s["why"], {str(k): float(v) for k, v in s["causes"].items()})
        for i, s in enumerate(data["stages"])
    )
    cards = {
        cid: Card(c["title"], c["explain"], tuple(c["fixes"]), tuple(c.get("docs", ())), tuple(c.get("chips", ())))
        for cid, c in data["causes"].items()
    }
    return Tables(
        stages=stages,
        by_id={s.id: s for s in stages},
        kinds={k: (v[0], v[1]) for k, v in data["kinds"].items()},
        ck_failed=dict(data["ck_failed"]),
        words=tuple((w["stage"], re.compile(w["regex"], re.IGNORECASE)) for w in data["words"]),
        failure_words=re.compile(data["failure_words"], re.IGNORECASE),
        success_words=re.compile(data["success_words"], re.IGNORECASE),
        cards=cards,
        docs=dict(data["docs"]),
        floor=float(data["floor"]),
        hints=tuple((h["cause"], float(h["score"]), re.compile(h["regex"], re.IGNORECASE)) for h in data["hints"]),
    )


def _word_stage(text: str) -> str | None:
    for stage, pattern in tables().words:
        if pattern.search(text[:1024]):
            return stage
    return None


def failing_lines(session: Session) -> list[Event]:
    """Lines the grammar did not understand that still say something failed (any tool's words)."""
    t = tables()
    return [e for e in session.events() if e.kind in _WORDY and t.failure_words.search(e.text[:1024])]


def hints(session: Session) -> dict[str, tuple[float, tuple[Event, ...]]]:
    """Causes that a tool's own words name on failing lines no rule understood: cause -> (score, lines)."""
    found: dict[str, tuple[float, tuple[Event, ...]]] = {}
    for e in failing_lines(session):
        if e.kind not in ("other", "upload_error", "connect_failed"):
            continue
        for cause, score, pattern in tables().hints:
            if pattern.search(e.text[:1024]):
                old_score, lines = found.get(cause, (0.0, ()))
                found[cause] = (max(old_score, score), (*lines, e)[:3])
    return found


def boot_failing_lines(session: Session) -> list[Event]:
    """Failing lines of boot output that concern the boot itself (bootloader, image, partition table,
    flash), not errors the application logs once it runs."""
    return [e for e in failing_lines(session) if _word_stage(e.text) in ("boot", "flash-begin")]


def succeeding_lines(session: Session) -> list[Event]:
    t = tables()
    return [e for e in session.events() if e.kind == "other" and t.success_words.search(e.text[:1024])]


def _stage_of(event: Event, t: Tables) -> tuple[str, str] | None:
    if event.kind == "ck_failed":
        stage = t.ck_failed.get(str(event.get("function", "")))
        return (stage, "failed") if stage else None
    if event.kind == "stub" and "running" in event.text.lower():
        return ("stub", "done")
    return t.kinds.get(event.kind)


def cut_short(session: Session) -> Stage | None:
    """For a log that ends inside an attempt (no result either way): the step it was in when it ends."""
    t = tables()
    furthest, event = _progress(session, t)
    if furthest < 0 or event is None:
        return None
    info = t.stages[furthest]
    return Stage(info.id, info.name, f"the log ends after: {event.text.strip()[:120]}", (event,), "progress")


def _progress(session: Session, t: Tables) -> tuple[int, Event | None]:
    """How far the attempt got: the furthest step it was in, or the one after the furthest it finished.

    The furthest, not the latest: a reply out of step in the middle of a write is not a sync problem.
    """
    events = session.events()
    upload_seen = any(t.kinds.get(e.kind, ("", ""))[0] in ("write", "verify") for e in events)
    best, best_event, best_done = -1, None, False
    for e in events:
        got = _stage_of(e, t)
        if got is None or got[1] == "failed":
            continue
        if e.kind in _BOOT_OUTPUT and not upload_seen and best >= 0:
            continue  # boot output during the connect phase: the chip was not in download mode
        index = t.by_id[got[0]].index
        if index > best or (index == best and got[1] == "done"):
            best, best_event, best_done = index, e, got[1] == "done"
    if best >= 0 and best_done:
        # the step after a finished one; the speed change happens only when the log shows it
        best = min(best + 1, len(t.stages) - 1)
        if t.stages[best].id == "baud":
            best += 1
    return best, best_event


def infer(session: Session, verdict: str) -> Stage | None:
    """The stage the attempt failed in; None unless the verdict is a failure."""
    if verdict != "failure":
        return None
    t = tables()
    # how far the attempt got: the furthest stage it was in, or the one after the furthest it finished
    furthest, furthest_event = _progress(session, t)
    failed: tuple[str, Event] | None = None
    for e in session.events():
        got = _stage_of(e, t)
        if got is not None and got[1] == "failed":
            failed = (got[0], e)
            break
    if failed is not None:
        stage_id, event = failed
        if event.kind == "usage_error" and (worded := _word_stage(event.text)) not in (None, "command"):
            stage_id = worded  # a refused command line that names the real trouble ("--port: ... not readable")
        info = t.by_id[stage_id]
        # a link failure after the attempt had passed that step (a silent chip after it was identified, a
        # port error after the sync began) belongs to how far it got: the link broke there
        # ("could not open the port" stays a port failure wherever it comes: esptool reopens the port on
        # reset; so does a port the host cannot write to)
        link = stage_id == "connect" or (event.kind == "port_error" and not _OPEN.search(event.text))
        if info.index >= furthest or not link:
            return Stage(info.id, info.name, info.why, (event,), "event")
        info = t.stages[furthest]
        return Stage(info.id, info.name, f"the link failed at this step: {event.text.strip()[:120]}",
                     (event,), "event")
    wordy = [(e, _word_stage(e.text)) for e in failing_lines(session)]
    named = [(e, s) for e, s in wordy if s is not None]
    if wordy and furthest == t.by_id["boot"].index:
        # boot output that reports errors of its own: those lines say why, not the banner
        info = t.by_id["boot"]
        return Stage(info.id, info.name, info.why, tuple(e for e, _ in wordy[:3]), "words")
    if named and (furthest < 0 or t.by_id[named[0][1]].index >= furthest):
        e, stage_id = named[0]
        info = t.by_id[stage_id]
        return Stage(info.id, info.name, info.why, (e,), "words")
    if furthest >= 0 and furthest_event is not None:
        info = t.stages[furthest]
        return Stage(info.id, info.name, f"the last step the log shows is: {furthest_event.text.strip()[:120]}",
                     (furthest_event,), "progress")
    if named:
        e, stage_id = named[0]
        info = t.by_id[stage_id]
        return Stage(info.id, info.name, info.why, (e,), "words")
    # nothing says how far it got: a tool that failed before it printed anything of its own
    info = t.by_id["connect"] if session.count("command_line") or session.count("tool_banner") else t.by_id["command"]
    shown = (wordy[0][0],) if wordy else ()
    return Stage(info.id, info.name, "the log shows no step of the upload before the failure", shown, "progress")


def applicable(cause: str, ctx: Mapping[str, FieldValue]) -> bool:
    card = tables().cards.get(cause)
    chip = str(ctx.get("chip", ""))
    return card is None or not card.chips or not chip or chip in card.chips


def prior_weights(stage: str) -> dict[str, float]:
    """The stage's hand-set prior weight for every cause with a card (the floor for the unlisted ones)."""
    t = tables()
    listed = t.by_id[stage].causes
    return {cause: listed.get(cause, t.floor) for cause in t.cards}

"""``--format sarif``: SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

One run for all input files. Each cause id is a SARIF rule (its title, fixes and docs become the
rule's help); each cause found is a result located at its first evidence line, with the other
evidence lines as related locations. A failure nothing explains is a result of the rule ``unknown``.
Successful uploads produce no results. Logs read from standard input have no location.
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

from espdiag import __version__
from espdiag.ranking import Cause
from espdiag.render.safe import json_text
from espdiag.report import CHECKLIST, Report

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LIKELY = 0.5


def _uri(source: str) -> str | None:
    if source.startswith("<"):
        return None
    return PurePath(source).as_posix()


def _location(uri: str | None, line: int, text: str | None = None, index: int | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": max(line, 1)}
    if text is not None:
        region["snippet"] = {"text": text}
    loc: dict[str, Any] = {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}
    if index is not None:
        loc["id"] = index
    return loc


def _rule(cause: Cause) -> dict[str, Any]:
    fixes = "\n".join(f"{i}. {f}" for i, f in enumerate(cause.fixes, 1))
    rule: dict[str, Any] = {
        "id": cause.id,
        "name": "".join(part.capitalize() for part in cause.id.split("-")),
        "shortDescription": {"text": cause.title},
        "fullDescription": {"text": cause.explain or cause.title},
        "help": {"text": f"Fix:\n{fixes}" if fixes else cause.title},
        "properties": {"tags": ["esp", "firmware-upload"]},
    }
    if cause.docs:
        rule["helpUri"] = cause.docs[0]
    return rule


def _unknown_rule() -> dict[str, Any]:
    steps = "\n".join(f"{i}. {s}" for i, s in enumerate(CHECKLIST, 1))
    return {
        "id": "unknown", "name": "Unknown",
        "shortDescription": {"text": "The upload failed and no rule explains why"},
        "fullDescription": {"text": "The log shows a failed upload, but nothing in it pins the cause down."},
        "help": {"text": f"Work through this checklist:\n{steps}"},
    }


def _level(report: Report, cause: Cause) -> str:
    if report.verdict != "failure":
        return "warning" if cause.confidence >= LIKELY else "note"
    return "error" if cause.confidence >= LIKELY else "warning"


def to_dict(reports: list[Report]) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for report in reports:
        uri = _uri(report.source)
        for cause in report.causes:
            rules.setdefault(cause.id, _rule(cause))
            result: dict[str, Any] = {
                "ruleId": cause.id,
                "level": _level(report, cause),
                "message": {"text": f"{cause.title} ({cause.confidence:.0%})"
                            + (f"\n{cause.explain}" if cause.explain else "")},
                "properties": {"confidence": cause.confidence, "verdict": report.verdict,
                               "rules": list(cause.rules)},
            }
            if uri is not None:
                line = cause.evidence[0].line if cause.evidence else report.last_line
                text = cause.evidence[0].text if cause.evidence else None
                result["locations"] = [_location(uri, line, text)]
                related = [_location(uri, e.line, e.text, i) for i, e in enumerate(cause.evidence[1:], 1)]
                if related:
                    result["relatedLocations"] = related
            results.append(result)
        if report.verdict == "failure" and not any(c.confidence >= LIKELY for c in report.causes):
            rules.setdefault("unknown", _unknown_rule())
            result = {"ruleId": "unknown", "level": "error", "message": {"text": report.summary},
                      "properties": {"verdict": report.verdict}}
            if uri is not None:
                result["locations"] = [_location(uri, report.last_line)]
            results.append(result)
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "espdiag", "version": __version__, "semanticVersion": __version__,
                                "rules": list(rules.values())}},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }],
    }


def render(reports: list[Report]) -> str:
    return json_text(json.dumps(to_dict(reports), indent=2, ensure_ascii=False)) + "\n"

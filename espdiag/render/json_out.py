"""``--format json``: the stable machine contract (schema 1, documented in espdiag/schema.json)."""

from __future__ import annotations

import json
from typing import Any

from espdiag.checks import to_json as checks_json
from espdiag.render.safe import json_text
from espdiag.report import SCHEMA, Report


def to_dict(report: Report) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "source": report.source,
        "verdict": report.verdict,
        "tool": report.tool,
        "summary": report.summary,
        "context": report.context,
        "upload": report.upload,
        "attempts": report.attempts,
        "failed_attempts": report.failed_attempts,
        "diagnosed_lines": [report.first_line, report.last_line],
        "causes": [
            {
                "id": c.id,
                "confidence": c.confidence,
                "title": c.title,
                "explanation": c.explain,
                "evidence": [
                    {"line": e.line, "text": e.text, "count": c.evidence_counts.get(e.text, 1)}
                    for e in c.evidence
                ],
                "fixes": list(c.fixes),
                "docs": list(c.docs),
                "rules": list(c.rules),
                "notes": list(c.notes),
            }
            for c in report.causes
        ],
        "checklist": list(report.checklist),
        "checks": checks_json(report.checks),
        "notes": report.notes,
    }


def render(reports: list[Report]) -> str:
    if len(reports) == 1:
        return json_text(json.dumps(to_dict(reports[0]), indent=2, ensure_ascii=False)) + "\n"
    return json_text(json.dumps([to_dict(r) for r in reports], indent=2, ensure_ascii=False)) + "\n"

"""The forum and CI formats: markdown, github, sarif, and the JSON Schema of --format json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from conftest import ROOT, SAMPLES

from espdiag.api import diagnose_path, diagnose_text
from espdiag.events import Event
from espdiag.ranking import Cause
from espdiag.render import github, json_out, markdown, sarif
from espdiag.report import Report

SAMPLE_FILES = sorted(SAMPLES.glob("*.log")) + sorted(SAMPLES.glob("*.md"))
SCHEMA = json.loads((ROOT / "espdiag" / "schema.json").read_text())
ESCAPES = re.compile(r"\x1b|\x9b")


def _cause(i: int, evidence: int = 2, text: str = "line") -> Cause:
    ev = tuple(Event("other", n, f"{text} {n}") for n in range(10, 10 + evidence))
    return Cause(id=f"cause-{i}", confidence=round(0.9 - i * 0.1, 2), title=f"Title {i}", explain="Why.",
                 evidence=ev, evidence_counts={e.text: 1 for e in ev}, fixes=("Do a.", "Do b."),
                 docs=("https://example.com/doc",), rules=(f"rule-{i}",), notes=())


def _report(causes: list[Cause], verdict: str = "failure", source: str = "up.log") -> Report:
    return Report(source=source, verdict=verdict, context={"tool": "esptool.py", "port": "COM3"}, causes=causes,
                  first_line=1, last_line=30, lines=30)


# ------------------------------------------------------------------------------------------------ json
def test_schema_is_a_valid_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$defs"]["report"]["properties"]["schema"] == {"const": 1, "description": "Version of this format"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_json_output_validates(path: Path) -> None:
    data = json.loads(json_out.render([diagnose_path(path)]))
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_json_list_and_empty_input_validate() -> None:
    reports = [diagnose_text(""), diagnose_path(SAMPLES / "esptool4-success.log")]
    jsonschema.validate(json.loads(json_out.render(reports)), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_schema_rejects_a_wrong_schema_version() -> None:
    data = json.loads(json_out.render([diagnose_text("")]))
    data["schema"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


# ------------------------------------------------------------------------------------------------ markdown
@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_markdown_has_no_terminal_escapes_and_balanced_fences(path: Path) -> None:
    out = markdown.render([diagnose_path(path)])
    assert not ESCAPES.search(out)
    fences = [line for line in out.splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0
    assert out.count("<details>") == out.count("</details>")


def test_markdown_reply_shape() -> None:
    out = markdown.render([diagnose_path(SAMPLES / "ck-cloud-read-zero.log")])
    assert out.startswith("**espdiag:** `samples/ck-cloud-read-zero.log`: **FAILURE**") or "**FAILURE**" in out
    assert re.search(r"### 1\. The ESP8266 never entered the bootloader — `boot-mode`, \d+%", out)
    assert "```text\n  5 | Flashing with command:" in out
    assert " 41 | read 0, requested 1   (x9)" in out
    assert "\n1. Press and hold FLASH" in out and "\n2. Pick the reset method" in out
    assert "Docs: <https://arduino-esp8266.readthedocs.io/" in out


def test_markdown_folds_causes_beyond_the_top_three() -> None:
    out = markdown.render([_report([_cause(i) for i in range(5)])])
    head, folded = out.split("<details>", 1)
    assert "### 3. Title 2" in head and "Title 3" not in head
    assert folded.startswith("<summary>2 less likely causes: cause-3 60%, cause-4 50%</summary>")
    assert "### 4. Title 3" in folded and "### 5. Title 4" in folded


def test_markdown_folds_long_evidence() -> None:
    out = markdown.render([_report([_cause(0, evidence=8)])])
    assert "<details><summary>Evidence (8 log lines)</summary>" in out
    short = markdown.render([_report([_cause(0, evidence=3)])])
    assert "<details>" not in short


def test_markdown_escapes_html_and_fences_backticks() -> None:
    cause = _cause(0, evidence=1, text="```` <script>x</script>")
    cause = Cause(**{**cause.__dict__, "fixes": ("Select <port> & retry",)})
    out = markdown.render([_report([cause])])
    assert "`````text" in out  # a fence longer than the longest backtick run in the evidence
    assert "10 | ```` <script>x</script>" in out  # evidence inside the fence stays verbatim
    assert "1. Select &lt;port> &amp; retry" in out


def test_markdown_unexplained_failure_gets_the_checklist() -> None:
    out = markdown.render([diagnose_text("A fatal error occurred: the moon is in the wrong phase\n")])
    assert "Work through this checklist" in out and "\n1. Check that the selected port" in out


# ------------------------------------------------------------------------------------------------ github
@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("50%", "50%25", "50%25"),
        ("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac"),
        ("C:\\x,y", "C:\\x,y", "C%3A\\x%2Cy"),
        ("%0A", "%250A", "%250A"),
    ],
)
def test_workflow_command_escaping(raw: str, data: str, prop: str) -> None:
    assert github.escape_data(raw) == data
    assert github.escape_property(raw) == prop


def test_github_annotations_point_at_evidence() -> None:
    report = _report([_cause(0, evidence=3), _cause(5, evidence=1)])
    first, second = github.lines(report)
    assert first.startswith("::error file=up.log,line=10,endLine=12,title=espdiag%3A Title 0::Title 0 (cause-0, 90%25)%0A")
    assert "%0AFix:%0A1. Do a.%0A2. Do b." in first
    assert second.startswith("::warning file=up.log,line=10,title=espdiag%3A Title 5::")
    assert all("\n" not in line for line in (first, second))


def test_github_non_contiguous_evidence_has_no_range() -> None:
    cause = _cause(0, evidence=1)
    ev = (Event("other", 3, "a"), Event("other", 9, "b"))
    cause = Cause(**{**cause.__dict__, "evidence": ev})
    (line,) = github.lines(_report([cause]))
    assert "line=3," in line and "endLine" not in line and "line 9: b" in line


def test_github_success_unknown_and_stdin() -> None:
    assert github.lines(_report([], "success")) == [
        "::notice file=up.log,title=espdiag%3A upload succeeded::The upload succeeded."]
    assert github.lines(_report([], "unknown", "<stdin>")) == [
        "::notice title=espdiag%3A no upload result::No upload result found in this log."]
    (line,) = github.lines(_report([], "failure"))
    assert line.startswith("::error file=up.log,line=30,title=espdiag%3A upload failed%2C cause unknown::The upload failed")


# ------------------------------------------------------------------------------------------------ sarif
def test_sarif_structure() -> None:
    reports = [diagnose_path(SAMPLES / "ck-cloud-read-zero.log"), diagnose_path(SAMPLES / "esptool4-success.log"),
               diagnose_text("A fatal error occurred: the moon is in the wrong phase\n", name="<stdin>")]
    data = json.loads(sarif.render(reports))
    assert data["version"] == "2.1.0" and data["$schema"].endswith("sarif-2.1.0.json")
    (run,) = data["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) and "boot-mode" in ids and "unknown" in ids
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    top = run["results"][0]
    assert top["ruleId"] == "boot-mode" and top["level"] == "error"
    region = top["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"] == "samples/ck-cloud-read-zero.log" or region["artifactLocation"]["uri"].endswith(
        "samples/ck-cloud-read-zero.log")
    assert region["region"]["startLine"] == 5
    assert [loc["physicalLocation"]["region"]["startLine"] for loc in top["relatedLocations"]] == [9, 41, 175]
    unknown = [r for r in run["results"] if r["ruleId"] == "unknown"]
    assert unknown and "locations" not in unknown[0]  # standard input has no file to point at


def test_sarif_success_has_no_results() -> None:
    data = json.loads(sarif.render([diagnose_path(SAMPLES / "esptool4-success.log")]))
    assert data["runs"][0]["results"] == []

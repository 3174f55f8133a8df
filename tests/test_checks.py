"""Tell-apart checks (issue 15): the data file is valid, they are chosen only for ambiguous failures,
cheapest first, and they appear in the text, Markdown and JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from espdiag.api import diagnose_text
from espdiag.checks import COSTS, ChecksFileError, load_checks, parse_checks, select
from espdiag.render import json_out, markdown, text
from espdiag.rules import TAXONOMY

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "espdiag" / "schema.json").read_text())

# The commonest ambiguous failure: the chip never answered (cable? GPIO15? GPIO2? BOOT button? power?)
NEVER_ANSWERED_8266 = """\
esptool.py v4.8.1
Serial port /dev/ttyUSB0
Connecting........_____....
A fatal error occurred: Failed to connect to ESP8266: No serial data received.
"""
GPIO15_BANNER = """\
Serial port /dev/ttyUSB0
 ets Jan  8 2013,rst cause:2, boot mode:(7,6)
Connecting........
A fatal error occurred: Failed to connect to ESP8266: No serial data received.
"""
ESP32_NEVER_ANSWERED = """\
esptool.py v4.8.1
Serial port COM5
Connecting........_____....
A fatal error occurred: Failed to connect to ESP32: No serial data received.
"""


def test_every_check_names_known_causes_and_a_known_cost() -> None:
    checks = load_checks()
    assert len(checks) >= 8
    for check in checks:
        assert check.cost in COSTS
        assert check.separates <= set(TAXONOMY), check.id
        assert len(check.answers) >= 2


@pytest.mark.parametrize("bad", [
    {"checks": [{"id": "x", "cost": "cheap", "ask": "a", "answers": []}]},
    {"checks": [{"id": "x", "cost": "look", "ask": "a",
                 "answers": [{"answer": "y", "means": "m"}, {"answer": "n", "means": "m", "rules_out": ["usb-cable"]}]}]},
    {"checks": [{"id": "x", "cost": "look", "ask": "a", "typo": 1, "answers": []}]},
    {"checks": "nope"},
    ["not a mapping"],
])
def test_a_broken_checks_file_is_rejected(bad: object) -> None:
    with pytest.raises(ChecksFileError):
        parse_checks(bad)


def test_checks_file_is_loaded_safely() -> None:
    # a python tag must not construct anything: safe_load refuses it
    with pytest.raises(yaml.YAMLError):
        parse_checks(yaml.safe_load("checks: !!python/object/apply:os.system ['true']"))


def test_never_answered_gets_checks_cheapest_first_with_the_serial_monitor_question() -> None:
    report = diagnose_text(NEVER_ANSWERED_8266)
    checks = report.checks
    assert checks, [c.id for c in report.causes]
    costs = [COSTS.index(c.check.cost) for c in checks]
    assert costs == sorted(costs)
    ids = [c.check.id for c in checks]
    assert "monitor-esp8266" in ids and "monitor-esp32" not in ids
    monitor = checks[ids.index("monitor-esp8266")]
    assert "74880" in monitor.ask
    gpio15 = next(a for a in monitor.answers if "(4,x)" in a.answer)
    assert gpio15.points_to == ("strapping-gpio15",)
    # every check splits at least two of the candidate causes
    assert all(len(c.candidates) >= 2 for c in checks)
    assert "/dev/ttyUSB0" in checks[0].ask


def test_esp32_gets_the_esp32_monitor_question() -> None:
    ids = [c.check.id for c in diagnose_text(ESP32_NEVER_ANSWERED).checks]
    assert "monitor-esp32" in ids and "monitor-esp8266" not in ids


def test_a_decisive_log_gets_no_checks() -> None:
    assert diagnose_text(GPIO15_BANNER).checks == []
    assert diagnose_text("esptool.py v4.8.1\nHash of data verified.\nLeaving...\n").checks == []


def test_select_needs_a_failure() -> None:
    report = diagnose_text(NEVER_ANSWERED_8266)
    assert select("success", report.causes, report.context) == []


def test_checks_in_text_markdown_and_json() -> None:
    report = diagnose_text(NEVER_ANSWERED_8266)
    plain = text.render([report])
    assert "cheapest first" in plain and "boot mode:(4,x) to (7,x): GPIO15 (D8) is high at reset." in plain
    md = markdown.render([report])
    assert "**boot mode:(4,x) to (7,x)** → GPIO15 (D8) is high at reset. (points to strapping-gpio15" in md
    data = json.loads(json_out.render([report]))
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert data["checks"] and {"id", "cost", "ask", "candidates", "answers"} <= data["checks"][0].keys()
    assert json.loads(json_out.render([diagnose_text(GPIO15_BANNER)]))["checks"] == []

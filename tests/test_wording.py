"""What the report says must be what the log shows: fix lists without repeats or steps that do not
apply, explanations without invented facts, guesses worded as guesses, boot logs named as such."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest
from conftest import ROOT, SAMPLES

from espdiag.api import diagnose_path, diagnose_text
from espdiag.render import json_out, markdown, text

SCHEMA = json.loads((ROOT / "espdiag" / "schema.json").read_text())

ESP32_HEAD = """esptool.py v4.7.0
Serial port {port}
Connecting....
Chip is ESP32-D0WD-V3 (revision v3.1)
Uploading stub...
Running stub...
Stub running...
Changing baud rate to 921600
Changed.
Configuring flash size...
"""


def _cause(report, cause_id):  # type: ignore[no-untyped-def]
    return next(c for c in report.causes if c.id == cause_id)


# ------------------------------------------------------------------------------------------- fixes
def test_one_fix_is_given_once_however_many_rules_suggest_it() -> None:
    log = ESP32_HEAD.format(port="/dev/ttyUSB0") + (
        "Writing at 0x00010000... (3 %)\n"
        "A fatal error occurred: Invalid head of packet (0x65): Possible serial noise or corruption.\n")
    report = diagnose_text(log)
    baud = _cause(report, "baud-too-high")
    assert len(baud.rules) >= 2  # two rules that both say "Lower the upload speed to 115200 baud"
    lower = [f for f in baud.fixes if f.startswith("Lower the upload speed")]
    assert len(lower) == 1, baud.fixes


@pytest.mark.parametrize(("a", "b"), [
    ("Lower the upload speed to 115200 baud.", "Lower the upload speed to 115200 baud (460800 if that works, to save time)."),
    ("Close the Serial Monitor.", "close the serial monitor"),
])
def test_fix_meaning_ignores_asides_case_and_punctuation(a: str, b: str) -> None:
    from espdiag.ranking import fix_meaning

    assert fix_meaning(a) == fix_meaning(b)
    assert fix_meaning(a) != fix_meaning("Raise the upload speed to 115200 baud.")


MISSING = {
    "linux": "Serial port /dev/ttyUSB0\nA fatal error occurred: Could not open /dev/ttyUSB0, the port doesn't exist\n",
    "linux-errno": ("A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
                    "([Errno 2] could not open port /dev/ttyUSB0: [Errno 2] No such file or directory: '/dev/ttyUSB0')\n"),
    "windows": "A fatal error occurred: Could not open COM7, the port doesn't exist\n",
}


@pytest.mark.parametrize("case", ["linux", "linux-errno"])
def test_a_missing_port_on_linux_gets_linux_fixes(case: str) -> None:
    report = diagnose_text("esptool.py v4.7.0\n" + MISSING[case])
    assert report.causes[0].id == "port-missing" and report.context["os"] == "linux"
    assert "busy" not in report.causes[0].title  # the log says the port does not exist, not that it is busy
    fixes = " ".join(c_fix for c in report.causes for c_fix in c.fixes)
    assert "serial monitor" not in fixes.lower()  # nothing holds a port that does not exist
    assert "install the driver" not in fixes.lower()  # Linux has the CH340/CP210x drivers built in
    assert "brltty" in fixes  # what takes CH340 ports away on Linux


def test_no_brltty_for_the_chips_own_usb_port() -> None:
    report = diagnose_path(SAMPLES / "idf-flash-no-data.log")  # an ESP32-S3 on /dev/ttyACM0
    fixes = " ".join(f for c in report.causes for f in c.fixes)
    assert "brltty" not in fixes and "serial monitor" not in fixes.lower()


def test_a_missing_port_on_windows_still_suggests_the_driver() -> None:
    report = diagnose_text("esptool.py v4.7.0\n" + MISSING["windows"])
    fixes = " ".join(report.causes[0].fixes)
    assert "install the driver" in fixes and "brltty" not in fixes


# ------------------------------------------------------------------------------------ explanations
def test_no_quote_of_lines_the_log_does_not_hold() -> None:
    report = diagnose_text("warning: espcomm_sync failed\nerror: espcomm_open failed\n")
    boot = _cause(report, "boot-mode")
    assert "read 0" not in boot.explain


def test_the_write_progress_is_where_the_write_stood_when_it_failed() -> None:
    log = ESP32_HEAD.format(port="/dev/ttyUSB0") + (
        "Writing at 0x00001000... (50 %)\nWriting at 0x00007000... (100 %)\n"
        "Wrote 26384 bytes (16350 compressed) at 0x00001000 in 0.5 seconds (effective 439.1 kbit/s)...\n"
        "Hash of data verified.\n"
        "Writing at 0x00010000... (13 %)\nWriting at 0x00020000... (27 %)\n"
        "A fatal error occurred: The chip stopped responding.\n")
    explain = _cause(diagnose_text(log), "power-supply").explain
    assert "27%" in explain and "100" not in explain


def test_no_half_of_the_data_after_a_complete_write() -> None:
    log = ESP32_HEAD.format(port="/dev/ttyUSB0") + (
        "Writing at 0x00001000... (50 %)\nWriting at 0x00007000... (100 %)\n"
        "A fatal error occurred: The chip stopped responding.\n")
    baud = _cause(diagnose_text(log), "baud-too-high")
    assert baud.notes and not any("half" in note for note in baud.notes)


def test_a_guess_is_not_stated_as_a_fact_in_the_summary() -> None:
    report = diagnose_text("esptool.py v4.7.0\nSerial port /dev/ttyUSB0\nConnecting....\n"
                           "A fatal error occurred: Packet content transfer stopped (received 8 bytes)\n")
    top = report.causes[0]
    assert top.confidence < 0.5
    assert report.summary == f"The upload failed; possible cause ({top.confidence:.0%}): {top.title}."
    confident = diagnose_path(SAMPLES / "ck-cloud-read-zero.log")
    assert confident.summary == f"The upload failed: {confident.causes[0].title}."


# -------------------------------------------------------------------------------------- boot logs
@pytest.mark.parametrize("sample", ["monitor-brownout.log", "boot-log-gpio15-high.log"])
def test_a_boot_log_with_a_problem_has_its_own_wording_and_a_consistent_verdict(sample: str) -> None:
    report = diagnose_path(SAMPLES / sample)
    assert not report.upload
    assert report.summary.startswith("This log holds no upload, only the chip's boot output, and it shows a problem: ")
    assert "upload failed" not in report.summary
    plain = text.render([report])
    assert plain.splitlines()[0].endswith(": BOOT PROBLEM") and "upload failed" not in plain
    assert "**BOOT PROBLEM**" in markdown.render([report])
    data = json.loads(json_out.render([report]))
    assert (data["verdict"], data["upload"], data["attempts"], data["failed_attempts"]) == ("failure", False, 0, 0)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_a_boot_log_that_booted_from_flash() -> None:
    report = diagnose_text("ets Jun  8 2016 00:22:57\n\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\n"
                           "entry 0x400805f0\nhello from the sketch\n")
    assert (report.verdict, report.upload, report.attempts) == ("success", False, 0)
    assert report.summary == ("This log holds no upload, only the chip's boot output; the chip booted from flash, "
                              "so the firmware was written.")
    assert text.render([report]).splitlines()[0] == "<text>: BOOTED"


def test_the_schema_ties_the_verdict_to_the_attempt_counts() -> None:
    data = json.loads(json_out.render([diagnose_path(SAMPLES / "monitor-brownout.log")]))
    data["attempts"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)
    upload = json.loads(json_out.render([diagnose_path(SAMPLES / "ck-cloud-read-zero.log")]))
    assert upload["upload"] is True and upload["failed_attempts"] >= 1
    upload["failed_attempts"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(upload, SCHEMA, cls=jsonschema.Draft202012Validator)


# ------------------------------------------------------------------------------------------ grammar
def test_one_less_likely_cause_is_singular() -> None:
    report = diagnose_path(SAMPLES / "ck-cloud-read-zero.log")
    one = report.causes[0]
    report.causes = [dataclasses.replace(one, id=f"cause-{i}") for i in range(6)]
    assert "(1 less likely cause not shown; use --verbose)" in text.render([report])
    report.causes.append(dataclasses.replace(one, id="cause-7"))
    assert "(2 less likely causes not shown; use --verbose)" in text.render([report])

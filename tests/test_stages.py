"""The failure-stage model: every failed attempt is placed in a stage, from any tool's words, and gets ranked causes."""

from __future__ import annotations

import json

import jsonschema
import pytest
from conftest import ROOT

from espdiag.api import diagnose_text
from espdiag.render import json_out

HEAD = "esptool.py v4.7.0\nSerial port /dev/ttyUSB0\nConnecting....\n"
CHIP = HEAD + "Chip is ESP32-D0WD-V3 (revision v3.0)\nFeatures: WiFi, BT\nMAC: 24:0a:c4:00:00:01\n"
STUB = CHIP + "Uploading stub...\nRunning stub...\nStub running...\n"


@pytest.mark.parametrize(
    ("log", "stage"),
    [
        ("esptool.py v4.7.0\nSerial port COM7\nA fatal error occurred: Could not open COM7, the port doesn't exist\n", "port"),
        (HEAD + "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n", "connect"),
        (HEAD + "A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)! "
         "The chip needs to be in download mode.\n", "connect"),
        (HEAD + "A fatal error occurred: Failed to connect to ESP32: Download mode successfully detected, but getting "
         "no sync reply: The serial TX path seems to be down.\n", "sync"),
        (CHIP + "A fatal error occurred: This chip is ESP32, not ESP32-S3. Wrong --chip argument?\n", "detect"),
        (CHIP + "Uploading stub...\nA fatal error occurred: Failed to write to target RAM (result was 01070000)\n", "stub"),
        (STUB + "Changing baud rate to 921600\nA fatal error occurred: Timed out waiting for packet header\n", "baud"),
        (STUB + "Changing baud rate to 460800\nChanged.\nConfiguring flash size...\n"
         "A fatal error occurred: Timed out waiting for packet header\n", "flash-begin"),
        # after the stub, no speed change: the next step is the flash, not the speed
        (STUB + "A fatal error occurred: Unable to verify flash chip connection (No serial data received.).\n",
         "flash-begin"),
        (CHIP + "Erasing flash (this may take a while)...\n"
         "A fatal error occurred: Timed out waiting for packet header\n", "flash-begin"),
        (STUB + "Compressed 1000 bytes to 600...\nWriting at 0x00010000... (30 %)\n"
         "A fatal error occurred: Packet content transfer stopped (received 8 bytes)\n", "write"),
        (STUB + "Wrote 1000 bytes (600 compressed) at 0x00010000 in 0.1 seconds\n"
         "A fatal error occurred: MD5 of file does not match data in flash!\n", "verify"),
        ("esptool.py: error: argument operation: invalid choice: 'wirte_flash'\n", "command"),
        # esptool-ck names the step that failed
        ("warning: espcomm_sync failed\nerror: espcomm_open failed\n", "connect"),
        ("Uploading 226352 bytes from a.bin to flash at 0x00000000\nwarning: espcomm_send_command: didn't receive "
         "command response\nwarning: espcomm_send_command(FLASH_DOWNLOAD_DATA) failed\n"
         "error: espcomm_upload_mem failed\n", "flash-begin"),
        # another tool's words: a GUI built on espflash that retries, then panics in its connect step
        ("Opening /dev/ttyUSB0\nRetrying connection to the device...\nRetrying connection to the device...\n"
         "thread 'main' panicked at 'unable to connect to the device: timed out'\n", "connect"),
        ("Flashing failed: could not open the serial port, it is already open.\n", "port"),
        ("[ERROR] chip sync error: no reply from the chip\n", "connect"),
        ("Erasing flash...\nError: flash erase failed\n", "flash-begin"),
        ("Firmware 900000 bytes at 0x10000 will not fit in flash (size 1048576)\n", "flash-begin"),
        ("esptool not found!\n", "command"),
        # a refused command line that names the port's trouble is a port failure
        ("Error: Invalid value for '-p' / '--port': Path '/dev/ttyACM0' is not readable.\n", "port"),
        ("Sketch too big; see https://support.arduino.cc/hc/en-us/articles/360013825179 for tips on reducing it.\n",
         "command"),
        ("Upload: the task terminated with exit code: 1.\n", "command"),
    ],
)
def test_stage(log: str, stage: str) -> None:
    report = diagnose_text(log)
    assert report.verdict == "failure", report.notes
    assert report.stage is not None and report.stage.id == stage, report.stage
    assert report.causes, "a failed upload always gets ranked causes"


def test_stage_lines_and_reason_are_in_the_json_report() -> None:
    report = diagnose_text(HEAD + "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n")
    data = json_out.to_dict(report)
    assert data["stage"]["id"] == "connect"
    assert data["stage"]["lines"] == [4]
    assert "never answered" in data["stage"]["why"]
    schema = json.loads((ROOT / "espdiag" / "schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert json_out.to_dict(diagnose_text(STUB + "Hash of data verified.\n"))["stage"] is None


def test_an_unknown_tools_failure_still_gets_ranked_causes() -> None:
    report = diagnose_text("Starting flash tool v1.2\nSomething went wrong: operation failed (code 7)\n")
    assert report.verdict == "failure"
    assert len(report.causes) >= 3
    assert all(c.notes and "failed stage" in c.notes[0] for c in report.causes if not c.rules)


def test_a_strong_rule_is_not_padded_with_stage_guesses() -> None:
    log = ("esptool v5.1.0\nSerial port /dev/ttyUSB0:\n\nA fatal error occurred: Could not open /dev/ttyUSB0, the port "
           "is busy or doesn't exist.\n([Errno 13] could not open port /dev/ttyUSB0: [Errno 13] Permission denied: "
           "'/dev/ttyUSB0')\n")
    ids = [c.id for c in diagnose_text(log).causes]
    assert ids[0] == "port-permission"
    assert "port-busy" not in ids


def test_a_tools_own_success_words_decide_a_success() -> None:
    log = "Connecting to /dev/ttyACM1...\nFlash begin: 3000 bytes\n[#####]  100.0%\nFlash complete. Verifying...\nMD5 verified\n"
    report = diagnose_text(log)
    assert report.verdict == "success" and report.stage is None


def test_boot_output_with_bootloader_errors_is_a_failure_at_boot() -> None:
    log = ("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\nentry 0x400805cc\n"
           "E (553) esp_image: Image length 1723008 doesn't fit in partition length 1310720\n"
           "E (554) boot: No bootable app partitions in the partition table\n")
    report = diagnose_text(log)
    assert report.verdict == "failure"
    assert report.stage is not None and report.stage.id == "boot"
    assert [e.line for e in report.stage.evidence] == [3, 4]
    assert report.causes[0].id == "image-too-large"


def test_a_healthy_boot_log_stays_a_success() -> None:
    log = ("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\nentry 0x400805cc\n"
           "I (29) boot: ESP-IDF v4.4 2nd stage bootloader\nE (1200) wifi: connect failed, retrying\n")
    assert diagnose_text(log).verdict == "success"


def test_a_log_cut_inside_an_attempt_names_where_it_ends() -> None:
    report = diagnose_text(STUB + "Compressed 1000 bytes to 600...\nWriting at 0x00010000... (30 %)\n")
    assert report.verdict == "unknown"
    assert report.stage is not None and report.stage.id == "write"
    assert report.causes and any("ends while writing" in n for n in report.notes)


@pytest.mark.parametrize(
    ("log", "cause"),
    [
        ("Flashing failed: could not open the serial port, it is already open.\n", "port-busy"),
        ("[flasher] Error: cannot open /dev/ttyUSB0: permission denied\n", "port-permission"),
        ("Upload error: the image (1500000 bytes) does not fit the app partition\n", "image-too-large"),
    ],
)
def test_a_tools_own_words_name_the_cause(log: str, cause: str) -> None:
    report = diagnose_text(log)
    top = report.causes[0]
    assert top.id == cause and not top.rules
    assert any("own words" in n for n in top.notes) and [e.line for e in top.evidence] == [1]

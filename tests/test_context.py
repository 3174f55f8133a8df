"""What the command line, the banners and the port name reveal about the setup."""

from __future__ import annotations

import pytest

from espdiag.api import diagnose_text
from espdiag.context import chip_words


def ctx_of(log: str) -> dict:
    return diagnose_text(log).context


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        ("Flashing with command:C:/Users/a/.arduino-create/esp8266/esptool/2.5.0-3-20ed2b9/esptool.exe -vv -cd nodemcu -cb 115200 -cp COM6 -ca 0x00000 -cf C:/t/x.bin",
         {"tool": "esptool-ck", "env": "arduino-cloud", "reset_method": "nodemcu", "baud": 115200, "port": "COM6", "os": "windows", "address": "0x00000"}),
        ("Launching: C:\\sloeber\\packages\\esp8266\\tools\\esptool\\2.5.0-3-20ed2b9/esptool.exe -cd ck -cb 921600 -cp COM3 -ca 0x00000 -cf C:\\w\\a.bin",
         {"tool": "esptool-ck", "reset_method": "ck", "baud": 921600, "port": "COM3"}),
        ("INFO Running:  esptool.py --before default_reset --after hard_reset --baud 460800 --chip esp8266 --port /dev/ttyS5 write_flash 0x0 fw.bin",
         {"env": "esphome", "baud": 460800, "chip": "ESP8266", "port": "/dev/ttyS5", "os": "linux", "port_kind": "uart", "reset_method": "default_reset", "address": "0x0", "file": "fw.bin"}),
        ("esptool.py --chip esp32s3 -p /dev/ttyACM0 -b 460800 --before=default_reset write_flash 0x0 bootloader.bin 0x10000 app.bin",
         {"chip": "ESP32-S3", "port": "/dev/ttyACM0", "port_kind": "cdc", "native_usb": True, "images": 2, "baud": 460800}),
        ("esptool.py v4.8.1\nSerial port /dev/cu.usbmodem1234\nDetecting chip type... ESP32\nChip is ESP32-U4WDH (revision v3.1)",
         {"tool": "esptool.py", "tool_version": "4.8.1", "os": "macos", "port_kind": "cdc", "chip": "ESP32", "native_usb": False}),
        ('Arduino: 1.8.3 (Windows 7), Board: "NodeMCU 1.0 (ESP-12E Module), 80 MHz, 115200, 4M (3M SPIFFS)"',
         {"env": "arduino-ide", "os": "windows", "os_version": "7", "baud": 115200, "board_style": "nodemcu", "chip": "ESP8266"}),
        ("     Running `espflash flash --monitor target/xtensa-esp32s2-none-elf/debug/app`\n[2024-01-01T00:00:00Z INFO ] Serial port: 'COM4'",
         {"chip": "ESP32-S2", "chip_option": "ESP32-S2", "port": "COM4", "native_usb_possible": True}),
        ("$ cargo espflash flash --target riscv32imc-esp-espidf --release", {"env": "espflash", "tool": "espflash"}),
        ("Serial port /dev/cu.BoseColorIISoundLink-SP", {"port_kind": "bluetooth", "os": "macos"}),
        ("Serial port /dev/rfcomm0", {"port_kind": "bluetooth", "os": "linux"}),
        ("esptool v5.6.0\nSerial port /dev/ttyUSB0:\nConnected to ESP32-S3 on /dev/ttyUSB0:",
         {"tool": "esptool", "tool_version": "5.6.0", "chip": "ESP32-S3", "port_kind": "usb-serial", "native_usb": False}),
        ("Auto-detected: /dev/ttyUSB0\nUploading .pio/build/d1/firmware.bin\n*** [upload] Error 2", {"env": "platformio", "port": "/dev/ttyUSB0"}),
        ("esptool v0.4.13-1-gf80ae31 - (c) 2014 Ch. Klippel ck@atelier-klippel.de\nsetting board to ck\nsetting baudrate from 115200 to 921600\nsetting port from COM1 to COM21",
         {"tool": "esptool-ck", "reset_method": "ck", "baud": 921600, "port": "COM21"}),
        ("esptool.py v3.0\nChip is ESP8266EX\nStub running...\nChanging baud rate to 921600\nChanged.\nWriting at 0x00004000... (40 %)",
         {"baud": 921600, "baud_changed": True, "write_percent": 40, "chip_detected": True}),
    ],
)
def test_context(log: str, expected: dict) -> None:
    ctx = ctx_of(log)
    for key, value in expected.items():
        assert ctx.get(key) == value, (key, ctx)


def test_context_survives_into_later_attempts() -> None:
    log = ('Arduino: 1.8.1 (Windows 10), Board: "NodeMCU 1.0"\n'
           "esptool.py v3.0\nConnecting....\nA fatal error occurred: Timed out waiting for packet header\n"
           "esptool.py v3.0\nConnecting....\nA fatal error occurred: Timed out waiting for packet header\n")
    report = diagnose_text(log)
    assert report.attempts == 2
    assert report.context["os"] == "windows" and report.context["env"] == "arduino-ide"


def test_trailing_command_line_describes_the_failed_attempt() -> None:
    log = ("warning: espcomm_sync failed\nerror: espcomm_open failed\n\n"
           "Launching: C:/x/esptool.exe -cd ck -cb 921600 -cp COM3 -ca 0x00000 -cf a.bin\n")
    report = diagnose_text(log)
    assert report.attempts == 1
    assert report.context["baud"] == 921600
    # the speed from the trailing command line reaches the rules (boot-mode, the usual fix for a silent
    # sync, may rank above it: see espdiag/calibration.json)
    assert "baud-too-high" in [c.id for c in report.causes[:2]]


@pytest.mark.parametrize(
    ("chip", "boot_pin", "docs_chip"),
    [("ESP32-C3", "GPIO9", "esp32c3"), ("ESP32-C6", "GPIO9", "esp32c6"), ("ESP32-H2", "GPIO9", "esp32h2"),
     ("ESP32-S2", "GPIO0", "esp32s2"), ("ESP32-S3", "GPIO0", "esp32s3"), ("ESP8266", "GPIO0", "esp8266"),
     ("ESP32", "GPIO0", "esp32")],
)
def test_pins_and_docs_follow_the_chip(chip: str, boot_pin: str, docs_chip: str) -> None:
    words = chip_words(chip)
    assert words["boot_pin"] == boot_pin
    assert words["docs_chip"] == docs_chip


def test_an_unknown_chip_names_both_boot_pins() -> None:
    assert "GPIO0" in chip_words("")["boot_pin"] and "GPIO9" in chip_words("")["boot_pin"]


def test_esptool_ck_means_an_esp8266() -> None:
    assert ctx_of("warning: espcomm_sync failed\nerror: espcomm_open failed\n")["chip"] == "ESP8266"


ARDUINO_FAIL = ("esptool.py v4.5.1\nSerial port /dev/ttyUSB0\nConnecting......\n"
                "A fatal error occurred: Failed to connect to ESP32: No serial data received.\n")


@pytest.mark.parametrize(
    ("tail", "env", "ide"),
    [
        ("Failed uploading: uploading error: exit status 2\n", "arduino-ide", "arduino-ide-2"),
        ("Error during Upload: Failed uploading: uploading error: exit status 2\n", "arduino-cli", None),
        ("An error occurred while uploading the sketch\n", "arduino-ide", "arduino-ide-1"),
    ],
)
def test_arduino_ide_2_ide_1_and_cli_are_told_apart(tail: str, env: str, ide: str | None) -> None:
    ctx = diagnose_text(ARDUINO_FAIL + tail).context
    assert ctx["env"] == env
    assert ctx.get("ide") == ide


def test_an_arduino15_path_alone_does_not_say_ide_or_cli() -> None:
    ctx = diagnose_text("/home/u/.arduino15/packages/esp32/tools/esptool_py/4.5.1/esptool --chip esp32 "
                        "--port /dev/ttyUSB0 write_flash 0x10000 a.bin\n" + ARDUINO_FAIL).context
    assert ctx["env"] == "arduino-ide" and "ide" not in ctx

"""Whole-log rankings for patterns seen in real forum and issue logs (written here in the tools' real formats).

Rule examples check that one rule matches; these check that the right cause comes out on top once every
rule has had its say, which is what a user reads first.
"""

from __future__ import annotations

import pytest

from espdiag.api import diagnose_text
from espdiag.calibration import Model, apply_curve, calibrate, isotonic

STUB = "Uploading stub...\nRunning stub...\nStub running...\n"


@pytest.mark.parametrize(
    ("log", "top"),
    [
        # the first command at the new speed fails: esptool wraps the link error in a flash message
        ("esptool.py v4.8.1\nSerial port /dev/cu.usbserial-1140\nConnecting....\nChip is ESP32-S3 (QFN56) (revision v0.2)\n"
         + STUB + "Changing baud rate to 921600\nChanged.\n\n"
         "A fatal error occurred: Unable to verify flash chip connection (No serial data received.).\n", "baud-too-high"),
        ("esptool.py v4.5.1\nSerial port /dev/cu.usbserial-0001\nConnecting......\nChip is ESP32-D0WD (revision v1.0)\n"
         + STUB + "Changing baud rate to 921600\nChanged.\n"
         "A fatal error occurred: Unable to verify flash chip connection (Packet content transfer stopped (received 8 bytes)).\n"
         "Failed uploading: uploading error: exit status 2\n", "baud-too-high"),
        # the IDE printed esptool's traceback elsewhere: only the wrapper's exit status follows the change
        ("esptool.py v4.2.1\nSerial port /dev/cu.usbserial-10\nConnecting....\nChip is ESP32-D0WD-V3 (revision 3)\n"
         + STUB + "Changing baud rate to 921600\nChanged.\nConfiguring flash size...\n"
         "Failed uploading: uploading error: exit status 1\n", "baud-too-high"),
        # the same silence on a chip that may be on its own USB, without a speed change
        ("esptool.py v4.5.1\nSerial port COM9\nConnecting...\nChip is ESP32-C3 (revision v0.4)\n" + STUB
         + "A fatal error occurred: Unable to verify flash chip connection (No serial data received.).\n",
         "usb-native-reenumeration"),
        ("esptool.py v4.5.1\nSerial port /dev/ttyUSB0\nConnecting....\nChip is ESP32-D0WD-V3 (revision v3.0)\n" + STUB
         + "Changing baud rate to 460800\nChanged.\n\nA fatal error occurred: bootloader/bootloader.bin requires chip "
         "revision in range [v0.0 - v0.99] (this chip is revision v3.0). Use --force to flash anyway.\n", "tool-bug"),
        ("esptool.js\nSerial port WebSerial VendorID 0x1a86 ProductID 0x7523\n"
         "Connecting...Error: Failed to execute 'open' on 'SerialPort': Failed to open serial port.\n", "port-busy"),
        ("[2024-01-01T10:00:00Z INFO ] Serial port: '/dev/ttyUSB0'\n[2024-01-01T10:00:00Z INFO ] Connecting...\n"
         "Chip type:         esp32s3 (revision v0.2)\nError: espflash::image_too_big\n\n"
         "  \u00d7 Supplied ELF image of 1327680B is too big, and doesn't fit configured app partition of 1048576B\n",
         "image-too-large"),
        ("espflash flash /dev/ttyUSB0 target/xtensa-esp32-espidf/debug/app\nError: espflash::connection_failed\n\n"
         "  x Failed to open serial port /dev/ttyUSB0\n  |-> Error while connecting to device\n  `-> Serial port not found\n",
         "port-missing"),
        ("[SPIFFS] port   : COM6\n[SPIFFS] speed  : 921600\n\nerror: Invalid argument or value after --chip (argument #2)\n\n"
         "SPIFFS Upload failed!\n", "tool-bug"),
        ("esptool.py v2.8\nSerial port COM3\nConnecting......\nChip is ESP32D0WDQ6 (revision 1)\nUploading stub...\n\n"
         "A fatal error occurred: Invalid head of packet (0xE0)\n", "serial-noise"),
        ("esptool.py v2.6\nSerial port /dev/ttyUSB0\nConnecting.....\nChip is ESP32D0WDQ5 (revision 1)\n" + STUB
         + "Manufacturer: ff\nDevice: ffff\nDetected flash size: Unknown\nHard resetting via RTS pin...\n", "flash-config"),
    ],
)
def test_top_cause(log: str, top: str) -> None:
    causes = diagnose_text(log).causes
    assert causes, "no cause at all"
    assert causes[0].id == top, [(c.id, round(c.confidence, 2)) for c in causes[:4]]


def test_eproto_on_a_cdc_port_names_native_usb() -> None:
    log = ("esptool.py v4.5.1\nFound 1 serial ports\nSerial port /dev/ttyACM0\nConnecting...\n"
           "/dev/ttyACM0 failed to connect: [Errno 71] Protocol error\n\nA fatal error occurred: Could not connect to an "
           "Espressif device on any of the 1 available serial ports.\n")
    ids = [c.id for c in diagnose_text(log).causes[:3]]
    assert "usb-native-reenumeration" in ids
    assert "driver" not in ids  # a port was found and opened: not a missing driver


def test_gpio12_is_a_suspect_when_an_esp32_flash_reads_all_ones() -> None:
    log = ("esptool.py v2.6\nSerial port /dev/ttyUSB0\nConnecting.....\nChip is ESP32D0WDQ5 (revision 1)\n" + STUB
           + "Manufacturer: ff\nDevice: ffff\n")
    assert "strapping-gpio12" in [c.id for c in diagnose_text(log).causes[:3]]


NO_REPLY = "esptool.py v4.7.0\nSerial port {port}\nConnecting......\nA fatal error occurred: Failed to connect to {chip}: No serial data received.\n"


def _texts(log: str) -> str:
    report = diagnose_text(log)
    return "\n".join(t for c in report.causes for t in (c.title, c.explain, *c.fixes, *c.docs))


def test_the_boot_pin_follows_the_chip() -> None:
    c3 = _texts(NO_REPLY.format(port="COM9", chip="ESP32-C3"))
    assert "GPIO9" in c3 and "GPIO0" not in c3
    assert "/esp32c3/" in c3 and "/esp32/" not in c3
    s3 = _texts(NO_REPLY.format(port="/dev/ttyUSB0", chip="ESP32-S3"))
    assert "GPIO0" in s3 and "GPIO9" not in s3


def test_esp8266_logs_get_esp8266_pages() -> None:
    texts = _texts(NO_REPLY.format(port="/dev/ttyUSB0", chip="ESP8266"))
    assert "/esp8266/" in texts and "/esp32/" not in texts
    assert "GPIO15" in texts  # the ESP8266's strapping pins, not the ESP32's GPIO12
    assert "GPIO12" not in texts


BAUD = ("esptool.py v4.5.1\nSerial port /dev/ttyUSB0\nConnecting....\nChip is ESP32-D0WD-V3 (revision v3.0)\n" + STUB
        + "Changing baud rate to 921600\nChanged.\n\nA fatal error occurred: Unable to verify flash chip connection "
        "(No serial data received.).\n")


def _speed_fix(log: str) -> str:
    cause = next(c for c in diagnose_text(log).causes if c.id == "baud-too-high")
    return next(f for f in cause.fixes if "115200" in f)


def test_ide_users_get_menus_and_cli_users_get_flags() -> None:
    ide2 = _speed_fix(BAUD + "Failed uploading: uploading error: exit status 2\n")
    assert "Tools > Upload Speed" in ide2 and "--board-options" not in ide2
    ide1 = _speed_fix(BAUD + "An error occurred while uploading the sketch\n")
    assert "Tools > Upload Speed" in ide1 and "--board-options" not in ide1
    cli = _speed_fix(BAUD + "Error during Upload: Failed uploading: uploading error: exit status 2\n")
    assert "--board-options" in cli and "Tools >" not in cli


def test_unsure_which_arduino_front_end_gives_the_ide_first() -> None:
    cmd = "/home/u/.arduino15/packages/esp32/tools/esptool_py/4.5.1/esptool --chip esp32 --baud 921600 write_flash 0x10000 a.bin\n"
    fix = _speed_fix(cmd + BAUD)
    assert fix.index("Tools > Upload Speed") < fix.index("--board-options")


def test_isotonic_curve_is_monotone_and_keeps_small_bins_off_the_extremes() -> None:
    points = [(p / 100, p > 50) for p in range(0, 100, 3)] + [(0.99, True)] * 3
    curve = isotonic(points, min_bin=5)
    ys = [y for _, y in curve]
    assert ys == sorted(ys)
    assert ys[0] > 0.0 and ys[-1] < 1.0
    assert apply_curve(curve, 0.0) <= apply_curve(curve, 0.5) <= apply_curve(curve, 1.0)


def test_calibrated_confidences_keep_the_order_and_sum_to_at_most_one() -> None:
    model = Model(curve=((0.2, 0.1), (0.9, 0.6)))
    probs = {"boot-mode": 0.7, "usb-cable": 0.2, "driver": 0.1}
    conf = calibrate(model, probs)
    assert sorted(conf, key=lambda c: -conf[c]) == ["boot-mode", "usb-cable", "driver"]
    assert sum(conf.values()) <= 1.0 + 1e-9
    assert conf["boot-mode"] == pytest.approx(apply_curve(model.curve, 0.7), abs=1e-3)

"""Whole-log rankings for patterns seen in real forum and issue logs (written here in the tools' real formats).

Rule examples check that one rule matches; these check that the right cause comes out on top once every
rule has had its say, which is what a user reads first.
"""

from __future__ import annotations

import pytest

from espdiag.api import diagnose_text

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

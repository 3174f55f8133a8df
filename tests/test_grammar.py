"""One row per message shape: the line, the event kind it must become, and fields it must carry."""

from __future__ import annotations

import re

import pytest

from espdiag.events import FIELDS, KINDS, fields_of
from espdiag.parse import build, grammar_text, parse_line, parser

CASES = [
    # --- esptool-ck (Arduino ESP8266 core <= 2.4, -vv output) --------------------------------------
    ("esptool v0.4.13-1-gf80ae31 - (c) 2014 Ch. Klippel ck@atelier-klippel.de", "tool_banner", {"version": "0.4.13-1-gf80ae31", "ck": True}),
    ("setting board to nodemcu", "ck_setting", {"name": "board", "value": "nodemcu"}),
    ("setting port from COM1 to COM6", "ck_setting", {"name": "port", "value": "COM6"}),
    ("setting baudrate from 115200 to 921600", "ck_setting", {"name": "baudrate", "value": "921600"}),
    ("setting serial port timeouts to 1000 ms", "ck_step", {}),
    ("resetting board", "ck_reset", {}),
    ("trying to connect", "connect_attempt", {}),
    ("wrote 0, requested 1", "ck_wrote", {"written": 0, "requested": 1}),
    ("read 0, requested 1", "ck_read", {"got": 0, "requested": 1}),
    ("error: failed sending 0xC0", "ck_send_failed", {"what": "0xC0", "level": "error"}),
    ("espcomm_send_command: sending command header", "ck_step", {}),
    ("warning: espcomm_sync failed", "ck_failed", {"function": "espcomm_sync", "level": "warning"}),
    ("espcomm_open failed", "ck_failed", {"function": "espcomm_open"}),
    ("error: espcomm_upload_mem failed", "ck_failed", {"function": "espcomm_upload_mem"}),
    ("warning: espcomm_send_command: didn't receive command response", "ck_no_response", {}),
    ("warning: espcomm_send_command(FLASH_DOWNLOAD_DATA) failed", "ck_command_failed", {"command": "FLASH_DOWNLOAD_DATA"}),
    ("warning: espcomm_send_command: wrong direction/command: 0x01 0x03, expected 0x01 0x04", "ck_wrong_response", {}),
    ("error: Failed to open COM4", "port_error", {"port": "COM4"}),
    ("error: cannot access /dev/ttyUSB0", "port_error", {"port": "/dev/ttyUSB0"}),
    ("Uploading 226352 bytes from /tmp/sketch.bin to flash at 0x00000000", "ck_uploading", {}),
    ("..........................................  [ 36% ]", "writing", {"percent": 36}),
    ("starting app without reboot", "ck_done", {}),
    # the ESP8266 banner split from its first half, or retyped with a space
    ("boot mode:(7 7)", "rom_banner_8266", {"mode": 7, "sub": 7}),
    ("rst cause:2, boot mode:(3,6)", "rom_banner_8266", {"rst_cause": 2, "mode": 3, "sub": 6}),
    # argparse refusing a subcommand's arguments, and its usage text: not command lines
    ("esptool write_flash: error: argument <address> <filename>: [Errno 2] No such file or directory:", "usage_error", {}),
    ("usage: esptool [-h] [--chip {auto,esp8266,esp32}]", "usage_error", {}),
    ("esptool not found!", "other", {}),
    # --- Arduino IDE / Cloud agent / arduino-cli --------------------------------------------------
    ('Arduino: 1.8.1 (Windows 10), Board: "NodeMCU 1.0 (ESP-12E Module), 80 MHz, 115200"', "ide_banner", {"os": "Windows 10"}),
    ("Upload started", "upload_started", {}),
    ("Flashing with command:C:/x/esptool.exe -vv -cd nodemcu -cb 115200 -cp COM6 -ca 0x00000 -cf a.bin", "command_line", {}),
    ("Executing command: exit status 2", "exit_status", {"code": 2}),
    ("exit status 2", "exit_status", {"code": 2}),
    ("Failed uploading: uploading error: exit status 2", "exit_status", {"code": 2}),
    ("Error during Upload: Failed uploading: uploading error: exit status 1", "exit_status", {"code": 1}),
    ("An error occurred while uploading the sketch", "upload_error", {}),
    ("Sketch uses 263456 bytes (20%) of program storage space. Maximum is 1310720 bytes.", "build_info", {}),
    # --- PlatformIO, ESP-IDF, ESPHome ---------------------------------------------------------------
    ("Auto-detected: /dev/ttyUSB0", "pio_port_search", {"port": "/dev/ttyUSB0"}),
    ("Uploading .pio/build/esp32dev/firmware.bin", "upload_started", {}),
    ("*** [upload] Error 2", "exit_status", {"code": 2}),
    ("========================= [FAILED] Took 24.31 seconds =========================", "exit_status", {}),
    ("========================= [SUCCESS] Took 12.31 seconds =========================", "wrapper_success", {}),
    ("FAILED: CMakeFiles/flash /home/dev/build/CMakeFiles/flash", "exit_status", {}),
    ("ninja: build stopped: subcommand failed.", "exit_status", {}),
    ("INFO Running:  esptool.py --before default_reset --baud 460800 --chip esp8266 --port /dev/ttyS5 write_flash 0x0 fw.bin", "command_line", {}),
    ("ERROR Running command failed: (5, 'Input/output error')", "io_error", {"errno": 5}),
    ("INFO Upload with baud rate 460800 failed. Trying again with baud rate 115200.", "baud_retry", {"baud": 460800}),
    # --- esptool.py v2-v4 and esptool v5 -------------------------------------------------------------
    ("esptool.py v2.0.1", "tool_banner", {"tool": "esptool.py", "version": "2.0.1"}),
    ("esptool v5.6.0", "tool_banner", {"tool": "esptool", "version": "5.6.0"}),
    ("esptool.py --chip esp32 -p COM3 -b 460800 write_flash 0x1000 bootloader.bin", "command_line", {}),
    ("python3 -m esptool --chip esp32 --port /dev/ttyUSB0 write_flash -z 0x1000 fw.bin", "command_line", {}),
    ("Serial port /dev/ttyUSB0", "serial_port", {"port": "/dev/ttyUSB0"}),
    ("Serial port /dev/ttyUSB0:", "serial_port", {"port": "/dev/ttyUSB0"}),
    ("Connecting........_____....._____", "connecting", {"resets": 10}),
    ("Detecting chip type... ESP32", "chip_detect", {"chip": "ESP32"}),
    ("Detecting chip type... Unsupported detection protocol, switching and trying again...", "detect_protocol_switch", {}),
    ("Chip is ESP32-D0WDQ6 (revision 1)", "chip_is", {"chip": "ESP32-D0WDQ6 (revision 1)"}),
    ("Chip type:          ESP32-D0WD-V3 (revision v3.1)", "chip_is", {}),
    ("Connected to ESP32 on /dev/ttyUSB0:", "connected", {"chip": "ESP32", "port": "/dev/ttyUSB0"}),
    ("Stub flasher running.", "stub", {}),
    ("Changing baud rate to 921600", "baud_change", {"baud": 921600}),
    ("Changing baud rate to 921600...", "baud_change", {"baud": 921600}),
    ("Auto-detected Flash size: 4MB", "flash_config", {"size": "4MB"}),
    ("Detected flash size: 4MB", "flash_config", {"size": "4MB"}),
    ("Detected flash size: Unknown", "flash_config", {"size": "Unknown"}),
    ("Flash params set to 0x0220", "flash_config", {"params": "0x0220"}),
    ("Enabling default SPI flash mode...", "flash_config", {}),
    ("Flash will be erased from 0x00010000 to 0x0004afff...", "erase", {}),
    ("Erasing flash (this may take a while)...", "erase", {}),
    ("Erasing flash...", "erase", {}),
    ("Chip erase completed successfully in 2.4s", "erase", {}),
    ("Writing at 0x00008000... (14 %)", "writing", {"percent": 14}),
    ("Writing at 0x00010000 [=====>                        ]  18.2% 32768/180000 bytes... ", "writing", {"percent": 18}),
    ("Wrote 472084 bytes (305673 compressed) at 0x00000000 in 4.5 seconds (effective 838.9 kbit/s)...", "wrote", {}),
    ("Hash of data verified.", "hash_verified", {}),
    ("Hard resetting via RTS pin...", "hard_reset", {}),
    ("WARNING: Failed to communicate with the flash chip, read/write operations will fail.", "flash_comm_warning", {}),
    ("Hint: Check if the port is correct and ESP connected", "hint", {}),
    ("TRACE +0.051 command op=0x13 data len=16 wait_response=1 timeout=3.000", "trace_command", {"op": 0x13}),
    # --- failures --------------------------------------------------------------------------------
    ("A fatal error occurred: Failed to connect to ESP8266: Timed out waiting for packet header", "timeout_packet_header", {"target": "ESP8266", "fatal": True}),
    ("A fatal error occurred: Failed to connect to Espressif device: No serial data received.", "no_serial_data", {"target": "Espressif device"}),
    ("A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)! The chip needs to be in download mode.", "wrong_boot_mode", {"boot": 0x13}),
    ("ERROR: A fatal error occurred: Failed to connect to ESP32: No serial data received.", "no_serial_data", {}),
    ("A fatal error occurred: Invalid head of packet (0x65): Possible serial noise or corruption.", "invalid_head", {}),
    ("A fatal error occurred: Failed to connect to ESP32-C3: Download mode successfully detected, but getting no sync reply: The serial TX path seems to be down.", "tx_path_down", {}),
    ("A fatal error occurred: Serial data stream stopped: Possible serial noise or corruption.", "stream_stopped", {}),
    ("A fatal error occurred: Packet content transfer stopped (received 9 bytes)", "stream_stopped", {}),
    ("A fatal error occurred: The chip stopped responding.", "chip_stopped", {}),
    ("A fatal error occurred: MD5 of file does not match data in flash!", "md5_mismatch", {}),
    ("A fatal error occurred: Failed to write to target RAM (result was 01070000: Operation timed out)", "ram_write_failed", {}),
    ("Warning: Could not auto-detect Flash size (FlashID=0xffffff, SizeID=0xff), defaulting to 4MB", "warning", {}),
    ("A fatal error occurred: This chip is ESP32-S3, not ESP32. Wrong --chip argument?", "wrong_chip", {"detected": "ESP32-S3", "expected": "ESP32"}),
    ("A fatal error occurred: This chip is ESP32-S3 not ESP32. Wrong --chip argument?", "wrong_chip", {"detected": "ESP32-S3"}),
    ("A fatal error occurred: Secure Boot detected, writing to flash regions < 0x8000 is disabled to protect the bootloader.", "secure_download", {}),
    ("A fatal error occurred: File 0x10000.bin (length 232996) at offset 1048576 will not fit in 1048576 bytes of flash. Use --flash-size argument, or change flashing address.", "image_too_large", {}),
    ("A fatal error occurred: Something entirely new happened", "fatal_error", {"fatal": True}),
    # --- port errors per OS ------------------------------------------------------------------------
    ("A fatal esptool.py error occurred: could not open port 'COM5': PermissionError(13, 'Access denied.', None, 5)", "port_error", {"port": "COM5", "errno": 13, "winerror": 5}),
    ("could not open port 'COM3': FileNotFoundError(2, 'The system cannot find the file specified.', None, 2)", "port_error", {"errno": 2, "exception": "FileNotFoundError"}),
    ("could not open port 'COM3': OSError(22, 'The semaphore timeout period has expired.', None, 121)", "port_error", {"winerror": 121}),
    ("PermissionError: [Errno 13] Permission denied: '/dev/ttyUSB0'", "port_error", {"errno": 13, "port": "/dev/ttyUSB0"}),
    ("serial.serialutil.SerialException: [Errno 16] could not open port /dev/ttyUSB0: [Errno 16] Device or resource busy: '/dev/ttyUSB0'", "port_error", {"errno": 16}),
    ("([Errno 2] could not open port /dev/ttyACM0: [Errno 2] No such file or directory: '/dev/ttyACM0')", "port_error", {"errno": 2, "port": "/dev/ttyACM0"}),
    ("A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.", "port_error", {}),
    ("([Errno 11] Could not exclusively lock port /dev/ttyUSB0: [Errno 11] Resource temporarily unavailable)", "port_error", {"errno": 11}),
    ("device reports readiness to read but returned no data (device disconnected or multiple access on port?)", "io_error", {}),
    # --- espflash, esptool-js, web flashers --------------------------------------------------------
    ("Error while connecting to device", "fatal_error", {}),
    ("Supplied ELF image of 1327680B is too big, and doesn't fit configured app partition of 1048576B", "image_too_large", {}),
    ("Error: app partition is too small for binary app.bin size 0x1f28d0:", "image_too_large", {}),
    ("Error: The program size (1366137 bytes) is greater than maximum allowed (1310720 bytes)", "image_too_large", {}),
    ("Failed to open serial port /dev/ttyUSB0", "port_error", {"port": "/dev/ttyUSB0"}),
    ("Serial port not found", "port_error", {"reason": "Serial port not found"}),
    ("fatal error occurred: Failed to write to target RAM (result was 01070000)", "ram_write_failed", {}),
    ("user@host:~/fw$ espflash flash --chip esp32s3 ./fw", "command_line", {}),
    ("me@laptop ~/esp/app $ make flash", "command_line", {}),
    ("me@laptop:.../esp8266/app % platformio run -t upload", "command_line", {}),
    ("Mac-mini:fw me$ esptool.py --port /dev/cu.SLAB_USBtoUART write_flash 0 a.bin", "command_line", {}),
    ("make: *** [/esp/esp-idf/components/esptool_py/Makefile.projbuild:63: flash] Error 2", "exit_status", {"code": 2}),
    ("Flashing binaries to serial port COM7 (app at offset 0x10000)...", "serial_port", {"port": "COM7"}),
    ("Unable to connect, retrying with extra delay...", "connect_attempt", {}),
    ("Running Cesanta flasher stub...", "stub", {}),
    ("error: Invalid argument or value after --chip (argument #2)", "usage_error", {"level": "error"}),
    ("esptool.py: error: unrecognized arguments: --after", "usage_error", {}),
    ("Error: No such option: --flash_mode", "usage_error", {}),
    ("SPIFFS Upload failed!", "upload_error", {}),
    ("Error: unknown board: nodemcu", "usage_error", {}),
    ("esptool.py failed", "exit_status", {}),
    ("make failed with exit code 2", "exit_status", {"code": 2}),
    ("*** [upload] Error -1", "exit_status", {"code": -1}),
    ("esptool.py failed with exit code 2", "exit_status", {"code": 2}),
    ("Using port /dev/cu.Bluetooth-Incoming-Port", "serial_port", {"port": "/dev/cu.Bluetooth-Incoming-Port"}),
    ("A fatal error occurred: Unable to verify flash chip connection (No serial data received.).", "no_serial_data", {"fatal": True}),
    ("A fatal error occurred: Unable to verify flash chip connection (Packet content transfer stopped (received 8 bytes)).", "stream_stopped", {}),
    ("     Running `espflash flash --monitor target/xtensa-esp32s3-none-elf/debug/app`", "command_line", {}),
    ("Failed to connect to the device", "connect_failed", {}),
    ("Failed to connect with the device", "connect_failed", {}),
    ("Serial port: '/dev/ttyUSB0'", "serial_port", {"port": "/dev/ttyUSB0"}),
    ("[00:00:19] [========================================]     192/192     0x10000", "writing", {"percent": 100}),
    ("[00:00:03] [=========>                              ]      48/192     0x10000", "writing", {"percent": 25}),
    ("Serial port WebSerial VendorID 0x303a ProductID 0x1001", "serial_port", {"port": "WebSerial"}),
    ("Error: Couldn't sync to ESP. Try resetting.", "connect_failed", {}),
    ("COM3 failed to connect: Cannot configure port, something went wrong. Original message: OSError(22, 'A device which does not exist was specified.', None, 433)", "port_error", {"port": "COM3", "winerror": 433}),
    ("Unexpected error: ESP Chip Auto-Detection failed: Failed to connect to Espressif device: Timed out waiting for packet header", "timeout_packet_header", {"fatal": True}),
    ("warning: espcomm cmd: didn't receive command response", "ck_no_response", {}),
    ("A fatal error occurred: WARNING: Detected flash encryption and secure download mode enabled.", "secure_download", {}),
    ("Failed to execute script esptool the selected serial port Failed to execute script esptool", "upload_error", {}),
    ("A fatal error occurred: Invalid head of packet (0x1B): Possible serial noise or corruption.", "invalid_head", {"byte": 27}),
    ("A fatal error occurred: Failed to connect to ESP8266: Invalid head of packet ('\\xe0')", "invalid_head", {"byte": 224}),
    ("Error: ESP32-S3 chip was placed into download mode using GPIO0.", "usb_download_stuck", {}),
    ("A fatal error occurred: Unexpected CHIP magic value 0x00000000. Failed to autodetect chip type.", "unsupported_chip", {}),
    ("termios.error: (5, 'Input/output error')", "python_exception", {}),
    ("StopIteration", "python_exception", {}),
    # --- ROM boot output ---------------------------------------------------------------------------
    ("ets Jan  8 2013,rst cause:2, boot mode:(3,6)", "rom_banner_8266", {"rst_cause": 2, "mode": 3, "sub": 6}),
    ("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)", "rom_banner_32", {"rst": 1, "boot": 0x13}),
    ("rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))", "rom_banner_32", {"boot": 3}),
    ("Brownout detector was triggered", "brownout", {}),
    ("flash read err, 1000", "flash_read_err", {}),
    ("invalid header: 0xffffffff", "invalid_header", {}),
    ("AttributeError: 'NoneType' object has no attribute 'write'", "python_exception", {"exception": "AttributeError"}),
    # --- lines the grammar must leave alone -------------------------------------------------------
    # --- shapes that two terminals could both claim (kept apart for lark's strict mode) -------------
    ("Upload failed to connect: timeout", "upload_error", {}),
    ("esp-web-tools failed to connect: Timed out waiting for packet header", "timeout_packet_header", {"port": "esp-web-tools"}),
    ("A fatal error occurred: Could not open /dev/ttyUSB0, the port doesn't exist", "port_error", {"reason": "Could not open /dev/ttyUSB0, the port doesn't exist"}),
    ("A fatal error occurred: Could not open COM3, the port is busy or doesn't exist.", "port_error", {"reason": "Could not open COM3, the port is busy or doesn't exist."}),
    ("could not open port COM7: OSError(22, 'The semaphore timeout period has expired.', None, 121)", "port_error", {"port": "COM7", "errno": 22, "winerror": 121}),
    ("File firmware.bin (length 4194400) at offset 0x0 will not fit in 4194304 bytes of flash.", "image_too_large", {"image": "firmware.bin (length 4194400) at offset 0x0", "flash_bytes": 4194304}),
    ("Arduino: 1.8.19 (Linux), Board: \"Generic ESP8266 Module\"", "ide_banner", {"ide_version": "1.8.19", "os": "Linux", "board": '"Generic ESP8266 Module"'}),
    ("hello, my board does not work", "other", {}),
    ("Thanks for sharing your solution!", "other", {}),
    ("", "other", {}),
]


@pytest.mark.parametrize(("line", "kind", "fields"), CASES, ids=[c[0][:50] for c in CASES])
def test_line(line: str, kind: str, fields: dict) -> None:
    got_kind, got_fields = parse_line(line)
    assert got_kind == kind
    got = dict(got_fields)
    for key, value in fields.items():
        assert got.get(key) == value, (key, got)


def test_garbage_before_a_banner_is_skipped() -> None:
    kind, fields = parse_line("\u00ef\u00bf\u00bd\u00ef l ets Jan  8 2013,rst cause:2, boot mode:(7,6)")
    assert kind == "rom_banner_8266"
    assert dict(fields)["mode"] == 7


def test_grammar_passes_larks_strict_mode() -> None:
    # strict: no two terminals of one priority can match the same text in one parser state, and no
    # shift/reduce conflict; otherwise which one wins would depend on lark's ordering, not on the grammar
    build(grammar_text(), strict=True)


def test_rule_names_are_the_event_kinds() -> None:
    named = {str(r.origin.name) for r in parser().rules} | {str(r.alias) for r in parser().rules if r.alias}
    kinds = {n.split("__", 1)[0] for n in named if not n.startswith("_") and n != "start"}
    assert kinds == set(KINDS) - {"other"}


def test_one_catch_all_with_the_lowest_priority() -> None:
    terminals = parser().terminals
    probes = ["x", "0", " ", "(", ")", "'a\" b: [c] (d)"]
    anything = [t.name for t in terminals if all(re.fullmatch(t.pattern.to_regexp(), p) for p in probes)]
    assert anything == ["REST"]
    rest = next(t for t in terminals if t.name == "REST")
    assert all(t.priority > rest.priority for t in terminals if t is not rest)


def test_each_kinds_doc_names_its_fields() -> None:
    for kind, info in KINDS.items():
        m = re.search(r"\(fields?: ([^)]*)\)$", info.doc)
        documented = set(m.group(1).split(", ")) if m else set()
        assert set(FIELDS.get(kind, ())) <= documented <= fields_of(kind), kind


def test_parser_is_lalr_with_contextual_lexer() -> None:
    p = parser()
    assert p.options.parser == "lalr"
    assert p.options.lexer == "contextual"



def test_parser_tables_are_cached_as_json_not_by_lark(tmp_path, monkeypatch) -> None:
    # lark's cache=True unpickles a file in the shared temporary folder: never used
    from espdiag import parse

    monkeypatch.setenv("ESPDIAG_CACHE_DIR", str(tmp_path))
    parse.parser.cache_clear()
    try:
        built = parse.parser()
        assert built.options.cache is False
        [entry] = tmp_path.glob("grammar-*.json")
        parse.parser.cache_clear()
        loaded = parse.parser()
        line = "A fatal error occurred: Failed to connect to ESP32: Timed out waiting for packet header"
        assert loaded.parse(line) == built.parse(line)
        entry.write_text("{not json")
        parse.parser.cache_clear()
        assert parse.parser().parse(line) == built.parse(line)
    finally:
        parse.parser.cache_clear()

"""The typed event model: what one line of an upload log means.

An event is produced by the grammar (``grammar/upload_log.lark``): the rule alias names the kind,
the named terminals inside it become fields. ``KINDS`` documents every kind and its role in a
session; ``espdiag events FILE`` shows the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

FieldValue = str | int | bool
Role = Literal["start", "progress", "success", "failure", "info", "other"]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    line: int  # 1-based line number in the original input
    text: str  # the line as shown to the user (normalised: no colour codes, quote markers, timestamps)
    fields: Mapping[str, FieldValue] = field(default_factory=dict)

    def get(self, name: str, default: FieldValue | None = None) -> FieldValue | None:
        return self.fields.get(name, default)

    @property
    def role(self) -> Role:
        return KINDS.get(self.kind, KindInfo("other", "")).role


@dataclass(frozen=True, slots=True)
class KindInfo:
    role: Role
    doc: str


# role: "start" opens an upload attempt, "failure"/"success" decide a verdict,
# "progress" shows how far the attempt got, "info" carries context only.
KINDS: dict[str, KindInfo] = {
    # -- wrappers and command lines ------------------------------------------------------------
    "ide_banner": KindInfo("info", "Arduino IDE 1.x header: version, OS, board menu (fields: board, ide_version, os)"),
    "upload_started": KindInfo("start", "A wrapper announces an upload (Arduino 'Upload started', "
                                "PlatformIO 'Uploading ...') (field: file)"),
    "command_line": KindInfo("start", "The flasher command line a wrapper ran (fields: cmd, tool)"),
    "pio_port_search": KindInfo("info", "PlatformIO 'Looking for upload port...' / 'Auto-detected: PORT' (field: port)"),
    "exit_status": KindInfo("failure", "A wrapper reports the flasher's non-zero exit (field: code)"),
    "upload_error": KindInfo("failure", "A wrapper's generic upload-failed line (field: text)"),
    "wrapper_success": KindInfo("success", "A wrapper reports success (PlatformIO [SUCCESS], 'Done uploading')"),
    "build_info": KindInfo("info", "Compiler output such as 'Sketch uses N bytes'"),
    # -- banners -----------------------------------------------------------------------------------
    "tool_banner": KindInfo("start", "Flasher name and version (fields: ck, tool, version)"),
    "serial_port": KindInfo("info", "The port the flasher opens, sometimes with its baud rate (fields: port, baud)"),
    "ports_found": KindInfo("info", "esptool 'Found N serial ports' (field: count)"),
    # -- esptool-ck --------------------------------------------------------------------------------
    "ck_setting": KindInfo("info", "esptool-ck 'setting NAME [from OLD] to NEW' (fields: name, old_value, value)"),
    "ck_step": KindInfo("progress", "esptool-ck internal step (opening bootloader, flush, sending header) "
                        "(fields: bytes, function, timeout_ms)"),
    "ck_reset": KindInfo("progress", "esptool-ck 'resetting board'"),
    "connect_attempt": KindInfo("progress", "One sync attempt (esptool-ck 'trying to connect')"),
    "ck_wrote": KindInfo("progress", "esptool-ck -vv write count (fields: requested, written)"),
    "ck_read": KindInfo("progress", "esptool-ck -vv read count (fields: got, requested)"),
    "ck_send_failed": KindInfo("progress", "esptool-ck 'error: failed sending ...' (field: what)"),
    "ck_no_response": KindInfo("progress", "esptool-ck 'didn't receive command response' (field: reply)"),
    "ck_wrong_response": KindInfo("progress", "esptool-ck 'wrong direction/command' (a reply out of step)"),
    "ck_command_failed": KindInfo("failure", "esptool-ck 'espcomm_send_command(CMD) failed' (field: command)"),
    "ck_invalid_reply": KindInfo("progress", "esptool-ck got bytes that are not a SLIP frame start (field: byte)"),
    "ck_failed": KindInfo("failure", "esptool-ck 'espcomm_X failed': the function, such as espcomm_sync or "
                          "espcomm_open (field: function)"),
    "ck_uploading": KindInfo("progress", "esptool-ck 'Uploading N bytes from FILE to flash at ADDR' (field: bytes)"),
    "ck_done": KindInfo("success", "esptool-ck finished writing ('starting app without reboot', 'closing bootloader')"),
    # -- esptool.py connection -------------------------------------------------------------------
    "connecting": KindInfo("progress", "esptool 'Connecting...'; resets counts the '_' (fields: dots, resets)"),
    "chip_detect": KindInfo("progress", "esptool 'Detecting chip type... X' (field: chip)"),
    "detect_protocol_switch": KindInfo("progress", "'Unsupported detection protocol, switching and trying again'"),
    "chip_is": KindInfo("progress", "esptool 'Chip is X' / 'Chip type: X' (field: chip)"),
    "chip_feature": KindInfo("info", "Features / Crystal / MAC lines"),
    "connected": KindInfo("progress", "esptool v5 'Connected to CHIP on PORT' (fields: chip, port)"),
    "stub": KindInfo("progress", "Uploading / running the flasher stub"),
    "baud_change": KindInfo("progress", "'Changing baud rate to N' (field: baud)"),
    "baud_changed": KindInfo("progress", "'Changed.' after a baud change"),
    "flash_config": KindInfo("progress", "Flash size / params lines: 'Detected flash size: 4MB', 'Flash params set to 0x0220' "
                             "(fields: size, params)"),
    "erase": KindInfo("progress", "The flasher erases flash: 'Erasing flash...', 'Flash will be erased from A to B...', "
                      "'Chip erase completed successfully'"),
    "flash_id": KindInfo("info", "Manufacturer / Device id lines (fields: device, manufacturer)"),
    "compressed": KindInfo("progress", "'Compressed N bytes to M...'"),
    "writing": KindInfo("progress", "'Writing at 0xADDR... (P %)' (fields: address, percent)"),
    "wrote": KindInfo("progress", "'Wrote N bytes ... at 0xADDR in T seconds'"),
    "hash_verified": KindInfo("success", "'Hash of data verified.'"),
    "leaving": KindInfo("progress", "'Leaving...'"),
    "hard_reset": KindInfo("progress", "'Hard resetting...'"),
    "warning": KindInfo("info", "A flasher WARNING line (field: text)"),
    "flash_comm_warning": KindInfo("failure", "'WARNING: Failed to communicate with the flash chip'"),
    "hint": KindInfo("info", "esptool v4.7+/v5 'Hint:' / troubleshooting link lines (field: text)"),
    "trace_command": KindInfo("progress", "esptool --trace 'command op=0xNN' (field: op)"),
    "trace_io": KindInfo("info", "esptool --trace read/write byte dump lines (field: bytes)"),
    # -- failures reported by esptool.py ---------------------------------------------------------
    "fatal_error": KindInfo("failure", "'A fatal error occurred: TEXT' not otherwise understood (field: text)"),
    "usage_error": KindInfo("failure", "The flasher refused its command line ('Invalid argument or value after --chip', "
                            "'esptool.py: error: argument ...', 'Error: No such option') (field: text)"),
    "connect_failed": KindInfo("failure", "A flasher's generic could-not-connect error (esptool-js, espflash, "
                               "ESP Web Tools) (field: text)"),
    "usb_download_stuck": KindInfo(
        "info", "S2/S3 'chip was placed into download mode using GPIO0': written, but not reset into the app"
    ),
    "unsupported_chip": KindInfo("failure", "'Unexpected chip magic/ID value ... Failed to autodetect chip type'"),
    "baud_retry": KindInfo("progress", "ESPHome 'Upload with baud rate N failed. Trying again with baud rate "
                           "115200.' (field: baud)"),
    "timeout_packet_header": KindInfo("failure", "'Timed out waiting for packet header'"),
    "no_serial_data": KindInfo("failure", "'No serial data received' (not one byte came back)"),
    "wrong_boot_mode": KindInfo("failure", "'Wrong boot mode detected (0xNN)' (field: boot)"),
    "invalid_head": KindInfo("failure", "'Invalid head of packet (0xNN)' — serial noise or baud mismatch (field: byte)"),
    "tx_path_down": KindInfo("failure", "'Download mode successfully detected, but getting no sync reply'"),
    "stream_stopped": KindInfo("failure", "'Serial data stream stopped' / 'Packet content transfer stopped' (field: text)"),
    "chip_stopped": KindInfo("failure", "'The chip stopped responding'"),
    "md5_mismatch": KindInfo("failure", "'MD5 of file does not match data in flash'"),
    "ram_write_failed": KindInfo("failure", "'Failed to write to target RAM'"),
    "flash_size_unknown": KindInfo("failure", "'Could not auto-detect Flash size'"),
    "wrong_chip": KindInfo("failure", "'This chip is X, not Y. Wrong --chip argument?' (fields: detected, expected)"),
    "secure_download": KindInfo("failure", "Secure download mode / secure boot / flash encryption refusal (field: text)"),
    "image_too_large": KindInfo("failure", "'... will not fit in N bytes of flash' (fields: flash_bytes, image, reason)"),
    "port_error": KindInfo("failure", "Port cannot be opened (fields: port, errno, exception, reason, winerror)"),
    "io_error": KindInfo("failure", "The device vanished mid-session (Input/output error, readiness to read) "
                         "(fields: errno, reason, text)"),
    "timeout_error": KindInfo("failure", "A command timed out (field: text)"),
    # -- ROM boot output -------------------------------------------------------------------------
    "rom_banner_8266": KindInfo("info", "ESP8266 'ets Jan  8 2013,rst cause:N, boot mode:(X,Y)' (fields: mode, rst_cause, sub)"),
    "rom_banner_32": KindInfo("info", "ESP32 'rst:0xN (REASON),boot:0xNN (MODE)' (fields: boot, boot_name, reset_reason, rst)"),
    "rom_boot_note": KindInfo("info", "Other ROM output: 'waiting for download', 'ets Jun  8 2016' (field: entry)"),
    "brownout": KindInfo("info", "'Brownout detector was triggered'"),
    "flash_read_err": KindInfo("info", "ROM 'flash read err'"),
    "invalid_header": KindInfo("info", "ROM/bootloader 'invalid header: 0x...' (no valid image at boot)"),
    # -- Python and build errors ----------------------------------------------------------------
    "python_exception": KindInfo("failure", "A Python exception line not otherwise understood (fields: exception, text)"),
    "traceback": KindInfo("info", "Python traceback header or frame"),
    "build_error": KindInfo("failure", "The sketch/firmware did not build or does not fit ('Sketch too big')"),
    # -- everything else --------------------------------------------------------------------------
    "other": KindInfo("other", "A line the grammar does not know"),
}

# The fields each kind can carry, as the parser names them (``parse.field_of`` names the grammar's
# terminals, ``parse._finish`` adds a few). Rules may only test and quote these; tests check them
# against the grammar, against every sample log and against the "(fields: ...)" in each kind's doc.
COMMON_FIELDS = ("fatal", "level", "port", "target")  # from a line prefix or a wrapper around any message
FIELDS: dict[str, tuple[str, ...]] = {
    "ide_banner": ("board", "ide_version", "os"),
    "upload_started": ("file",),
    "command_line": ("cmd", "tool"),
    "exit_status": ("code",),
    "upload_error": ("text",),
    "tool_banner": ("ck", "tool", "version"),
    "serial_port": ("baud",),
    "ports_found": ("count",),
    "ck_setting": ("name", "old_value", "value"),
    "ck_step": ("bytes", "function", "timeout_ms"),
    "ck_wrote": ("requested", "written"),
    "ck_read": ("got", "requested"),
    "ck_send_failed": ("what",),
    "ck_no_response": ("reply",),
    "ck_command_failed": ("command",),
    "ck_invalid_reply": ("byte",),
    "ck_failed": ("function",),
    "ck_uploading": ("bytes",),
    "connecting": ("dots", "resets"),
    "chip_detect": ("chip",),
    "chip_is": ("chip",),
    "connected": ("chip",),
    "baud_change": ("baud",),
    "flash_config": ("params", "size"),
    "flash_id": ("device", "manufacturer"),
    "writing": ("address", "percent"),
    "warning": ("text",),
    "hint": ("text",),
    "trace_command": ("op",),
    "trace_io": ("bytes",),
    "fatal_error": ("text",),
    "usage_error": ("text",),
    "connect_failed": ("text",),
    "baud_retry": ("baud",),
    "wrong_boot_mode": ("boot",),
    "invalid_head": ("byte",),
    "stream_stopped": ("text",),
    "wrong_chip": ("detected", "expected"),
    "secure_download": ("text",),
    "image_too_large": ("flash_bytes", "image", "reason"),
    "port_error": ("errno", "exception", "reason", "winerror"),
    "io_error": ("errno", "reason", "text"),
    "timeout_error": ("text",),
    "rom_banner_8266": ("mode", "rst_cause", "sub"),
    "rom_banner_32": ("boot", "boot_name", "reset_reason", "rst"),
    "rom_boot_note": ("entry",),
    "python_exception": ("exception", "text"),
}


def fields_of(kind: str) -> frozenset[str]:
    """Every field an event of ``kind`` can carry (kinds without their own fields carry the common ones)."""
    return frozenset(COMMON_FIELDS + FIELDS.get(kind, ()))

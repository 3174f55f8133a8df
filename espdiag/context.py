"""Facts about the setup that the log reveals: tool, wrapper, OS, port, baud, chip, reset method,
and how far the attempt got. Rules test these as ``context:`` conditions; fixes quote them.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping

from espdiag.events import FieldValue

Context = dict[str, FieldValue]

# Every key the functions below can set, with what a rule's {placeholder} of it reads when the log
# does not say. Rules may only test and quote these (the loader checks; tests/test_rule_loader.py
# checks that context.py sets no other key).
KEYS: dict[str, str] = {
    "tool": "the flasher", "tool_version": "its version", "env": "your upload tool", "os": "your computer's OS",
    "os_version": "an unknown version", "port": "the board's port", "port_kind": "an unknown kind of port",
    "baud": "the current speed", "baud_option": "the current speed", "baud_changed": "unknown",
    "chip": "the chip", "chip_option": "the chip", "chip_detected": "unknown", "native_usb": "unknown",
    "native_usb_possible": "unknown", "board": "the board", "board_style": "the board's style",
    "reset_method": "the reset method", "before": "the reset method", "after": "the after-upload reset",
    "address": "the address", "file": "the image file", "images": "the number of images",
    "flash_mode": "the flash mode", "flash_size": "the flash size", "flash_freq": "the flash frequency",
    "write_percent": "part", "secure_download_mode": "unknown",
}

_WIN_PORT = re.compile(r"^(?:\\\\\.\\)?COM\d+$", re.IGNORECASE)
_CHIP = re.compile(r"ESP32-?(?:S2|S3|C2|C3|C5|C6|C61|H2|P4)|ESP32|ESP8266|ESP8285", re.IGNORECASE)
_BAUD_IN_MENU = re.compile(
    r"(?<![\d.])(9600|57600|74880|115200|230400|256000|460800|512000|921600|1500000|2000000|3000000)(?![\d.])"
)
NATIVE_USB_CHIPS = ("ESP32-S2", "ESP32-S3", "ESP32-C3", "ESP32-C5", "ESP32-C6", "ESP32-C61", "ESP32-H2", "ESP32-P4")

# command-line options of esptool-ck, esptool.py/esptool and espflash, and the context key each sets
_OPTIONS = {
    "-cd": "reset_method", "--before": "before", "--after": "after",
    "-cb": "baud", "-b": "baud", "--baud": "baud", "--upload-speed": "baud",
    "-cp": "port", "-p": "port", "--port": "port", "--upload-port": "port",
    "-c": "chip", "--chip": "chip",
    "-ca": "address", "-cf": "file",
    "-fm": "flash_mode", "--flash_mode": "flash_mode", "--flash-mode": "flash_mode",
    "-fs": "flash_size", "--flash_size": "flash_size", "--flash-size": "flash_size",
    "-ff": "flash_freq", "--flash_freq": "flash_freq", "--flash-freq": "flash_freq",
}
_ENV_HINTS = (
    ("arduino-create", "arduino-cloud"), ("arduino15", "arduino-ide"), ("arduino-cli", "arduino-cli"),
    ("sloeber", "arduino-ide"), (".platformio", "platformio"), ("platformio", "platformio"),
    ("/pio ", "platformio"), ("idf.py", "esp-idf"), ("esphome", "esphome"), ("espflash", "espflash"),
)


def chip_family(text: str) -> str | None:
    m = _CHIP.search(text)
    if not m:
        return None
    chip = m.group(0).upper()
    if chip.startswith("ESP32") and len(chip) > 5 and chip[5] != "-":
        chip = f"ESP32-{chip[5:]}"
    return "ESP8266" if chip == "ESP8285" else chip


def port_os(port: str) -> str | None:
    if _WIN_PORT.match(port):
        return "windows"
    if port.startswith(("/dev/cu.", "/dev/tty.")):
        return "macos"
    if port.startswith("/dev/"):
        return "linux"
    return None


def _os_name(text: str) -> tuple[str | None, str | None]:
    low = text.lower()
    if "windows" in low:
        return "windows", low.replace("windows", "").strip() or None
    if "mac" in low or "darwin" in low:
        return "macos", None
    if "linux" in low:
        return "linux", None
    return None, None


def _set_port(ctx: Context, port: str) -> None:
    ctx["port"] = port
    os_name = port_os(port)
    if os_name:
        ctx.setdefault("os", os_name)
    low = port.lower()
    if "usbmodem" in low or "ttyacm" in low:
        ctx["port_kind"] = "cdc"  # USB CDC-ACM: native USB, or a bridge served by a generic CDC driver
    elif "wchusbserial" in low:
        ctx["port_kind"] = "wch"
    elif "usbserial" in low or "ttyusb" in low or "slab_usbtouart" in low:
        ctx["port_kind"] = "usb-serial"
    elif low.startswith("/dev/ttys") or low.startswith("/dev/ttyama"):
        ctx["port_kind"] = "uart"
    elif low.startswith(("rfc2217://", "socket://")):
        ctx["port_kind"] = "network"
    elif low == "webserial":
        ctx["port_kind"] = "webserial"
    elif _BLUETOOTH.search(low):
        ctx["port_kind"] = "bluetooth"  # a paired phone, speaker or headset: never an ESP board


# macOS names Bluetooth serial ports after the paired device ("/dev/cu.Bluetooth-Incoming-Port",
# "/dev/cu.BoseColorIISoundLink-SP", "-SPPDev"); Linux binds them as /dev/rfcommN
_BLUETOOTH = re.compile(r"^/dev/(?:cu|tty)\.(?:.*bluetooth|.*soundlink|.*airpods|.*-spp(?:dev)?\b|.*-sp$)|^/dev/rfcomm\d")


@functools.lru_cache(maxsize=256)
def _words(cmd: str) -> tuple[str, ...]:
    """The words of a command line (shlex is slow and a retry loop repeats the same command)."""
    try:
        return tuple(shlex.split(cmd, posix=False))
    except ValueError:
        return tuple(cmd.split())


# Rust builds name the chip in the target triple (cargo espflash, esp-rs): "xtensa-esp32s3-none-elf";
# the RISC-V triples ("riscv32imc-esp-espidf") fit several chips and are not used
_RUST_TARGET = re.compile(r"\bxtensa-(esp32s[23]|esp32)-(?:none|espidf)\b")


def apply_command(ctx: Context, cmd: str) -> None:
    low = cmd.lower()
    for needle, env in _ENV_HINTS:
        if needle in low:
            ctx.setdefault("env", env)
            break
    if "espflash" in low:
        ctx.setdefault("tool", "espflash")
    if "esptool.exe" in low or re.search(r"esptool(?:\.exe)?\s+-v*c[dbpaf]", low) or " -cd " in low:
        ctx["tool"] = "esptool-ck"
    words = list(_words(cmd))
    for i, word in enumerate(words):
        name, eq, value = word.partition("=")
        key = _OPTIONS.get(name)
        if key is None:
            continue
        if not eq:
            if i + 1 >= len(words):
                continue
            value = words[i + 1]
        value = value.strip("\"'")
        if key == "baud" and value.isdigit():
            ctx["baud"] = int(value)
            ctx["baud_option"] = int(value)
        elif key == "port":
            _set_port(ctx, value)
        elif key == "chip":
            family = chip_family(value)
            if family:
                ctx["chip_option"] = family
        else:
            ctx[key] = value
    if "reset_method" not in ctx and "before" in ctx:
        ctx["reset_method"] = str(ctx["before"])
    if "chip_option" not in ctx and (m := _RUST_TARGET.search(low)):
        ctx["chip_option"] = chip_family(m.group(1)) or ""
    _images(ctx, words)


_ADDRESS = re.compile(r"^(?:0x[0-9a-fA-F]+|\d+)$")


def _images(ctx: Context, words: list[str]) -> None:
    """esptool write_flash ADDR FILE [ADDR FILE ...]: the first image and how many there are."""
    for i, word in enumerate(words):
        if word.strip("\"'") in ("write_flash", "write-flash"):
            rest = [w.strip("\"'") for w in words[i + 1 :]]
            break
    else:
        return
    pairs = []
    j = 0
    while j < len(rest) - 1:
        if _ADDRESS.match(rest[j]) and not rest[j + 1].startswith("-"):
            pairs.append((rest[j], rest[j + 1]))
            j += 2
        else:
            j += 1
    if pairs:
        ctx["address"], ctx["file"] = pairs[0]
        ctx["images"] = len(pairs)


def update(ctx: Context, kind: str, fields: Mapping[str, FieldValue], text: str) -> None:
    """Fold one event into the context (cheap: called for stored events only)."""
    if kind == "tool_banner":
        tool = str(fields.get("tool", "esptool")).replace("esptool.js", "esptool-js")
        if fields.get("ck") or (tool == "esptool" and str(fields.get("version", "")).startswith("0.")):
            tool = "esptool-ck"
        ctx["tool"] = tool
        if "version" in fields:
            ctx["tool_version"] = str(fields["version"])
    elif kind == "command_line":
        apply_command(ctx, text)
    elif kind in ("serial_port", "pio_port_search", "port_error") and "port" in fields:
        _set_port(ctx, str(fields["port"]))
        if "vendorid 0x303a" in text.lower():
            ctx["port_kind"] = "espressif-usb"  # the chip's own USB-Serial/JTAG (Web Serial shows the VID)
    elif kind == "ck_setting":
        name, value = str(fields.get("name")), str(fields.get("value", ""))
        ctx["tool"] = "esptool-ck"
        if name == "board":
            ctx["reset_method"] = value
        elif name == "baudrate" and value.isdigit():
            ctx["baud"] = int(value)
        elif name == "port":
            _set_port(ctx, value)
    elif kind == "ide_banner":
        ctx["env"] = "arduino-ide"
        os_name, version = _os_name(str(fields.get("os", "")))
        if os_name:
            ctx["os"] = os_name
            if version:
                ctx["os_version"] = version
        board = str(fields.get("board", ""))
        ctx["board"] = board.strip('"')
        m = _BAUD_IN_MENU.search(board)
        if m:
            ctx.setdefault("baud", int(m.group(1)))
        family = chip_family(board)
        ctx.setdefault("chip", family or ("ESP8266" if "8266" in board or "NodeMCU" in board else ""))
        if "nodemcu" in board.lower():
            ctx.setdefault("board_style", "nodemcu")
    elif kind in ("chip_detect", "chip_is", "connected"):
        if "Secure Download Mode" in text:
            ctx["secure_download_mode"] = True
        if "port" in fields:
            _set_port(ctx, str(fields["port"]))
        family = chip_family(str(fields.get("chip", "")))
        if family:
            ctx["chip"] = family
            ctx["chip_detected"] = True
    elif kind == "baud_change":
        ctx["baud"] = int(fields.get("baud", 0) or 0)
        ctx["baud_changed"] = True
    elif kind == "upload_started":
        if text.startswith("Upload started") or text.startswith("Programming with"):
            ctx.setdefault("env", "arduino-cloud")
        elif text.startswith("Uploading ."):
            ctx.setdefault("env", "platformio")
    elif kind == "pio_port_search":
        ctx.setdefault("env", "platformio")
    elif kind == "exit_status":
        if "[upload]" in text or "[FAILED]" in text:
            ctx.setdefault("env", "platformio")
        elif "Failed uploading" in text:
            ctx.setdefault("env", "arduino-cli")
        elif "ninja" in text or "CMakeFiles" in text:
            ctx.setdefault("env", "esp-idf")
    elif kind == "writing":
        pct = fields.get("percent")
        if isinstance(pct, int):
            ctx["write_percent"] = pct  # the last progress seen: where the write stood when it failed
    elif kind == "wrong_chip":
        family = chip_family(str(fields.get("detected", "")))
        if family:
            ctx["chip"] = family
    if "target" in fields:
        family = chip_family(str(fields["target"]))
        if family:
            ctx.setdefault("chip", family)
    if "level" in fields and fields["level"] == "info" and text.startswith("INFO"):
        ctx.setdefault("env", "esphome")
    if "espflash::" in text:
        ctx.setdefault("tool", "espflash")


def finish(ctx: Context) -> Context:
    """Derived facts that depend on several events."""
    if "chip" not in ctx and "chip_option" in ctx:
        ctx["chip"] = ctx["chip_option"]
    chip = str(ctx.get("chip", ""))
    kind = ctx.get("port_kind")
    ctx["native_usb"] = bool((kind == "cdc" and chip in NATIVE_USB_CHIPS) or kind == "espressif-usb")
    # a native-USB-capable chip on a port we know nothing about may well be on its own USB
    ctx["native_usb_possible"] = bool(ctx["native_usb"] or (chip in NATIVE_USB_CHIPS and kind in (None, "webserial")))
    if "env" not in ctx and "tool" in ctx:
        ctx["env"] = "esptool" if ctx["tool"] in ("esptool.py", "esptool") else str(ctx["tool"])
    return ctx

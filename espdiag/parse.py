"""Lex and parse normalised lines with the lark grammar (LALR, contextual lexer, cached tables).

``parse_line(text)`` returns the event kind and fields for one logical line. Upload logs are highly
repetitive (a retry loop prints the same few lines thousands of times), so results are memoised per
distinct line; the grammar stays the single place that knows what a line means.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from espdiag import cache
from espdiag.events import KINDS, FieldValue

Parsed = tuple[str, tuple[tuple[str, FieldValue], ...]]
OTHER: Parsed = ("other", ())

# Messages often arrive behind a foreign prefix (an IDE's "[upload] ", garbage bytes printed at the
# wrong baud before a ROM banner). When a line does not parse, it is parsed again from each anchor.
_ANCHORS = re.compile(
    r"A fatal (?:esptool\.py )?error occurred|Failed to connect to|could not open port|Could not open"
    r"|ets \w+ +\d+ \d{4},|rst cause:|r?st:0x|Timed out waiting|Wrong boot mode|No serial data"
    r"|Invalid head of packet|esptool\.py v|espcomm_|exit status|Hash of data verified|Brownout"
    r"|\[Errno|PermissionError|FileNotFoundError|Connecting\.|Writing at 0x|Serial port "
    r"|Cannot configure port|Invalid head of packet|Packet content|Serial data stream|Timed out waiting"
    r"|File (?=.+ will not fit in \d)|(?:ClearCommError|WriteFile|ReadFile|GetOverlappedResult) failed"
)


_GRAMMAR = "grammar/upload_log.lark"
_LARK_OPTIONS: dict[str, Any] = {"parser": "lalr", "lexer": "contextual", "propagate_positions": False,
                                 "maybe_placeholders": False}


@functools.cache
def parser() -> Lark:
    """The LALR parser; its tables come from espdiag's private cache when they were built before.

    lark's own ``cache=True`` is not used: it unpickles a file in the shared temporary folder, which
    any local user can plant. The tables are stored as JSON instead (``espdiag/cache.py``).
    """
    import lark

    grammar = grammar_text()
    digest = hashlib.sha256(f"{grammar}\0{lark.__version__}\0{sorted(_LARK_OPTIONS.items())}".encode()).hexdigest()
    name = f"grammar-{digest[:32]}.json"
    stored = cache.read_json(name)
    if isinstance(stored, dict):
        try:
            return Lark.load(_int_keys(stored))
        except Exception:  # a foreign or damaged entry: build the tables again
            pass
    built = build(grammar)
    tables = _tables(built)
    if tables is not None:
        cache.write_json(name, tables)
    return built


def grammar_text() -> str:
    return resources.files("espdiag").joinpath(_GRAMMAR).read_text(encoding="utf-8")


def build(grammar: str, *, strict: bool = False) -> Lark:
    """The parser built from ``grammar`` without the cache.

    ``strict=True`` makes lark refuse terminals that can match the same text at the same priority
    (where the lexer's choice would be an accident of ordering) and shift/reduce conflicts. It
    needs ``interegular`` and costs seconds, so only the tests build with it.
    """
    return Lark(grammar, **_LARK_OPTIONS, strict=strict)


def _tables(built: Lark) -> dict[str, Any] | None:
    """lark's own serialisation as JSON-ready data, or None when it would not come back the same."""
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    data, memo = built.memo_serialize([TerminalDef, Rule])
    data["options"] = {k: v for k, v in data["options"].items() if k not in ("import_paths", "source_path")}
    tables = {"data": data, "memo": memo}
    try:
        round_trip = _int_keys(json.loads(json.dumps(tables)))
    except (TypeError, ValueError):
        return None
    return tables if round_trip == _as_json_types(tables) else None


def _int_keys(obj: Any) -> Any:
    """JSON object keys are strings; lark's tables key states, tokens and its memo by integers."""
    if isinstance(obj, dict):
        return {int(k) if k.isdigit() else k: _int_keys(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_int_keys(v) for v in obj]
    return obj


def _as_json_types(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _as_json_types(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_as_json_types(v) for v in obj]
    return obj


def _int(text: str) -> FieldValue:
    try:
        return int(text, 0) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        return text


def _unquote(text: str) -> str:
    text = text.strip().rstrip(":").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _dots(text: str) -> FieldValue:
    return text.count(".")


_NUMBER = re.compile(r"-?\d+")

Clean = Callable[[str], FieldValue]

# The field a terminal's text becomes, whatever the kind. A terminal named nowhere here (fixed
# wording such as SCRIPT_FAILED, the catch-all REST in most kinds) carries no field: the event's
# text already holds it, and a field name must say what the value means, not how it was lexed.
_BY_TERMINAL: dict[str, tuple[str, Clean]] = {
    "CODE": ("code", _int),
    "WRITTEN": ("written", _int),
    "GOT": ("got", _int),
    "REQUESTED": ("requested", _int),
    "INT": ("count", _int),
    "BAUD": ("baud", _int),
    "ERRNO": ("errno", _int),
    "WINERROR": ("winerror", _int),
    "RST_CAUSE": ("rst_cause", _int),
    "MODE": ("mode", _int),
    "SUB": ("sub", _int),
    "ERRNO_TAG": ("errno", lambda t: _int(_NUMBER.findall(t)[-1])),
    "PORT_Q": ("port", _unquote),
    "PORT": ("port", _unquote),
    "CONNECT_TARGET": ("target", lambda t: t[len("Failed to connect to") :].strip().rstrip(":").strip()),
    "DETECTED_CHIP": ("detected", lambda t: t[len("This chip is") :].strip(" ,")),
    "EXPECTED_CHIP": ("expected", str.strip),
    "EXCEPTION_NAME": ("exception", lambda t: t.rstrip(":").strip()),
    "OS_EXC_NAME": ("exception", str.strip),
    "OS_MESSAGE": ("reason", _unquote),
    "OS_TEXT": ("reason", str.strip),
    "VERSION": ("version", lambda t: t.lstrip("v")),
    "DOTS": ("dots", _dots),
    "RST32": ("rst", lambda t: _int(t.split(":", 1)[1])),
    "RESET_REASON": ("reset_reason", str.strip),
    "BOOT_NAME": ("boot_name", str.strip),
    "BOOT_CODE": ("boot", _int),
    "CK_COMMAND": ("command", lambda t: t[t.index("(") + 1 : t.index(")")]),
    "CK_FUNC": ("function", str.strip),
    "IMAGE_DESC": ("image", lambda t: t[len("File") :].strip()),
    "CONN_CHIP": ("chip", str),
    "CHIP": ("chip", str.strip),
    "FLASHER": ("tool", str),
    "CK_COPYRIGHT": ("ck", lambda t: True),
    "FATAL": ("fatal", lambda t: True),
    "CK_LEVEL": ("level", lambda t: t.rstrip(":").lower()),
    "LOG_LEVEL": ("level", lambda t: t.strip("[]:").lower()),
    "WARNING_TAG": ("level", lambda t: "warning"),
    "BUSY_OR_MISSING": ("reason", str.strip),
    "PORT_PROBLEM_TEXT": ("reason", str.strip),
    "LOCK_FAILED": ("reason", str.strip),
    "BARE_EXCEPTION": ("exception", str.strip),
    "CK_NO_REPLY": ("reply", str.strip),
    "PORT_FAILED": ("port", lambda t: t.rsplit(" failed to connect:", 1)[0].strip()),
    "WEB_SERIAL": ("port", lambda t: "WebSerial"),
    "TOO_BIG_FOR_PARTITION": ("reason", str.strip),
    "IDE_VERSION": ("ide_version", str.strip),
    "OS": ("os", str.strip),
    "NAME": ("name", str.strip),
    "OLD_VALUE": ("old_value", str.strip),
    "VALUE": ("value", str.strip),
    "SIZE": ("size", str.strip),
    "MANUFACTURER": ("manufacturer", str.strip),
    "DEVICE": ("device", str.strip),
    "ADDRESS": ("address", str.strip),
    "UPLOAD_TARGET": ("file", str.strip),
}

# Where a terminal means something particular to one kind: above all the catch-all REST, and the
# hex number that is an opcode in one message and a byte, a size or flash parameters in others.
_BY_KIND: dict[tuple[str, str], tuple[str, Clean]] = {
    ("ide_banner", "REST"): ("board", str.strip),
    ("ck_send_failed", "REST"): ("what", str.strip),
    ("chip_is", "REST"): ("chip", str.strip),
    ("trace_command", "HEXBYTE"): ("op", _int),
    ("ck_invalid_reply", "HEXBYTE"): ("byte", _int),
    ("ck_step", "HEXBYTE"): ("bytes", _int),
    ("flash_config", "HEXBYTE"): ("params", str.strip),
    ("rom_boot_note", "HEXBYTE"): ("entry", _int),
    ("serial_port", "INT"): ("baud", _int),
    ("ck_step", "INT"): ("timeout_ms", _int),
    ("ck_uploading", "INT"): ("bytes", _int),
    ("trace_io", "INT"): ("bytes", _int),
    ("image_too_large", "INT"): ("flash_bytes", _int),
}
# a message may name a port twice (a wrapper's prefix, then the OS error's): the later, innermost one is kept
_LAST_WINS = {"count", "port"}


def field_of(kind: str, terminal: str) -> tuple[str, Clean] | None:
    """The field name and value cleaner for ``terminal``'s text in an event of ``kind`` (None: no field)."""
    return _BY_KIND.get((kind, terminal)) or _BY_TERMINAL.get(terminal)


def _fields(kind: str, tree: Tree[Token]) -> dict[str, FieldValue]:
    fields: dict[str, FieldValue] = {}
    for tok in tree.scan_values(lambda v: isinstance(v, Token)):
        named = field_of(kind, tok.type)
        if named is not None and (named[0] not in fields or named[0] in _LAST_WINS):
            fields[named[0]] = named[1](str(tok))
    return fields


_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s?%")
_FRACTION = re.compile(r"\]\s+(\d+)/(\d+)\s")
# "Invalid head of packet (0x1B)" (v2.5+) or ('\x1b') / ('A') (v2.0-2.3): the byte that arrived
_HEAD_BYTE = re.compile(r"packet \((?:(0x[0-9a-fA-F]{1,2})|'(\\x[0-9a-fA-F]{2}|\\[rnt]|.)')\)")


def _head_byte(token: str) -> int:
    if token.startswith("0x"):
        return int(token, 16)
    if token.startswith("\\x"):
        return int(token[2:], 16)
    return {"\\r": 13, "\\n": 10, "\\t": 9}.get(token, ord(token[0]))



def _finish(kind: str, fields: dict[str, FieldValue], text: str) -> None:
    """Kind-specific touches that a context-free grammar cannot express neatly."""
    if kind == "writing":
        m = _PERCENT.search(text)
        if m:
            fields["percent"] = round(float(m.group(1)))
        else:
            m = _FRACTION.search(text)
            if m and int(m.group(2)):
                fields["percent"] = round(100 * int(m.group(1)) / int(m.group(2)))
    elif kind == "invalid_head":
        m = _HEAD_BYTE.search(text)
        if m:
            fields["byte"] = _head_byte(m.group(1) or m.group(2))
    elif kind == "connecting":
        fields["resets"] = text.count("_")
        fields.setdefault("dots", 0)
    elif kind == "ck_setting":
        if "value" in fields:
            fields["value"] = str(fields["value"])
    elif kind == "command_line":
        fields["cmd"] = text
    elif kind in ("fatal_error", "upload_error", "usage_error", "warning", "hint", "timeout_error", "secure_download",
                  "python_exception", "io_error", "connect_failed", "stream_stopped"):
        fields["text"] = text


# A line that does not parse is tried again from its first few anchors only, and each time lark sees
# at most ANCHOR_WINDOW characters: a crafted line holding an anchor every few characters
# ("Connecting.Connecting.…") would otherwise cost one whole-line parse per anchor (quadratic). A
# window that parses is parsed again whole, for its exact fields (at most once per line).
MAX_ANCHOR_TRIES = 4
ANCHOR_WINDOW = 256


def parse_line(text: str) -> Parsed:
    """Parse one normalised logical line; lines the grammar does not know are ``other``."""
    result = _parse(text)
    # esptool's "Unable to verify flash chip connection (Packet content transfer stopped ...)" is the
    # first command after the stub failing for the reason in parentheses: the flash chip was never asked
    if result is OTHER or result[0] in _VAGUE or (result[0] == "flash_size_unknown" and "(" in text):
        # a known message wrapped in another tool's words ("Unexpected error: ESP Chip Auto-Detection
        # failed: Failed to connect to ...") is worth more than the vague wrapper
        inner = _from_anchor(text)
        if inner is not None:
            if result is not OTHER:
                inner = (inner[0], (*inner[1], *(f for f in result[1] if f[0] == "fatal")))
            return inner
    return result


def _from_anchor(text: str) -> Parsed | None:
    """The first message that parses from one of the first anchors inside ``text``."""
    tried: set[str] = set()
    for _, m in zip(range(MAX_ANCHOR_TRIES), _ANCHORS.finditer(text, 1), strict=False):
        start = m.start()
        window = text[start : start + ANCHOR_WINDOW]
        if window in tried:
            continue  # the same characters again (a repeated message): the same answer
        tried.add(window)
        inner = _parse(window)
        if inner is not OTHER and inner[0] not in _VAGUE:
            if start + ANCHOR_WINDOW < len(text):
                inner = _parse(text[start:])
                if inner is OTHER or inner[0] in _VAGUE:
                    continue
            return inner
    return None


_VAGUE = {"fatal_error", "upload_error", "python_exception"}


@functools.cache
def first_token() -> re.Pattern[str]:
    """A regex of every terminal the grammar accepts as a line's first token, derived from its tables.

    The contextual lexer only tries these at the start of a line; when none of them matches there,
    the parse certainly fails, so ``_parse`` skips lark (a cheap pre-filter for prose and noise).
    (lark's own scanner for that state is no substitute: its named groups make a miss ~7x slower.)
    """
    lark = parser()
    accepted = set(lark.parse_interactive("").choices())  # type: ignore[no-untyped-call]
    patterns = [t.pattern.to_regexp() for t in lark.terminals if t.name in accepted]
    return re.compile(r"[ \t]*(?:" + "|".join(f"(?:{p})" for p in patterns) + ")")


# Compiling the pre-filter costs about as much as lark rejecting 300 lines (~6 ms, a twentieth of a
# small log's whole run), so the first lines go to lark directly; the answer is the same either way.
_unfiltered = [128]


class LarkWork:
    """How many texts, and characters, were handed to lark: a test bounds the work per line with it."""

    calls = 0
    chars = 0


def _parse(text: str) -> Parsed:
    lark = parser()  # outside the try: a broken grammar is a bug and must not read as "other"
    if _unfiltered[0]:
        _unfiltered[0] -= 1
    elif first_token().match(text) is None:
        return OTHER
    LarkWork.calls += 1
    LarkWork.chars += len(text)
    try:
        tree = lark.parse(text)
    except LarkError:
        return OTHER
    except RecursionError:  # pragma: no cover - defensive, the grammar is flat
        return OTHER
    kind = "other"
    for sub in tree.iter_subtrees_topdown():  # type: ignore[no-untyped-call]
        name = str(sub.data).split("__", 1)[0]
        if name in KINDS:
            kind = name
    fields = _fields(kind, tree)
    _finish(kind, fields, text)
    return kind, tuple(fields.items())

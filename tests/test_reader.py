"""Decoding and normalisation: whatever a terminal or a forum did to the log, the lines come back."""

from __future__ import annotations

import codecs
import io

import pytest

from espdiag.errors import InputError
from espdiag.normalise import normalise
from espdiag.reader import iter_lines, sniff_encoding

TEXT = "esptool.py v3.0\nSerial port COM5\nA fatal error occurred: Timed out waiting for packet header\n"


def lines_of(data: bytes) -> list[tuple[int, str]]:
    out = []
    for number, raw in iter_lines(io.BytesIO(data)):
        for text in normalise(raw.decode("utf-8", "replace")):
            out.append((number, text))
    return out


@pytest.mark.parametrize(
    "data",
    [
        TEXT.encode(),
        codecs.BOM_UTF8 + TEXT.encode(),
        TEXT.encode("utf-16"),  # PowerShell '>' writes UTF-16 with a BOM
        TEXT.encode("utf-16-le"),  # and some tools without one
        TEXT.replace("\n", "\r\n").encode(),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16le-no-bom", "crlf"],
)
def test_encodings(data: bytes) -> None:
    assert lines_of(data) == [(1, "esptool.py v3.0"), (2, "Serial port COM5"),
                              (3, "A fatal error occurred: Timed out waiting for packet header")]


def test_line_numbers_refer_to_the_original_input() -> None:
    data = b"esptool.py v3.0\n\n\nSerial port COM5\n"
    assert lines_of(data) == [(1, "esptool.py v3.0"), (4, "Serial port COM5")]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[31mA fatal error occurred: x\x1b[0m", ["A fatal error occurred: x"]),
        ("> > Serial port COM3", ["Serial port COM3"]),
        ("    setting board to ck   ", ["setting board to ck"]),
        ("12:34:56.789 -> ets Jan  8 2013,rst cause:2, boot mode:(3,6)", ["ets Jan  8 2013,rst cause:2, boot mode:(3,6)"]),
        ("[2024-05-01 10:00:01.123] Connecting....", ["Connecting...."]),
        ("11:33:34 | \u2139\ufe0f Running esptool --chip esp32s2 --port COM38", ["Running esptool --chip esp32s2 --port COM38"]),
        ("```", []),
        ("```text", []),
        ("Writing at 0x00000000... (6 %)\rWriting at 0x00004000... (12 %)", ["Writing at 0x00000000... (6 %)", "Writing at 0x00004000... (12 %)"]),
        ("\x00\x00", []),
        ("  \u2570\u2500\u25b6 Failed to connect to the device", ["Failed to connect to the device"]),
        ("  x The serial port 'COM3' could not be found", ["The serial port 'COM3' could not be found"]),
        ("  `-> Serial port not found", ["Serial port not found"]),
        ("x86_64 build", ["x86_64 build"]),
        ("Connecting\u2026_", ["Connecting..._"]),
        ("Connecting...Error: Failed to execute 'open' on 'SerialPort'", ["Connecting...", "Error: Failed to execute 'open' on 'SerialPort'"]),
        ("Connecting......Traceback (most recent call last):", ["Connecting......", "Traceback (most recent call last):"]),
        ("Connecting........_____....._____", ["Connecting........_____....._____"]),
    ],
)
def test_normalise(raw: str, clean: list[str]) -> None:
    assert normalise(raw) == clean


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert lines_of(b"abc\xff\x80\nok\n")[-1] == (2, "ok")


def test_binary_junk_is_an_input_error() -> None:
    with pytest.raises(InputError, match="binary"):
        list(iter_lines(io.BytesIO(bytes(range(32)) * 100), "junk.bin"))


def test_long_line_without_newline_is_cut() -> None:
    data = b"x" * (3 << 20) + b"\nHash of data verified.\n"
    got = list(iter_lines(io.BytesIO(data)))
    assert got[-1] == (2, b"Hash of data verified.")
    assert len(got[0][1]) <= 1 << 16


def test_sniff() -> None:
    assert sniff_encoding(b"abc") == "utf-8"
    assert sniff_encoding("abc".encode("utf-16-le")) == "utf-16-le"


FAILING = b"esptool.py v4.7.0\nSerial port /dev/ttyUSB0\nConnecting......\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\n"


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE], ids=["ff-fe", "fe-ff"])
def test_a_stray_utf16_bom_before_an_ascii_log_is_not_trusted(bom: bytes) -> None:
    from espdiag.api import diagnose_bytes

    assert sniff_encoding(bom + FAILING) == "utf-8"
    report = diagnose_bytes(bom + FAILING)
    assert report.verdict == "failure"
    assert lines_of(bom + FAILING)[0] == (1, "esptool.py v4.7.0")


def test_a_real_utf16_log_with_a_bom_is_still_utf16() -> None:
    data = FAILING.decode().encode("utf-16")
    assert sniff_encoding(data) == "utf-16"
    # UTF-16 of text that is not ASCII has no NUL pattern, and is not UTF-8 either
    cjk = "串口 COM3 连接失败\n".encode("utf-16")
    assert sniff_encoding(cjk) == "utf-16"


def _boot_garbage(n: int) -> bytes:
    import random

    rnd = random.Random(n)  # wrong-baud ROM output: mostly high bytes and NULs
    return bytes(rnd.choice([0, 0x80, 0xe0, 0xf8, 0xfe, 0xff, rnd.randrange(256)]) for _ in range(n))


@pytest.mark.parametrize("n", [300, 700, 5000])
def test_boot_garbage_before_a_log_does_not_make_it_binary(n: int) -> None:
    from espdiag.api import diagnose_bytes

    report = diagnose_bytes(_boot_garbage(n) + b"\r\n" + FAILING)
    assert report.verdict == "failure"


def test_binary_is_decided_by_the_whole_input_not_its_start() -> None:
    data = FAILING * 50 + bytes(range(32)) * 4000  # 7 KB of text first, then mostly binary
    with pytest.raises(InputError, match="binary"):
        list(iter_lines(io.BytesIO(data), "mixed.bin"))


def test_a_large_binary_input_is_refused_early(monkeypatch: pytest.MonkeyPatch) -> None:
    from espdiag import reader

    monkeypatch.setattr(reader, "BLOCK", 4096)
    monkeypatch.setattr(reader, "EARLY", 64 << 10)
    read = []

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            read.append(len(b))
            b[:] = bytes(range(32))[: len(b)] * (len(b) // 32) + bytes(len(b) % 32)
            return len(b)

    with pytest.raises(InputError, match="binary"):
        list(iter_lines(Endless(), "zero.bin"))  # type: ignore[arg-type]
    assert sum(read) < 1 << 20


def test_the_binary_error_shows_control_characters_in_the_name() -> None:
    with pytest.raises(InputError) as info:
        list(iter_lines(io.BytesIO(bytes(range(32)) * 100), "x\x1b]0;owned\x07\n.bin"))
    assert str(info.value).startswith("x\\x1b]0;owned\\x07\\n.bin: ")

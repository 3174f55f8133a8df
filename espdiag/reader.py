"""Read a log as bytes and yield physical lines with their original line numbers.

Decoding is robust on purpose: UTF-8 (with or without BOM), UTF-16 with a BOM (PowerShell's ``>``)
or without one (detected from NUL bytes), and invalid bytes replaced. A BOM is checked against the
bytes after it, and binary data is told from text by counting junk over the whole input. The input is streamed so
memory does not grow with the size of the log.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from espdiag.errors import InputError
from espdiag.render.safe import one_line

CHUNK = 1 << 16  # what is sniffed for the encoding
BLOCK = 1 << 20  # what is read and split at a time
MAX_PHYSICAL = 1 << 16  # a longer line is read in pieces; only its first piece is parsed


def sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # two bytes are no proof: a stray FF FE before an ASCII log (a serial monitor, a paste) would
        # turn the whole log into CJK-looking garbage. Trust the BOM unless the rest reads as UTF-8.
        rest = head[2:4096]
        if _nul_pattern(rest) or not _reads_as_utf8(rest):
            return "utf-16"
        return "utf-8"  # the stray bytes are invalid UTF-8: replaced, then dropped by normalise
    return _nul_pattern(head[:4096]) or "utf-8"


def _nul_pattern(sample: bytes) -> str:
    """``utf-16-le``/``utf-16-be`` when the bytes look like UTF-16 text without a BOM, else ``""``."""
    if len(sample) < 4:
        return ""
    even_nul = sample[0::2].count(0)
    odd_nul = sample[1::2].count(0)
    half = len(sample) // 2
    # text in UTF-16 has a NUL in every other byte; binary junk has them everywhere or nowhere
    if odd_nul > 0.4 * half and even_nul < 0.05 * half:
        return "utf-16-le"
    if even_nul > 0.4 * half and odd_nul < 0.05 * half:
        return "utf-16-be"
    return ""


def _reads_as_utf8(sample: bytes) -> bool:
    """Mostly valid UTF-8 with few control bytes: a text log, not UTF-16 (whose ASCII halves are NULs)."""
    return bool(sample) and _junk(sample) <= 0.05 * len(sample)


# every byte that text may hold: printable ASCII, tab, line ends, ESC, and the bytes of non-ASCII
# characters (their validity is checked by decoding). What is left after deleting these is junk.
_TEXT_BYTES = bytes([9, 10, 13, 27, *range(32, 127), *range(128, 256)])
JUNK_LINE = 0.3  # a line with more junk than this share of its bytes is garbage
BINARY_SHARE = 0.5  # more garbage lines than this share of all lines, and the input is not a log
EARLY = 4 << 20  # after this many bytes of mostly garbage, stop reading: no log starts with 4 MiB of it


def _junk(data: bytes) -> int:
    """Control bytes and invalid UTF-8 sequences in ``data``."""
    junk = len(data.translate(None, _TEXT_BYTES))
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            if e.reason != "unexpected end of data":  # a character cut by a block boundary is no junk
                junk += data.decode("utf-8", "replace").count("\ufffd")
    return junk


class _JunkCounter:
    """Reads a stream and keeps a running count of its lines and of the garbage lines among them.

    Binary-ness is decided over the whole input, in constant memory (two counters): a serial capture
    may start with a few hundred bytes of wrong-baud boot garbage and still be a log. Counting lines
    rather than bytes means one long garbage line cannot outweigh the log that follows it, while a
    binary file (firmware, archive, random data) is garbage from one 0x0A byte to the next.
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._read = stream.read
        self.name = name
        self.bytes = 0
        self.lines = 0
        self.garbage = 0

    def count(self, data: bytes) -> bytes:
        self.bytes += len(data)
        if not _junk(data):  # the usual case: a whole block of text, counted in C
            self.lines += data.count(b"\n") + 1
            return data
        for line in data.split(b"\n"):  # a line cut by a block boundary counts as two: close enough
            self.lines += 1
            self.garbage += _junk(line) > JUNK_LINE * len(line)
        if self.bytes >= EARLY:
            self.check()
        return data

    def read(self, n: int = -1) -> bytes:
        data = self._read(n)
        return self.count(data) if data else data

    def binary(self) -> bool:
        return self.garbage > BINARY_SHARE * self.lines

    def check(self) -> None:
        if self.binary():
            # the name goes to a terminal: a control character in it must not act there
            raise InputError(f"{one_line(self.name)}: this looks like binary data, not an upload log")


def iter_lines(stream: BinaryIO, name: str = "<stdin>") -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, utf8_bytes)`` for each physical line; bytes keep invalid sequences.

    Lines stay bytes so the caller can memoise per distinct line before paying for decoding.
    """
    for first, lines in iter_batches(stream, name):
        yield from enumerate(lines, first)


def iter_batches(stream: BinaryIO, name: str = "<stdin>") -> Iterator[tuple[int, list[bytes]]]:
    """Yield ``(number_of_first_line, lines)``: the physical lines of the log in order, in batches.

    The same lines as :func:`iter_lines`, but split a whole block at a time (``bytes.split`` runs in
    C), so a caller can process a block without a Python-level step per line. Memory stays bounded
    by the block size whatever the size of the log.
    """
    head = stream.read(CHUNK)
    encoding = sniff_encoding(head)
    if encoding.startswith("utf-16"):
        yield from _transcoded(head, stream, encoding)
        return
    if encoding == "utf-8-sig":
        head = head[len(codecs.BOM_UTF8) :]
    counter = _JunkCounter(stream, name)
    yield from _split(counter.count(head), counter)  # type: ignore[arg-type]
    counter.check()  # at the end: the lines were parsed already, but nothing is reported for them


_HALF = MAX_PHYSICAL // 2


def _capped(buf: bytes, lines: list[bytes]) -> list[bytes]:
    # A line longer than MAX_PHYSICAL covers a whole aligned window of half that size, so when every
    # such window of the block holds a newline no line needs cutting: ~32 C-level finds per MiB
    # instead of measuring every line.
    find = buf.find
    for start in range(0, len(buf) - _HALF + 1, _HALF):
        if find(b"\n", start, start + _HALF) < 0:
            return [line[:MAX_PHYSICAL] for line in lines]
    return lines


def _split(head: bytes, stream: BinaryIO) -> Iterator[tuple[int, list[bytes]]]:
    number = 1  # number of the next line
    rest = b""  # the unfinished last line of what was read so far
    read = stream.read
    more = head or read(BLOCK)
    while True:
        buf = more or rest
        lines = buf.split(b"\n")
        if more and rest:
            lines[0] = rest + lines[0]  # joined here, not by copying the whole block
            if len(lines[0]) > MAX_PHYSICAL and len(lines) > 1:
                lines[0] = lines[0][:MAX_PHYSICAL]
        rest = lines.pop()  # the unfinished last line waits for the next block
        if lines:
            lines = _capped(buf, lines)
            yield number, lines
            number += len(lines)
        if not more:
            if rest:
                yield number, [rest[:MAX_PHYSICAL]]
            return
        if len(rest) > MAX_PHYSICAL:
            # a huge line with no newline yet: keep its head, skip its body until the newline
            yield number, [rest[:MAX_PHYSICAL]]
            number += 1
            after = _after_newline(read(BLOCK), stream)
            if after is None:
                return
            rest = after
        more = read(BLOCK)


def _after_newline(more: bytes, stream: BinaryIO) -> bytes | None:
    while more:
        i = more.find(b"\n")
        if i >= 0:
            return more[i + 1 :]
        more = stream.read(BLOCK)
    return None


def _transcoded(head: bytes, stream: BinaryIO, encoding: str) -> Iterator[tuple[int, list[bytes]]]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def chunks() -> Iterator[bytes]:
        data = head
        while data:
            yield decoder.decode(data).encode("utf-8", "surrogatepass")
            data = stream.read(BLOCK)
        yield decoder.decode(b"", final=True).encode("utf-8", "surrogatepass")

    gen = chunks()

    class _Stream:
        def read(self, _n: int = -1) -> bytes:
            for piece in gen:
                if piece:
                    return piece
            return b""

    first = _Stream().read()
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    yield from _split(first, _Stream())  # type: ignore[arg-type]

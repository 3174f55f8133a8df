"""Read a log as bytes and yield physical lines with their original line numbers.

Decoding is robust on purpose: UTF-8 (with or without BOM), UTF-16 with a BOM (PowerShell's ``>``)
or without one (detected from NUL bytes), and invalid bytes replaced. The input is streamed so
memory does not grow with the size of the log.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from espdiag.errors import InputError

CHUNK = 1 << 16  # what is sniffed for the encoding
BLOCK = 1 << 20  # what is read and split at a time
MAX_PHYSICAL = 1 << 16  # a longer line is read in pieces; only its first piece is parsed


def sniff_encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_nul = sample[0::2].count(0)
        odd_nul = sample[1::2].count(0)
        half = len(sample) // 2
        # text in UTF-16 has a NUL in every other byte; binary junk has them everywhere or nowhere
        if odd_nul > 0.4 * half and even_nul < 0.05 * half:
            return "utf-16-le"
        if even_nul > 0.4 * half and odd_nul < 0.05 * half:
            return "utf-16-be"
    return "utf-8"


def looks_binary(head: bytes, encoding: str) -> bool:
    if encoding.startswith("utf-16") or not head:
        return False
    sample = head[:4096].decode("utf-8", "replace")
    # a log with some boot garbage is still mostly text; random or binary data is not
    junk = sum(1 for ch in sample if ch == "\ufffd" or (ch < " " and ch not in "\t\n\r\x1b"))
    return junk > 0.3 * len(sample)


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
    if looks_binary(head, encoding):
        raise InputError(f"{name}: this looks like binary data, not an upload log")
    if encoding.startswith("utf-16"):
        yield from _transcoded(head, stream, encoding)
        return
    if encoding == "utf-8-sig":
        head = head[len(codecs.BOM_UTF8) :]
    yield from _split(head, stream)


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

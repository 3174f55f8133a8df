"""A helper process that marks lines ahead (espdiag/premark.py) must never change a scan's result."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_scan_equivalence import BAD, CK, IDE, MULTI, OK, POOL, PROSE, _state, reference_scan

from espdiag import premark, reader, scanner

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the helper process needs fork")


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # many batches from a small file, and a helper for any size on any machine
    monkeypatch.setattr(reader, "BLOCK", 4096)
    monkeypatch.setattr(reader, "CHUNK", 4096)
    monkeypatch.setattr(premark, "MIN_BYTES", 0)
    monkeypatch.setattr(premark, "_cpus", lambda: 2)
    monkeypatch.delenv("ESPDIAG_JOBS", raising=False)


@pytest.fixture
def used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many batches took their marks from the helper."""
    count = [0]
    real = premark.Helper.marks

    def spy(self: premark.Helper, first: int, n: int) -> bytes | None:
        got = real(self, first, n)
        count[0] += got is not None
        return got

    monkeypatch.setattr(premark.Helper, "marks", spy)
    yield count


def _mixture(seed: int) -> bytes:
    rng = random.Random(seed)
    parts = [OK, BAD, CK, IDE, PROSE, *(m + b"\n" for m in MULTI)]
    lines: list[bytes] = [rng.choice(parts) for _ in range(rng.randint(60, 200))]
    lines += [("\n".join(rng.sample(POOL, 20)) + "\n").encode() for _ in range(5)]
    rng.shuffle(lines)
    return b"".join(lines)


def _scan_file(path: Path) -> object:
    with open(path, "rb") as f:
        return _state(*scanner.scan(f, str(path)))


@pytest.mark.parametrize("seed", range(6))
def test_helper_gives_the_sequential_result(seed: int, tmp_path: Path, small_batches: None, used: list[int]) -> None:
    data = _mixture(seed)
    path = tmp_path / "big.log"
    path.write_bytes(data)
    assert _scan_file(path) == _state(*reference_scan(data))
    assert used[0] > 5  # the helper really did the marking


def test_helper_after_a_read_position(tmp_path: Path, small_batches: None, used: list[int]) -> None:
    # the stream was read from before the scan: the helper starts where the scanner starts
    data = _mixture(11)
    path = tmp_path / "big.log"
    path.write_bytes(b"skipped\n" * 100 + data)
    with open(path, "rb") as f:
        f.read(len(b"skipped\n") * 100)
        got = _state(*scanner.scan(f, str(path)))
    assert got == _state(*reference_scan(data))
    assert used[0] > 5


def _run_with(path: Path, marks_of: object) -> object:
    with open(path, "rb") as f:
        helper = premark.start(f, str(path), marks_of)  # type: ignore[arg-type]
        assert helper is not None
        try:
            return _state(*scanner.scan_batches(reader.iter_batches(f, str(path)), helper))
        finally:
            helper.close()


@pytest.mark.parametrize(("breaks", "good"), [("out of step", 4), ("dies", 3)])
def test_a_broken_helper_is_dropped(breaks: str, good: int, tmp_path: Path, small_batches: None,
                                    used: list[int]) -> None:
    # after `good` batches the helper sends marks that do not fit (one short), or raises and exits
    data = _mixture(3)
    path = tmp_path / "big.log"
    path.write_bytes(data)
    marker = scanner.Scanner()
    calls = [0]

    def marks_of(lines: list[bytes]) -> bytes:
        calls[0] += 1
        marks = marker.marks_of(lines)
        if calls[0] <= good:
            return marks
        if breaks == "dies":
            raise RuntimeError("helper broke")
        return marks[:-1]

    assert _run_with(path, marks_of) == _state(*reference_scan(data))
    assert used[0] == good


def test_helper_is_reaped(tmp_path: Path, small_batches: None) -> None:
    path = tmp_path / "big.log"
    path.write_bytes(_mixture(5))
    with open(path, "rb") as f:
        helper = premark.start(f, str(path), scanner.Scanner().marks_of)
        assert helper is not None
        pid = helper.pid
        helper.marks(1, 3)  # out of step on purpose: closes and reaps it
    assert helper.pid == 0
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, 0)


def test_no_helper_when_not_worth_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.log"
    path.write_bytes(OK)
    monkeypatch.delenv("ESPDIAG_JOBS", raising=False)
    monkeypatch.setattr(premark, "_cpus", lambda: 2)
    marks_of = scanner.Scanner().marks_of
    with open(path, "rb") as f:
        assert premark.start(f, "small.log", marks_of) is None  # small file
    monkeypatch.setattr(premark, "MIN_BYTES", 0)
    assert premark.start(io.BytesIO(OK), "<bytes>", marks_of) is None  # not a file
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pipe, os.fdopen(w, "wb"):
        assert premark.start(pipe, "<stdin>", marks_of) is None  # a pipe
    monkeypatch.setenv("ESPDIAG_JOBS", "1")
    with open(path, "rb") as f:
        assert premark.start(f, "small.log", marks_of) is None  # turned off
    monkeypatch.delenv("ESPDIAG_JOBS")
    monkeypatch.setattr(premark, "_cpus", lambda: 1)
    with open(path, "rb") as f:
        assert premark.start(f, "small.log", marks_of) is None  # no spare CPU

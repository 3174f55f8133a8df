#!/usr/bin/env python3
"""Memory: espdiag's peak RSS must stay under 80 MB, for the whole process tree, on any log.

Writes each log shape to a temp file in a streaming way, runs espdiag on it as a child process and
prints the peak RSS of the whole process tree (the RSS of every descendant, summed, sampled every
10 ms from /proc; on systems without /proc, the largest single process from getrusage), then
removes the file. The shapes are the ones that have broken the promise before (issue #12 item 4):

* ``retry-loop``: a realistic serial capture of a retry loop (bench/biglog.py), SIZE_MB;
* ``stamped-progress``: time-stamped ``Writing at ...`` lines, one long attempt in which every raw
  line is distinct and updates the context (the context memo used to keep each of them), SIZE_MB;
* ``distinct-lines``: 1 M distinct lines of sketch output (every line is parsed);
* ``distinct-events``: 1 M distinct lines that are events (kept, counted, folded into the context);
* ``long-lines``: 60 MB of the samples' lines, each made distinct and padded to the 4 KB a logical
  line is cut at (the most an attempt's kept events and counted texts can hold);
* ``run``: ``espdiag run -- cat LOG`` on the retry loop and on the stamped progress (the output
  arrives through a pipe, in small reads).

    python bench/memory.py [SIZE_MB=300] [SHAPE...]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import ESPDIAG, machine
from biglog import write_log

RUN = Path(__file__).resolve().parent / "_run.py"

LIMIT_MB = 80.0


def _write_lines(path: Path, size: int, line: Callable[[int], bytes]) -> None:
    with open(path, "wb", buffering=1 << 20) as f:
        done = n = 0
        while done < size:
            block = b"".join(line(i) for i in range(n, n + 10000))
            n += 10000
            f.write(block)
            done += len(block)


def _stamp(i: int) -> bytes:
    return b"%02d:%02d:%02d.%03d -> " % ((i // 3600000) % 24, (i // 60000) % 60, (i // 1000) % 60, i % 1000)


def write_stamped_progress(path: Path, size: int) -> None:
    head = b"esptool.py v4.5.1\nSerial port /dev/ttyUSB0\nConnecting....\nChip is ESP32-D0WD-V3 (revision v3.1)\n"
    path.write_bytes(head)
    with open(path, "ab", buffering=1 << 20) as f:
        done = n = 0
        while done < size:
            block = b"".join(
                _stamp(i) + b"Writing at 0x%08x... (%d %%)\n" % (0x10000 + (i % 4096) * 0x400, i % 4096 * 100 // 4096)
                for i in range(n, n + 10000)
            )
            n += 10000
            f.write(block)
            done += len(block)


def write_distinct_lines(path: Path, lines: int) -> None:
    _write_lines(path, lines * 60, lambda i: _stamp(i) + b"Hello from the sketch, loop %d, heap %d\n" % (i, 40000 - i % 977))


def write_distinct_events(path: Path, lines: int) -> None:
    # progress and context lines whose text differs on every line: nothing can be shared by text
    def line(i: int) -> bytes:
        if i % 3 == 0:
            return b"Writing at 0x%08x... (%d %%)\n" % (i, i % 100)
        if i % 3 == 1:
            return b"read %d, requested %d\n" % (i, i + 1)
        return b"Changing baud rate to %d\n" % (115200 + i)

    _write_lines(path, lines * 30, line)


def write_long_lines(path: Path, size: int) -> None:
    samples = Path(__file__).resolve().parent.parent / "samples"
    texts = sorted({line for p in samples.glob("*.log") for line in p.read_bytes().splitlines() if line.strip()})
    _write_lines(path, size, lambda i: b"%s %d %s\n" % (texts[i % len(texts)], i, b"y" * (4000 - len(texts[i % len(texts)]))))


def _tree_rss_kb(root: int, alone: bool = False) -> int:
    """RSS of ``root`` and all its descendants (or of ``root`` ``alone``), in KiB (0 if /proc cannot tell)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # ppid
        rss[pid] = int(fields[21]) * (resource.getpagesize() // 1024)  # rss in pages
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        if not alone:
            todo.extend(children.get(pid, ()))
    return total


def measure(argv: list[str]) -> tuple[float, int, float]:
    """Run ``argv``; return (wall seconds, exit code, peak RSS of its process tree in MB).

    It runs under a small fresh wrapper (``bench/_run.py --child``), whose own memory is not counted:
    a child's ``ru_maxrss`` includes what the process that forked it held at the fork, and this
    script may just have held big write buffers.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        wrapper = subprocess.Popen([sys.executable, str(RUN), "--child", *argv], stdout=subprocess.PIPE, stderr=err)
        peak = 0
        have_proc = os.path.isdir("/proc/self")
        while wrapper.poll() is None:
            if have_proc:
                peak = max(peak, _tree_rss_kb(wrapper.pid) - _tree_rss_kb(wrapper.pid, alone=True))
            time.sleep(0.01)
        assert wrapper.stdout is not None
        code_s, rss_s = wrapper.stdout.read().decode().split()
        wall = time.perf_counter() - start
        err.seek(0)
        errors = err.read().decode("utf-8", "replace").strip()
    code = int(code_s)
    if code not in (0, 1) and errors:
        print(f"  stderr: {errors.splitlines()[-1]}")
    # the largest single process (exact, even between two samples): cat, or espdiag itself
    return wall, code, max(peak, int(rss_s)) / 1024


def main() -> int:
    args = sys.argv[1:]
    size_mb = float(args.pop(0)) if args and args[0].replace(".", "").isdigit() else 300.0
    size = int(size_mb * 1_000_000)
    shapes: dict[str, tuple[Callable[[Path], object], list[str]]] = {
        "retry-loop": (lambda p: write_log(p, size), []),
        "stamped-progress": (lambda p: write_stamped_progress(p, size), []),
        "distinct-lines": (lambda p: write_distinct_lines(p, 1_000_000), []),
        "distinct-events": (lambda p: write_distinct_events(p, 1_000_000), []),
        "long-lines": (lambda p: write_long_lines(p, 60_000_000), []),
        "run-retry-loop": (lambda p: write_log(p, size), ["run", "--"]),
        "run-stamped-progress": (lambda p: write_stamped_progress(p, size), ["run", "--"]),
    }
    wanted = args or list(shapes)
    print(f"machine: {machine()}")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="espdiag-bench-") as tmp:
        path = Path(tmp) / "big.log"
        for label in wanted:
            make, prefix = shapes[label]
            make(path)
            mb = path.stat().st_size / 1e6
            if prefix:
                argv = [*ESPDIAG, *prefix[:-1], "--format", "json", "--", "cat", str(path)]
            else:
                argv = [*ESPDIAG, "--format", "json", str(path)]
            wall, code, peak = measure(argv)
            worst = max(worst, peak)
            verdict = "ok" if peak <= LIMIT_MB else f"OVER {LIMIT_MB:.0f} MB"
            print(f"{label}: {mb:.0f} MB in {wall:.1f} s, exit {code}, peak RSS (process tree) {peak:.1f} MB ({verdict})",
                  flush=True)
            path.unlink()
    print(f"worst: {worst:.1f} MB (limit {LIMIT_MB:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Throughput: ``espdiag --format json`` on a big realistic log vs a plain Python line loop.

Generates the log (a retry loop of esptool.py and esptool-ck attempts, bench/biglog.py) into a temp
file, times a plain ``for line in f`` loop over it and espdiag (a child process, start-up included),
each the best of five interleaved runs, prints both speeds and the ratio, and removes the file.

    python bench/throughput.py [SIZE_MB=200]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import ESPDIAG, machine, run_child
from biglog import write_log

RUNS = 5  # each side is timed this many times and its best run is compared


def plain_loop(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    n = 0
    with open(path, "rb") as f:
        for _line in f:
            n += 1
    return time.perf_counter() - start, n


def main() -> int:
    size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 200.0
    argv = [*ESPDIAG, "--format", "json"]
    with tempfile.TemporaryDirectory(prefix="espdiag-bench-") as tmp:
        path = Path(tmp) / "big.log"
        write_log(path, int(size_mb * 1_000_000))
        mb = path.stat().st_size / 1e6
        # interleaved rounds, so that a slow spell of a shared machine hits both sides alike
        plains: list[float] = []
        runs: list[tuple[float, int, int]] = []
        for _ in range(RUNS):
            plain, lines = plain_loop(path)
            plains.append(plain)
            runs.append(run_child([*argv, str(path)]))
    plain = min(plains)
    wall, code, rss = min(runs)
    print(f"machine: {machine()}")
    print(f"log: {mb:.0f} MB, {lines} lines; best of {RUNS} interleaved rounds")
    print(f"plain python line loop: {plain:.2f} s  ({mb / plain:.0f} MB/s)   runs: {_list(plains)}")
    print(f"espdiag --format json:  {wall:.2f} s  ({mb / wall:.0f} MB/s), exit {code}, max RSS {rss / 1024:.1f} MB"
          f"   runs: {_list(r[0] for r in runs)}")
    print(f"ratio (espdiag speed / plain loop speed): {plain / wall:.1%}  (target >= 30%)")
    return 0


def _list(values: Iterable[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())

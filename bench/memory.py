#!/usr/bin/env python3
"""Memory: espdiag's peak RSS on a 1 GB log must stay under 80 MB (the input is streamed).

Writes a realistic 1 GB log (bench/biglog.py) to a temp file in a streaming way, runs
``espdiag --format json`` on it as a child process, prints the child's max RSS (getrusage of
RUSAGE_CHILDREN) and removes the file. Also measures a log of all-distinct lines (timestamps), the
worst case for the per-line caches (100 MB of it: each of its lines is parsed).

    python bench/memory.py [SIZE_MB=1000]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import ESPDIAG, machine, run_child
from biglog import write_log


def write_distinct(path: Path, size: int) -> None:
    with open(path, "wb", buffering=1 << 20) as f:
        done = n = 0
        while done < size:
            block = b"".join(
                b"%02d:%02d:%02d.%03d -> Hello from the sketch, loop %d, heap %d\n"
                % ((i // 3600000) % 24, (i // 60000) % 60, (i // 1000) % 60, i % 1000, i, 40000 - i % 977)
                for i in range(n, n + 10000)
            )
            n += 10000
            f.write(block)
            done += len(block)


def main() -> int:
    size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 1000.0
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="espdiag-bench-") as tmp:
        path = Path(tmp) / "big.log"
        # every distinct line is parsed, so the all-distinct case is kept to 100 MB to stay quick
        cases = (("retry-loop log", write_log, size_mb), ("all-distinct lines", write_distinct, min(size_mb, 100.0)))
        for label, make, mb_wanted in cases:
            make(path, int(mb_wanted * 1_000_000))
            mb = path.stat().st_size / 1e6
            wall, code, rss = run_child([*ESPDIAG, "--format", "json", str(path)])
            verdict = "ok" if rss / 1024 <= 80 else "OVER 80 MB"
            print(f"{label}: {mb:.0f} MB in {wall:.1f} s, exit {code}, max RSS {rss / 1024:.1f} MB ({verdict})")
            path.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Start-up: ``espdiag --format json`` on a small sample, end to end, against ``import lark, yaml``.

Prints the median wall time of N runs of each (targets: espdiag <= 150 ms and <= 2.5x the import
baseline) and checks that the json path does not import rich (``python -X importtime``). The first
run warms the lark table cache and the compiled-rules cache and is not counted.

    python bench/startup.py [N=15] [SAMPLE=samples/esptool4-success.log]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _run import ESPDIAG, ROOT, machine


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    sample = sys.argv[2] if len(sys.argv) > 2 else str(ROOT / "samples" / "esptool4-success.log")
    espdiag = [*ESPDIAG, "--format", "json", sample]
    baseline = [sys.executable, "-c", "import lark, yaml"]
    wall(espdiag)  # warm the caches
    ours, base = [], []
    for _ in range(n):  # interleaved, so both see the same machine load
        ours.append(wall(espdiag))
        base.append(wall(baseline))
    m_ours, m_base = statistics.median(ours), statistics.median(base)
    trace = subprocess.run([sys.executable, "-X", "importtime", *ESPDIAG[1:], "--format", "json", sample],
                           capture_output=True, text=True, check=False).stderr
    rich = [line for line in trace.splitlines() if line.rstrip().endswith(("| rich", "| rich.console"))]
    print(f"machine: {machine()}")
    print(f"espdiag --format json {Path(sample).name}: median {m_ours * 1000:.0f} ms over {n} runs (target <= 150 ms)")
    print(f"python -c 'import lark, yaml':        median {m_base * 1000:.0f} ms")
    print(f"ratio: {m_ours / m_base:.2f}x (target <= 2.5x)")
    print(f"rich imported on the json path: {'YES' if rich else 'no'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

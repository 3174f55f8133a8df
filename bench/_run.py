"""Helpers shared by the benchmark scripts: run espdiag as a child process and measure it."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ESPDIAG = [sys.executable, "-m", "espdiag"]


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, {cpu}, Python {platform.python_version()} ({platform.system()})"


def run_child(
    argv: list[str], stdout: int | None = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> tuple[float, int, int]:
    """Run a child to completion; return (wall seconds, exit code, its max RSS in KiB).

    ``ru_maxrss`` of RUSAGE_CHILDREN is the largest of all children waited for so far, so each
    measurement runs in a fresh grandchild (this script re-invoked with ``--child``).
    """
    start = time.perf_counter()
    wrapped = [sys.executable, __file__, "--child", *argv]
    out = subprocess.run(wrapped, stdout=subprocess.PIPE, check=False, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    code_s, rss_s = out.stdout.decode().split()
    return wall, int(code_s), int(rss_s)


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    proc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, check=False)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(proc.returncode, rss)

"""Load test of `espdiag serve` on loopback: CLIENTS concurrent clients send REQUESTS diagnoses.

usage: python bench/load.py [REQUESTS=1000] [CLIENTS=20] [--threads N]

Starts `espdiag serve` (waitress) as a child process on a free port, posts the sample logs round
robin to POST /api/v1/diagnose, and prints requests/s, latency percentiles and any non-200 answers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _run import ESPDIAG, ROOT, machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("espdiag serve did not start")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("requests", nargs="?", type=int, default=1000)
    ap.add_argument("clients", nargs="?", type=int, default=20)
    ap.add_argument("--threads", type=int, default=4, help="waitress worker threads")
    a = ap.parse_args()
    logs = [p.read_bytes() for p in sorted((ROOT / "samples").glob("*.log"))]
    port = free_port()
    server = subprocess.Popen([*ESPDIAG, "serve", "--port", str(port), "--threads", str(a.threads)],
                              stderr=subprocess.DEVNULL, env={**os.environ})
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    counter = iter(range(a.requests))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in counter:
            body = logs[i % len(logs)]
            start = time.perf_counter()
            conn.request("POST", "/api/v1/diagnose", body, {"Content-Type": "text/plain"})
            resp = conn.getresponse()
            resp.read()
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                if resp.status != 200:
                    failures.append(resp.status)

    try:
        wait_ready(port)
        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(timeout=10)
    q = statistics.quantiles(latencies, n=100)
    print(f"machine: {machine()}")
    print(f"espdiag serve (waitress, {a.threads} threads): {a.clients} clients, {len(latencies)} requests "
          f"of {len(logs)} sample logs ({sum(map(len, logs)) // len(logs)} bytes on average)")
    print(f"  answered {len(latencies) - len(failures)}/{a.requests} with 200; others: {sorted(set(failures)) or 'none'}")
    print(f"  {len(latencies) / wall:.1f} requests/s; latency p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms")
    return 0 if not failures and len(latencies) == a.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())

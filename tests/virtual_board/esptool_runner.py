"""Run the real ``esptool`` with pyserial's RFC 2217 client polling faster.

Usage: ``python esptool_runner.py <esptool arguments...>`` with the wanted
esptool version importable (e.g. ``PYTHONPATH=.esptool-versions/4.8.1``).

Why: pyserial's RFC 2217 client waits for every server acknowledgement by
polling in ``time.sleep(0.05)`` steps, and esptool changes the port timeout
around every command, which re-sends the four port settings.  Each esptool
command then costs about 0.2 s, so a 64 kB write would take a minute.

The only change made here is that ``serial.rfc2217`` sleeps at most 2 ms per
poll.  esptool's own code, messages and exit codes are untouched; the run is
``runpy`` of the ``esptool`` module exactly as ``python -m esptool`` does.
"""

from __future__ import annotations

import runpy
import sys
import time as _time

MAX_POLL = 0.002


class _FastPollTime:
    """Stand-in for the ``time`` module inside ``serial.rfc2217`` only."""

    def __getattr__(self, name: str) -> object:
        return getattr(_time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        _time.sleep(min(seconds, MAX_POLL))


def _patch_pyserial_rfc2217() -> None:
    try:
        import serial.rfc2217 as rfc2217
    except ImportError:  # pragma: no cover - esptool would fail on its own anyway
        return
    rfc2217.time = _FastPollTime()  # type: ignore[assignment,unused-ignore]


def main() -> None:
    _patch_pyserial_rfc2217()
    sys.argv = ["esptool", *sys.argv[1:]]
    runpy.run_module("esptool", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

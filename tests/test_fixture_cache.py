"""The virtual board's esptool logs are kept per esptool version and board source, and reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from virtual_board import fixtures
from virtual_board.harness import CompletedLog


def test_a_kept_log_is_reused_and_a_board_change_makes_a_new_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixtures, "esptool_dir", lambda version: tmp_path / version)
    monkeypatch.delenv("ESPDIAG_FRESH_ESPTOOL_LOGS", raising=False)
    runs: list[tuple[str, str]] = []

    def fake_run(version: str, fault: str, chip: str, *, no_stub: bool, timeout: float) -> CompletedLog:
        runs.append((version, fault))
        return CompletedLog(2, f"out {len(runs)}", ["esptool"], "esptool.py write_flash", version, fault, chip, 0.1)

    monkeypatch.setattr(fixtures, "run_write_flash", fake_run)
    key = ("9.9.9", "garbage", "esp32", False)
    first = fixtures._run_key(key)
    again = fixtures._run_key(key)
    assert runs == [("9.9.9", "garbage")]
    assert again == first
    monkeypatch.setenv("ESPDIAG_FRESH_ESPTOOL_LOGS", "1")
    fixtures._run_key(key)
    assert len(runs) == 2
    monkeypatch.delenv("ESPDIAG_FRESH_ESPTOOL_LOGS")
    monkeypatch.setattr(fixtures, "_board_digest", lambda: "another-board")
    fixtures._run_key(key)
    assert len(runs) == 3

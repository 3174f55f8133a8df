"""pytest fixtures for running the real esptool against the virtual board.

Registered for every test file by ``tests/conftest.py`` (``pytest_plugins``), so
any test can ask for them::

    @pytest.mark.parametrize(("version", "fault", "chip"), [("4.8.1", "normal-boot", "esp32")])
    def test_diagnosis(esptool_log, version, fault, chip):
        log = esptool_log(version, fault, chip)
        ...

``esptool_log`` runs, on first use and concurrently, every esptool run that the
collected tests will ask for (found from their ``version``/``fault``/``chip``/
``no_stub`` parameters, across all test files), and caches the logs for the
session, so several test files share one run per (version, fault, chip, no_stub).

Each run's log is also kept on disk, in ``.esptool-versions/<version>/logs/<digest>/``, where the
digest covers the virtual board's source: a later session reuses it instead of running esptool
again, and any change to the board makes new logs (``ESPDIAG_FRESH_ESPTOOL_LOGS=1`` ignores the
kept ones).

esptool versions live in ``.esptool-versions/<version>``; missing ones are
pip-installed once per session (set ``ESPDIAG_NO_ESPTOOL_INSTALL=1`` to only
use what is there); a version that is unavailable makes its tests skip.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import (
    PINNED_VERSIONS,
    CompletedLog,
    HostFaultUnavailable,
    ensure_esptool,
    esptool_dir,
    is_installed,
    run_write_flash,
)

LogFactory = Callable[..., CompletedLog]
Key = tuple[str, str, str, bool]


@pytest.fixture(scope="session")
def esptool_versions() -> dict[str, str | None]:
    """version -> None if usable, else the reason it is not."""
    state: dict[str, str | None] = {}
    for v in PINNED_VERSIONS:
        if is_installed(v):
            state[v] = None
        elif os.environ.get("ESPDIAG_NO_ESPTOOL_INSTALL"):
            state[v] = f"esptool {v} not installed (run tests/virtual_board/install_esptools.sh)"
        else:
            try:
                ensure_esptool(v)
                state[v] = None
            except Exception as e:  # pragma: no cover - offline machines
                state[v] = f"esptool {v} could not be installed: {e}"
    return state


@functools.cache
def _board_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _kept_path(key: Key) -> Path:
    version, fault, chip, no_stub = key
    return esptool_dir(version) / "logs" / _board_digest() / f"{fault}-{chip}-{int(no_stub)}.json"


def _kept(key: Key) -> CompletedLog | None:
    if os.environ.get("ESPDIAG_FRESH_ESPTOOL_LOGS"):
        return None
    try:
        return CompletedLog(**json.loads(_kept_path(key).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _keep(key: Key, log: CompletedLog) -> None:
    path = _kept_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(log), f)
        os.replace(tmp, path)
    except OSError:
        pass


def _run_key(key: Key) -> CompletedLog | str:
    kept = _kept(key)
    if kept is not None:
        return kept
    version, fault, chip, no_stub = key
    try:
        log = run_write_flash(version, fault, chip, no_stub=no_stub, timeout=120)
    except HostFaultUnavailable as e:
        return str(e)  # depends on this host: never kept
    if not log.timed_out:
        _keep(key, log)
    return log


def _collected_keys(session: pytest.Session) -> set[Key]:
    """The (version, fault, chip, no_stub) runs the collected tests will ask for."""
    keys: set[Key] = set()
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "esptool_log" in getattr(item, "fixturenames", ()) and {"version", "chip"} <= params.keys():
            keys.add((params["version"], params.get("fault", "none"), params["chip"], params.get("no_stub", False)))
    return keys


@pytest.fixture(scope="session")
def esptool_log(request: pytest.FixtureRequest, esptool_versions: dict[str, str | None]) -> LogFactory:
    """``esptool_log(version, fault, chip, no_stub=False)`` -> cached :class:`CompletedLog`.

    On first use it runs, concurrently (``ESPDIAG_ESPTOOL_JOBS``, default 4;
    the runs mostly wait on timeouts), every run the collected tests need.
    Skips the calling test if the version is unavailable or the host fault
    cannot be staged on this machine.
    """
    cache: dict[Key, CompletedLog | str] = {}
    wanted = {k for k in _collected_keys(request.session) if not esptool_versions.get(k[0], "?")}
    jobs = max(1, int(os.environ.get("ESPDIAG_ESPTOOL_JOBS", "4")))
    if len(wanted) > 1 and jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for key, result in zip(wanted, pool.map(_run_key, wanted), strict=True):
                cache[key] = result

    def get(version: str, fault: str, chip: str, no_stub: bool = False) -> CompletedLog:
        reason = esptool_versions.get(version, f"esptool {version} is not a pinned version")
        if reason:
            pytest.skip(reason)
        key = (version, fault, chip, no_stub)
        if key not in cache:
            cache[key] = _run_key(key)
        got = cache[key]
        if isinstance(got, str):
            pytest.skip(f"{fault} cannot be staged here: {got}")
        return got

    return get

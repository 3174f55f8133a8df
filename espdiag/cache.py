"""A private on-disk cache for start-up data (parsed rule files, the grammar's parser tables).

The cache is an optimisation that must never become a way in: other users may be able to write the
folder (a shared ``ESPDIAG_CACHE_DIR`` in CI, root running with a user's ``HOME``), so

* entries are JSON, decoded into plain data that the caller validates: nothing in them can run code;
* the folder is used only when it is a real directory owned by the current user and not writable by
  group or others, and a file only when it is a regular file with the same owner and mode, opened
  without following a symlink, and under a size cap;
* writes go to a temporary file in the folder and are renamed into place, so a concurrent run never
  reads half a file; temporary files left by killed runs are removed after an hour.

Folder: ``$ESPDIAG_CACHE_DIR``, else ``$XDG_CACHE_HOME/espdiag``, else ``~/.cache/espdiag``;
``ESPDIAG_NO_CACHE=1`` turns the cache off. Any doubt about the folder or a file means a miss.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

MAX_ENTRY_BYTES = 8 * 1024 * 1024
_STALE_TEMP_SECONDS = 3600
_TEMP_PREFIX = ".tmp-"


def cache_dir() -> Path | None:
    if os.environ.get("ESPDIAG_NO_CACHE"):
        return None
    explicit = os.environ.get("ESPDIAG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "espdiag"
    if "HOME" not in os.environ and os.name != "nt":
        return None
    return Path.home() / ".cache" / "espdiag"


def _trusted(st: os.stat_result) -> bool:
    """Owned by us and writable by nobody else (POSIX); Windows folders are per-user by ACL instead."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return True
    return st.st_uid == getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _usable_dir(create: bool) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        st = os.lstat(folder)
    except OSError:
        return None
    return folder if stat.S_ISDIR(st.st_mode) and _trusted(st) else None


def read_json(name: str) -> Any | None:
    """The decoded entry ``name``, or None when it is missing, untrusted, too big or not JSON."""
    folder = _usable_dir(create=False)
    if folder is None:
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(folder / name, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or not _trusted(st) or st.st_size > MAX_ENTRY_BYTES:
                return None
            raw = f.read(MAX_ENTRY_BYTES + 1)
        except OSError:
            return None
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def write_json(name: str, value: Any) -> None:
    """Store ``value`` as the entry ``name``; failures are silent (the cache is only an optimisation)."""
    folder = _usable_dir(create=True)
    if folder is None:
        return
    try:
        data = json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError):
        return
    if len(data) > MAX_ENTRY_BYTES:
        return
    _remove_stale_temps(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=_TEMP_PREFIX, suffix=".json")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, folder / name)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _remove_stale_temps(folder: Path) -> None:
    cutoff = time.time() - _STALE_TEMP_SECONDS
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not entry.name.startswith((_TEMP_PREFIX, ".rules-", "rules-")):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                # rules-*.pickle are an older espdiag's cache: never read, always removed
                if entry.name.endswith(".pickle") or st.st_mtime < cutoff:
                    os.unlink(entry.path)

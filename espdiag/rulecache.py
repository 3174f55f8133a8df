"""A cache of compiled rules, so start-up does not parse ~55 YAML files with a line-tracking loader.

The compiled ``RuleSet`` is pickled under the user cache directory (``$ESPDIAG_CACHE_DIR``, else
``$XDG_CACHE_HOME/espdiag``, else ``~/.cache/espdiag``), keyed by espdiag's version and by the path,
size and modification time of every rule file and of the modules that compile them. Anything odd
(no cache directory, a stale, foreign or corrupt file) falls back to loading the YAML; rule files
with errors are never cached, so their ``file:line:`` errors are reported every time.
``ESPDIAG_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from espdiag import __version__
from espdiag.rules import RuleSet, builtin_rules_dir
from espdiag.rules import load_rules as _load_yaml

_FORMAT = 1


def cache_dir() -> Path | None:
    explicit = os.environ.get("ESPDIAG_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return Path(base) / "espdiag"
    home = Path.home() if "HOME" in os.environ or os.name == "nt" else None
    return home / ".cache" / "espdiag" if home else None


def _key(dirs: Sequence[Path]) -> str | None:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256(f"{_FORMAT} {__version__}".encode())
    try:
        for module in ("rules.py", "events.py", "rulecache.py"):
            st = (here / module).stat()
            h.update(f"{module} {st.st_mtime_ns} {st.st_size}\n".encode())
        for d in dirs:
            h.update(f"dir {d.resolve()}\n".encode())
            if not d.is_dir():
                return None  # let the loader report it
            for path in sorted(d.rglob("*.yaml")) + sorted(d.rglob("*.yml")):
                st = path.stat()
                h.update(f"{path} {st.st_mtime_ns} {st.st_size}\n".encode())
    except OSError:
        return None
    return h.hexdigest()[:32]


def load_rules(extra_dirs: Iterable[Path] = (), builtin: bool = True) -> RuleSet:
    """``rules.load_rules`` with a cache of its result; same arguments, same errors."""
    extra = list(extra_dirs)
    folder = None if os.environ.get("ESPDIAG_NO_CACHE") else cache_dir()
    key = _key(([builtin_rules_dir()] if builtin else []) + extra) if folder else None
    if folder is None or key is None:
        return _load_yaml(extra, builtin)
    path = folder / f"rules-{key}.pickle"
    with contextlib.suppress(Exception):
        with open(path, "rb") as f:
            cached = pickle.load(f)
        if isinstance(cached, RuleSet):
            return cached
    ruleset = _load_yaml(extra, builtin)  # raises on any rule error: nothing is cached then
    with contextlib.suppress(OSError, pickle.PicklingError, TypeError, AttributeError):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in folder.glob("rules-*.pickle"):
            with contextlib.suppress(OSError):
                old.unlink()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".rules-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(ruleset, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # atomic: a concurrent run never reads half a file
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return ruleset

"""Remember the parsed YAML of rule files, so start-up does not run the line-tracking YAML loader.

That loader is pure Python and costs ~0.25 s for the built-in rules; compiling the parsed data into
rules takes ~10 ms and is always done afresh, so every check of the compiler runs on every start.
Entries are keyed by the SHA-256 of a file's text, so an edited file is a miss, and files used with
and without ``--rules`` share one store. Rule sets with any error are never stored, so their
``file:line:`` errors are reported every time. The store is JSON in espdiag's private cache folder
(``espdiag/cache.py`` says when that folder and file are trusted); nothing in it can run code.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from espdiag import __version__, cache
from espdiag.errors import RuleError
from espdiag.rules import RuleSet, parse_rule_text
from espdiag.rules import load_rules as _load_yaml
from espdiag.ruleyaml import LineDict, LineList

_FORMAT = 3
_NAME = "rule-data.json"
MAX_ENTRIES = 400  # the built-in rules are ~100 files: room for several users' rule folders


class _NotCacheable(Exception):
    pass


def _encode(obj: Any) -> Any:
    """Tagged JSON: a mapping is {"l": line, "m": [[key, key line, key column, value]...]}, a list
    {"l": line, "a": [[item line, value]...]}; scalars stay themselves."""
    if isinstance(obj, LineDict):
        cols = getattr(obj, "key_cols", {})
        return {"l": obj.line, "m": [[k, obj.key_lines.get(k, obj.line), cols.get(k, 0), _encode(v)] for k, v in obj.items()]}
    if isinstance(obj, LineList):
        lines = getattr(obj, "item_lines", [obj.line] * len(obj))
        return {"l": obj.line, "a": [[line, _encode(v)] for line, v in zip(lines, obj, strict=True)]}
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise _NotCacheable  # anything else (a plain list, a YAML date): parse such a file every time


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "a" in obj:
            items = LineList(_decode(v) for _line, v in obj["a"])
            items.line = int(obj["l"])
            items.item_lines = [int(line) for line, _v in obj["a"]]
            return items
        out = LineDict()
        out.line = int(obj["l"])
        out.key_lines, out.key_cols = {}, {}
        for key, line, col, value in obj["m"]:
            out[str(key)] = _decode(value)
            out.key_lines[str(key)] = int(line)
            out.key_cols[str(key)] = int(col)
        return out
    if isinstance(obj, list):
        raise ValueError("untagged list")
    return obj


def _fingerprint() -> str:
    # the YAML-to-data step lives in ruleyaml.py: a changed loader must not be served old data
    try:
        st = (Path(__file__).resolve().parent / "ruleyaml.py").stat()
    except OSError:
        return ""
    return f"{_FORMAT} {__version__} {st.st_size} {st.st_mtime_ns}"


class _Store:
    def __init__(self) -> None:
        self.fingerprint = _fingerprint()
        stored = cache.read_json(_NAME)
        entries = stored.get("entries") if isinstance(stored, dict) and stored.get("fingerprint") == self.fingerprint else None
        self.old: dict[str, Any] = entries if isinstance(entries, dict) else {}
        self.used: dict[str, Any] = {}
        self.missed = False

    def parse(self, text: str, name: str) -> tuple[Any, list[RuleError]]:
        key = hashlib.sha256(text.encode()).hexdigest()
        if key in self.old:
            try:
                data = _decode(self.old[key])
            except (ValueError, TypeError, KeyError, RecursionError):
                data = None
            if data is not None:
                self.used[key] = self.old[key]
                return data, []
        data, errors = parse_rule_text(text, name)
        if not errors:
            self.missed = True
            with contextlib.suppress(_NotCacheable, RecursionError):
                self.used[key] = _encode(data)
        return data, errors

    def save(self) -> None:
        if not self.missed:
            return
        entries = dict(self.used)
        for key, value in self.old.items():  # keep other folders' entries, newest first, up to the cap
            if len(entries) >= MAX_ENTRIES:
                break
            entries.setdefault(key, value)
        cache.write_json(_NAME, {"fingerprint": self.fingerprint, "entries": entries})


def load_rules(extra_dirs: Iterable[Path] = (), builtin: bool = True) -> RuleSet:
    """``rules.load_rules`` with the parsed YAML remembered; same arguments, same errors."""
    if cache.cache_dir() is None:
        return _load_yaml(extra_dirs, builtin)
    store = _Store()
    ruleset = _load_yaml(extra_dirs, builtin, parse=store.parse)  # raises on any rule error: nothing is stored then
    store.save()
    return ruleset


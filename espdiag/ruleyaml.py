"""Read one rule file safely and turn its YAML into plain data that remembers lines and columns.

Rule files come from wherever ``--rules`` points, so they are treated as hostile input:

* only regular files of at most ``MAX_BYTES`` are read (a FIFO, a device or a symlink to
  ``/dev/zero`` is refused before it is opened for reading, so nothing hangs or reads for ever);
* YAML aliases (``*name``) are refused, so a small file cannot expand into gigabytes (billion laughs);
* nesting deeper than ``MAX_DEPTH`` and numbers longer than ``MAX_DIGITS`` are refused, so nothing
  recurses without bound or converts a huge number;
* only plain data is built (a SafeLoader: no object construction).

Every problem becomes a ``RuleError`` with the file, line and column. libyaml's parser is used when
PyYAML has it (ten times faster than the pure-Python one; it also limits flow nesting itself).
"""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from espdiag.errors import RuleError

if TYPE_CHECKING:  # yaml is imported only when rule files are really read
    import yaml

MAX_BYTES = 1_000_000  # the largest built-in rule is ~3 KB
MAX_DEPTH = 40  # nested mappings and lists; the built-in rules use 10
MAX_DIGITS = 40  # int("9" * 5000) raises ValueError on Python 3.11+, and is quadratic before
PREFER_LIBYAML = True  # tests turn it off to check the pure-Python parser too


class Refused(Exception):
    """Valid YAML that a rule file may not use (an alias, deep nesting, a huge number), at ``mark``."""

    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.message = message
        self.line, self.col = mark.line + 1, mark.column + 1


class LineDict(dict[str, Any]):
    """A YAML mapping with its own line and the line and column of each key."""

    line: int = 0
    key_lines: dict[str, int]
    key_cols: dict[str, int]


class LineList(list[Any]):
    """A YAML list with its own line and the line of each item."""

    line: int = 0
    item_lines: list[int]


def read_text(path: Path, name: str) -> tuple[str | None, list[RuleError]]:
    """The UTF-8 text of a regular rule file of at most ``MAX_BYTES``, or the reason it cannot be read."""
    try:
        st = path.stat()  # follows symlinks, opens nothing: a serial port is never touched
        if not stat.S_ISREG(st.st_mode):
            return None, [RuleError(name, 1, "not a regular file (a rule file must be a plain file)")]
        if st.st_size > MAX_BYTES:
            return None, [RuleError(name, 1, f"rule file larger than {MAX_BYTES} bytes")]
        # O_NONBLOCK: if the file was swapped for a FIFO since stat(), open() still returns at once
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None, [RuleError(name, 1, "not a regular file (a rule file must be a plain file)")]
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        return None, [RuleError(name, 1, f"cannot read rule file: {e.strerror or e}")]
    if len(raw) > MAX_BYTES:
        return None, [RuleError(name, 1, f"rule file larger than {MAX_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, [RuleError(name, raw[: e.start].count(b"\n") + 1, "rule file is not valid UTF-8")]
    if not text.strip():
        return None, [RuleError(name, 1, "rule file is empty")]
    return text, []


def parse(text: str, name: str) -> tuple[Any, list[RuleError]]:
    """The data of one YAML document (mappings are ``LineDict``), or the error that stops it."""
    import yaml

    loader = _loader(PREFER_LIBYAML)(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_tree(node)
        return (loader.construct_document(node) if node is not None else None), []
    except Refused as e:
        return None, [RuleError(name, e.line, e.message, e.col)]
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 0)
        return None, [RuleError(name, line, f"invalid YAML: {e.problem or e.context}", col)]
    except yaml.YAMLError as e:
        return None, [RuleError(name, 1, f"invalid YAML: {e}")]
    except RecursionError:  # only the pure-Python parser recurses, and only on thousands of '['
        return None, [RuleError(name, 1, f"nested more than {MAX_DEPTH} levels deep")]
    finally:
        loader.dispose()


def _check_tree(root: yaml.Node) -> None:
    """Refuse aliases and deep nesting before anything is built (iterative: no recursion to exhaust)."""
    import yaml

    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:  # the composer hands out the anchored node again for each *alias
            raise Refused("anchors and aliases (&name, *name) are not allowed in rule files", node.start_mark)
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            continue
        if depth > MAX_DEPTH:
            raise Refused(f"nested more than {MAX_DEPTH} levels deep", node.start_mark)
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else node.value
        stack.extend((child, depth + 1) for child in children)


@functools.cache
def _loader(prefer_libyaml: bool) -> type[Any]:
    import yaml

    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader) if prefer_libyaml else yaml.SafeLoader

    class _Loader(base):  # type: ignore[misc]
        """SafeLoader (no object construction) that remembers where each mapping and key came from."""

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, OverflowError, TypeError) as e:  # a bad date, a key that is a list, ...
                raise Refused(f"unreadable value: {e}", node.start_mark) from None

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    _Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    return _Loader


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    import yaml

    if len(node.value) > MAX_DIGITS:
        raise Refused(f"number longer than {MAX_DIGITS} digits", node.start_mark)
    value: int = yaml.SafeLoader.construct_yaml_int(loader, node)
    return value


def _construct_sequence(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [child.start_mark.line + 1 for child in node.value]
    return out


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    import yaml

    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    out.key_cols = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        if key in out:
            raise yaml.MarkedYAMLError("while constructing a mapping", node.start_mark,
                                       f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
        out.key_cols[key] = key_node.start_mark.column + 1
    return out

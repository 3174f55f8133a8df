"""Output formats (a registry) and writing to stdout safely on any console, pipe or full disk.

A new format is one module in ``espdiag/render/`` plus one line in ``RENDERERS``. Render modules
are imported only when their format is used, so ``--help`` and the other formats stay fast.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from espdiag.errors import EspdiagError
from espdiag.render.colour import use_colour

if TYPE_CHECKING:
    from espdiag.report import Report

# (reports, stream, verbose, colour) -> None: writes one whole document for the given reports
Renderer = Callable[["list[Report]", TextIO, bool, str], None]


def _document(module: str) -> Renderer:
    """A render module with ``render(reports) -> str`` (machine formats: verbosity and colour do not apply)."""

    def write(reports: list[Report], stream: TextIO, _verbose: bool, _colour: str) -> None:
        stream.write(importlib.import_module(f"espdiag.render.{module}").render(reports))

    return write


def _text(reports: list[Report], stream: TextIO, verbose: bool, _colour: str) -> None:
    from espdiag.render import text
    from espdiag.render.layout import terminal_width

    stream.write(text.render(reports, verbose, terminal_width(stream)))


def _rich(reports: list[Report], stream: TextIO, verbose: bool, colour: str) -> None:
    from espdiag.render import rich_out

    rich_out.write(reports, stream, verbose, colour)  # --color decides, not rich's own detection


RENDERERS: dict[str, Renderer] = {
    "rich": _rich,
    "text": _text,
    "json": _document("json_out"),
    "markdown": _document("markdown"),
    "github": _document("github"),
    "sarif": _document("sarif"),
}
# every --format value; "auto" picks rich on a terminal, text otherwise
FORMATS = ("auto", *RENDERERS)
# formats whose results point at a file and line: a log without a file is given no location
LOCATED = ("github", "sarif")


class OutputError(EspdiagError):
    """Standard output is closed or cannot be written (a full disk, ``>/dev/full``)."""


def prepare_stdout() -> TextIO:
    stream = sys.stdout
    if stream is None:  # started with stdout closed (espdiag FILE >&-)
        raise OutputError("standard output is closed; nothing can be written")
    # A Windows console may use a legacy code page; never die on a character it cannot show.
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="replace")
    return stream


def silence_stdout() -> None:
    """Point fd 1 at the null device, so the interpreter's last flush of pending output cannot fail."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


@contextlib.contextmanager
def writing_stdout() -> Iterator[TextIO]:
    """Yield stdout; a write that fails (other than a reader going away) becomes one ``OutputError``."""
    stream = prepare_stdout()
    try:
        yield stream
        stream.flush()
    except BrokenPipeError:
        raise  # the reader went away (espdiag big.log | head): main turns this into 141
    except OSError as e:
        if e.filename is not None or e.errno not in _WRITE_ERRORS:
            raise  # not a failure of standard output
        silence_stdout()
        raise OutputError(f"cannot write to standard output: {e.strerror or e}") from None


# errors of the stream itself; getattr: not every platform defines every name
_WRITE_ERRORS = {getattr(errno, name, -1) for name in ("ENOSPC", "EIO", "EBADF", "EFBIG", "EDQUOT", "EINVAL", "EROFS")}


def write_reports(reports: list[Report], fmt: str, colour: str, verbose: bool, stream: TextIO) -> None:
    if fmt == "auto":
        fmt = "rich" if use_colour(stream, colour) else "text"
    RENDERERS[fmt](reports, stream, verbose, colour)
    stream.flush()


def display_path(path: str) -> str:
    """A path relative to the working directory when it lies below it, else as given."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel

"""Error types and the exit-code contract (documented in README.md)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0  # success, or nothing wrong found
    FAILURE = 1  # an upload failure was diagnosed
    USAGE = 2  # bad command line, unreadable input, broken rule file
    CRASH = 3  # a bug in espdiag: please report it
    INTERRUPTED = 130  # Ctrl-C


class EspdiagError(Exception):
    """An error the user can cause and fix; printed as one line, exit code 2."""


class InputError(EspdiagError):
    pass


class RuleError(EspdiagError):
    """A problem in a rule file, located as ``path:line:col``."""

    def __init__(self, path: str, line: int, message: str, col: int = 0) -> None:
        self.path = path
        self.line = line
        self.col = col
        self.message = message
        where = f"{path}:{line}" + (f":{col}" if col else "")
        super().__init__(f"{where}: {message}")


class RuleErrors(EspdiagError):
    """Every problem found while loading rules; loading collects them all before failing."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

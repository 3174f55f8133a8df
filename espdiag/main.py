"""Command line: argument parsing and dispatch only. Every command returns an exit code.

Exit codes (a contract, see README.md): 0 success or nothing wrong found, 1 failure diagnosed,
2 usage/input/rule-file error, 3 internal error (a bug), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

from espdiag import __version__
from espdiag.errors import EspdiagError, ExitCode

SUBCOMMANDS = ("diagnose",)

EPILOG = """\
examples:
  esptool.py write_flash 0x0 fw.bin 2>&1 | espdiag
  espdiag upload.log
  espdiag --format json upload.log
  pbpaste | espdiag --format markdown

exit codes: 0 success or nothing wrong found, 1 upload failure diagnosed,
            2 usage, input or rule-file error, 3 internal error, 130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default=os.environ.get("ESPDIAG_FORMAT", "auto"),
                   choices=("auto", "rich", "text", "json"),
                   help="output format (default: rich on a terminal, text otherwise; env ESPDIAG_FORMAT)")
    p.add_argument("--color", "--colour", dest="colour", default="auto", choices=("auto", "always", "never"),
                   help="colour in the terminal report (NO_COLOR and FORCE_COLOR are honoured)")
    p.add_argument("--verbose", "-v", action="store_true", help="show every cause, not only the top five")


def _add_rules_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", action="append", default=[], metavar="DIR", type=Path,
                   help="load extra rule files (*.yaml) from DIR; repeatable")


def _diagnose_parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Explain why an ESP8266/ESP32 firmware upload failed: ranked causes, "
                "the log lines that show them, and the fix steps for your tool.",
                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE", help="upload log(s); '-' or nothing reads standard input")
    _add_output_options(p)
    _add_rules_option(p)
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when a failure is diagnosed")
    p.add_argument("--version", action="version", version=f"espdiag {__version__}")
    return p


@contextlib.contextmanager
def _error_handler() -> Iterator[list[int]]:
    code = [int(ExitCode.OK)]
    try:
        yield code
    except EspdiagError as e:
        print(f"espdiag: {e}", file=sys.stderr)
        code[0] = ExitCode.USAGE
    except KeyboardInterrupt:
        code[0] = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (espdiag big.log | head): stop quietly, as other tools do
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        code[0] = 141
    except Exception as e:
        print(f"espdiag: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        print("Please report this at the project's issue tracker with the details below.\n", file=sys.stderr)
        print(f"### version information\n\nespdiag {__version__}, Python {platform.python_version()}, "
              f"{platform.platform()}\n\n### error information\n\n```\n{traceback.format_exc()}```",
              file=sys.stderr)
        code[0] = ExitCode.CRASH


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    with _error_handler() as code:
        code[0] = _dispatch(args_list)
    return code[0]


def _dispatch(argv: list[str]) -> int:
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if command == "diagnose":
        argv = argv[1:]
    args = _diagnose_parser("espdiag").parse_args(argv)
    from espdiag.commands.diagnose import diagnose
    from espdiag.rules import load_rules

    rules = load_rules(args.rules)
    return diagnose(args.files, rules, args.format, args.colour, args.verbose, args.exit_zero)


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: argument parsing and dispatch only. Every command returns an exit code.

Exit codes (a contract, see README.md): 0 success or nothing wrong found, 1 failure diagnosed,
2 usage/input/rule-file error, 3 internal error (a bug), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from espdiag import __version__
from espdiag.errors import EspdiagError, ExitCode
from espdiag.render import FORMATS

if TYPE_CHECKING:
    from espdiag.rules import RuleSet

SUBCOMMANDS = ("diagnose", "check", "events", "rules", "explain", "run", "probe")

EPILOG = """\
examples:
  esptool.py write_flash 0x0 fw.bin 2>&1 | espdiag
  espdiag upload.log
  espdiag --format json upload.log
  pbpaste | espdiag --format markdown
  espdiag check --format github logs/*.log
  espdiag events upload.log | grep -v '"other"'
  espdiag rules --test my-rules/
  espdiag explain boot-mode
  espdiag run -- esptool.py write_flash 0x0 fw.bin
  esptool.py write_flash 0x0 fw.bin 2>&1 | espdiag --passthrough

commands: diagnose (the default), check, events, rules, explain, run, probe; 'espdiag COMMAND --help' for each

exit codes: 0 success or nothing wrong found, 1 upload failure diagnosed,
            2 usage, input or rule-file error, 3 internal error, 130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default=os.environ.get("ESPDIAG_FORMAT", "auto"),
                   choices=FORMATS,
                   help="output format (default: rich on a terminal, text otherwise; env ESPDIAG_FORMAT); "
                   "markdown: a forum reply, github: Actions annotations, sarif: code scanning")
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
    p.add_argument("--passthrough", action="store_true",
                   help="copy standard input to stdout as it arrives, then append the diagnosis")
    p.add_argument("--version", action="version", version=f"espdiag {__version__}")
    return p


_DEPENDENCIES = {"lark", "yaml", "rich"}


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
        if isinstance(e, ModuleNotFoundError) and e.name in _DEPENDENCIES:
            # running from a source checkout without installing: a setup step, not a bug
            print(f"espdiag: the package {e.name!r} is missing; install espdiag with "
                  f"'python3 -m pip install .' (or 'pip install {e.name}')", file=sys.stderr)
            code[0] = ExitCode.USAGE
            return
        print(f"espdiag: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        print("Please report this at the project's issue tracker with the details below.\n", file=sys.stderr)
        import platform  # only for a crash report: it costs start-up time

        print(f"### version information\n\nespdiag {__version__}, Python {platform.python_version()}, "
              f"{platform.platform()}\n\n### error information\n\n```\n{traceback.format_exc()}```",
              file=sys.stderr)
        code[0] = ExitCode.CRASH


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    with _error_handler() as code:
        code[0] = _dispatch(args_list)
    return code[0]


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in 0..1")
    return value


def _check_parser() -> argparse.ArgumentParser:
    from espdiag.commands.check import DEFAULT_FAIL_ON
    from espdiag.commands.check import FORMATS as CHECK_FORMATS

    p = _Parser(prog="espdiag check", description="Non-interactive check for CI and pre-commit: one line per "
                "file ('path: verdict top-cause (confidence)'). Exit 1 if any upload failed (explained or "
                "not), or if a log that did not fail shows a cause at or above --fail-on; 2 if a file "
                "cannot be read.")
    p.add_argument("files", nargs="+", metavar="FILE", help="upload log(s); '-' reads standard input")
    p.add_argument("--format", "-f", default="line", choices=CHECK_FORMATS,
                   help="line (default): one line per file; github: Actions annotations, then the lines; "
                   "or any report format")
    p.add_argument("--fail-on", type=_fraction, default=DEFAULT_FAIL_ON, metavar="CONFIDENCE",
                   help=f"confidence (0..1) from which a cause counts (default {DEFAULT_FAIL_ON})")
    _add_rules_option(p)
    return p


def _events_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="espdiag events", description="Print the parsed event stream as JSON Lines: "
                '{"kind", "line", "text", "fields"} per logical line, in input order.')
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="upload log; '-' or nothing reads stdin")
    p.add_argument("--kind", action="append", default=[], metavar="KIND", help="only events of KIND (repeatable)")
    return p


def _rules_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="espdiag rules", description="List the rules (id, cause, title, file), or with --test run "
                "their inline examples like a test runner (exit 1 if one fails, 2 if a rule file is broken).")
    p.add_argument("--test", action="store_true",
                   help="run the examples: of the rules (built-in and --rules DIR, or only the given PATHs)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="with --test: rule directories or files to test instead of the loaded rules")
    p.add_argument("--verbose", "-v", action="store_true", help="with --test: list passing examples too")
    _add_rules_option(p)
    return p


def _explain_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="espdiag explain", description="Explain a rule or a cause: what it means, which log "
                "lines trigger it, the fixes and the docs.")
    p.add_argument("id", metavar="RULE-OR-CAUSE", help="a rule id or a cause id (see 'espdiag rules')")
    _add_rules_option(p)
    return p


def load_rules(dirs: Sequence[Path]) -> RuleSet:
    from espdiag.rulecache import load_rules as load  # after argument parsing: --help and --version stay instant

    return load(dirs)


def _dispatch(argv: list[str]) -> int:
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "diagnose"
    if argv and argv[0] in SUBCOMMANDS:
        argv = argv[1:]

    if command == "check":
        from espdiag.commands.check import check

        a = _check_parser().parse_args(argv)
        return check(a.files, load_rules(a.rules), a.format, a.fail_on)
    if command == "events":
        from espdiag.commands.events import events

        a = _events_parser().parse_args(argv)
        return events(a.file, frozenset(a.kind))
    if command == "rules":
        from espdiag.commands.rules import rules_command

        a = _rules_parser().parse_args(argv)
        return rules_command(load_rules(a.rules), a.test, a.paths, a.verbose)
    if command == "run":
        from espdiag.commands.run import run_main

        return run_main(argv)
    if command == "probe":
        from espdiag.commands.probe import probe_main

        return probe_main(argv, load_rules)
    if command == "explain":
        from espdiag.commands.explain import explain

        a = _explain_parser().parse_args(argv)
        return explain(load_rules(a.rules), a.id)
    args = _diagnose_parser("espdiag").parse_args(argv)
    from espdiag.commands.diagnose import diagnose

    rules = load_rules(args.rules)
    if args.passthrough:
        from espdiag.commands.run import passthrough

        return passthrough(args.files, rules, args.format, args.colour, args.verbose, args.exit_zero)
    return diagnose(args.files, rules, args.format, args.colour, args.verbose, args.exit_zero)


if __name__ == "__main__":
    raise SystemExit(main())

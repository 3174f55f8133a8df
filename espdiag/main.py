"""Command line: every argument parser and the dispatch; each command returns an exit code.

Only this module knows argparse: the commands in ``espdiag/commands/`` take plain typed arguments
and do not import this module or each other. Rules are loaded in one place, ``_load_rules``, after
the arguments are parsed (``--help`` and ``--version`` stay instant).

Exit codes (a contract, see README.md): 0 success or nothing wrong found, 1 failure diagnosed (or
a log that stops inside an upload attempt), 2 usage/input/rule-file error or an unwritable
stdout, 3 internal error (a bug), 130 interrupted, 141 the reader of the output went away.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from espdiag import __version__
from espdiag.errors import EspdiagError, ExitCode
from espdiag.output import FORMATS, prepare_stdout, silence_stdout

if TYPE_CHECKING:
    from espdiag.rules import RuleSet

WIDTH = 79  # help text never goes past column 80
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away

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

commands: diagnose (the default), check, events, rules, explain, run, serve,
          probe; 'espdiag COMMAND --help' for each

exit codes: 0 success or nothing wrong found
            1 upload failure diagnosed, or the log stops inside an upload
              attempt (pipe with 2>&1)
            2 usage, input or rule-file error, or stdout cannot be written
            3 internal error, 130 interrupted, 141 the output's reader went away
"""


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (they are wrapped here), option help within 80 columns."""

    def __init__(self, prog: str) -> None:
        columns = shutil.get_terminal_size().columns
        super().__init__(prog, width=max(40, min(columns, WIDTH + 1) - 2))


class _Parser(argparse.ArgumentParser):
    def __init__(self, prog: str, description: str, **kwargs: object) -> None:
        super().__init__(prog=prog, description=_wrap(description), formatter_class=_Formatter,
                         **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default=os.environ.get("ESPDIAG_FORMAT") or "auto", choices=FORMATS,
                   metavar="FORMAT", help=f"{', '.join(FORMATS)} (default: rich on a terminal, text otherwise; "
                   "env ESPDIAG_FORMAT); markdown: a forum reply, github: Actions annotations, sarif: code scanning")
    p.add_argument("--color", "--colour", dest="colour", default="auto", choices=("auto", "always", "never"),
                   help="colour in the terminal report (NO_COLOR and FORCE_COLOR are honoured)")
    p.add_argument("--verbose", "-v", action="store_true", help="show every cause, not only the top five")


def _check_format(p: argparse.ArgumentParser, fmt: str) -> None:
    # argparse checks choices only for values given on the command line, not for the env default
    if fmt not in FORMATS:
        p.error(f"ESPDIAG_FORMAT={fmt!r} is not a format (choose from {', '.join(FORMATS)})")


def _add_rules_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rules", action="append", default=[], metavar="PATH", type=Path,
                   help="load extra rules: a folder of *.yaml files or one rule file; repeatable")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not in 0..1")
    return value


# ---------------------------------------------------------------- the parsers


def diagnose_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag", "Explain why an ESP8266/ESP32 firmware upload failed: ranked causes, the log lines "
                "that show them, and the fix steps for your tool.", epilog=EPILOG)
    p.add_argument("files", nargs="*", metavar="FILE", help="upload log(s); '-' or nothing reads standard input")
    _add_output_options(p)
    _add_rules_option(p)
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when a failure is diagnosed")
    p.add_argument("--passthrough", action="store_true",
                   help="copy standard input to stdout as it arrives, then append the diagnosis")
    p.add_argument("--version", action="version", version=f"espdiag {__version__}")
    return p


def check_parser() -> argparse.ArgumentParser:
    from espdiag.commands.check import DEFAULT_FAIL_ON
    from espdiag.commands.check import FORMATS as CHECK_FORMATS

    p = _Parser("espdiag check", "Non-interactive check for CI and pre-commit: one line per file ('path: "
                "verdict top-cause (confidence)'). Exit 1 if any upload failed (explained or not), if a log "
                "stops inside an upload attempt, or if a log that did not fail shows a cause at or above "
                "--fail-on; 2 if a file cannot be read.")
    p.add_argument("files", nargs="+", metavar="FILE", help="upload log(s); '-' reads standard input")
    p.add_argument("--format", "-f", default="line", choices=CHECK_FORMATS, metavar="FORMAT",
                   help=f"{', '.join(CHECK_FORMATS)}; line (default): one line per file; github: Actions "
                   "annotations, then the lines; the others: the report")
    p.add_argument("--fail-on", type=_fraction, default=DEFAULT_FAIL_ON, metavar="CONFIDENCE",
                   help=f"confidence (0..1) from which a cause counts (default {DEFAULT_FAIL_ON})")
    _add_rules_option(p)
    return p


def events_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag events", 'Print the parsed event stream as JSON Lines: {"kind", "line", "text", '
                '"fields"} per logical line, in input order (and "file" when several files are given).')
    p.add_argument("files", nargs="*", metavar="FILE", help="upload log(s); '-' or nothing reads stdin")
    p.add_argument("--kind", action="append", default=[], metavar="KIND", help="only events of KIND (repeatable)")
    return p


def rules_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag rules", "List the rules (id, cause, title, file), or with --test run their inline "
                "examples like a test runner (exit 1 if one fails, 2 if a rule file is broken).")
    p.add_argument("--test", action="store_true",
                   help="run the examples: of the rules (built-in and --rules DIR, or only the given PATHs)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                   help="with --test: rule directories or files to test instead of the loaded rules")
    p.add_argument("--verbose", "-v", action="store_true", help="with --test: list passing examples too")
    _add_rules_option(p)
    return p


def explain_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag explain", "Explain a rule or a cause: what it means, which log lines trigger it, the "
                "fixes and the docs.")
    p.add_argument("id", metavar="RULE-OR-CAUSE", help="a rule id or a cause id (see 'espdiag rules')")
    _add_rules_option(p)
    return p


def run_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag run", "Run an upload command, show its output unchanged as it arrives, and if the "
                "upload fails, print the diagnosis (to stderr) when it ends. Exits with the command's exit "
                "code (127 if it cannot be started, 130 on Ctrl-C).",
                usage="espdiag run [options] -- COMMAND [ARG...]",
                epilog="examples:\n  espdiag run -- esptool.py --port /dev/ttyUSB0 write_flash 0x0 fw.bin\n"
                "  espdiag run --tee upload.log -- pio run -t upload\n"
                "  espdiag run --format json -- arduino-cli upload -p COM3 2>report.json")
    _add_output_options(p)
    _add_rules_option(p)
    p.add_argument("--tee", metavar="FILE", type=Path,
                   help="also write the command's raw output to FILE (and point --format github and sarif at it)")
    p.add_argument("--probe", action="store_true",
                   help="if the upload failed and the log cannot decide, probe the board (espdiag probe)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the upload command and its arguments, after '--'")
    return p


def probe_parser() -> argparse.ArgumentParser:
    from espdiag.commands.probe import DESCRIPTION, EPILOG, add_arguments

    p = _Parser("espdiag probe", DESCRIPTION, epilog=EPILOG)
    add_arguments(p)
    _add_rules_option(p)
    return p


def serve_parser() -> argparse.ArgumentParser:
    p = _Parser("espdiag serve", "Serve the paste page and the JSON API (POST /api/v1/diagnose) with the "
                "waitress WSGI server (pip install 'espdiag[serve]').")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default: 8080)")
    p.add_argument("--threads", type=int, default=4, help="worker threads (default: 4)")
    _add_rules_option(p)
    return p


PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "diagnose": diagnose_parser, "check": check_parser, "events": events_parser, "rules": rules_parser,
    "explain": explain_parser, "run": run_parser, "serve": serve_parser, "probe": probe_parser,
}
SUBCOMMANDS = tuple(PARSERS)


def parse_run(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """``run``'s options, then the command: everything after the first ``--``, even words like options."""
    p = run_parser()
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        args = p.parse_args(argv[:cut])
        if args.command:
            p.error(f"unexpected argument {args.command[0]!r} before '--'")
        command = argv[cut + 1 :]
    else:  # 'espdiag run esptool.py ...' works too, as long as no option of the command comes first
        args = p.parse_args(argv)
        command = args.command
    if not command:
        p.error("no command given: espdiag run [options] -- COMMAND [ARG...]")
    _check_format(p, args.format)
    return args, command


# ---------------------------------------------------------------- dispatch


def _load_rules(dirs: Sequence[Path]) -> RuleSet:
    """The one way a command gets its rules: built-in plus ``--rules`` folders, through the cache."""
    from espdiag.rulecache import load_rules

    return load_rules(dirs)


def _diagnose(argv: list[str]) -> int:
    p = diagnose_parser()
    a = p.parse_args(argv)
    _check_format(p, a.format)
    prepare_stdout()  # a closed stdout is said before any input is read
    rules = _load_rules(a.rules)
    if a.passthrough:
        from espdiag.commands.run import passthrough

        return passthrough(a.files, rules, a.format, a.colour, a.verbose, a.exit_zero)
    from espdiag.commands.diagnose import diagnose

    return diagnose(a.files, rules, a.format, a.colour, a.verbose, a.exit_zero)


def _check(argv: list[str]) -> int:
    from espdiag.commands.check import check

    a = check_parser().parse_args(argv)
    prepare_stdout()
    return check(a.files, _load_rules(a.rules), a.format, a.fail_on)


def _events(argv: list[str]) -> int:
    from espdiag.commands.events import events

    a = events_parser().parse_args(argv)
    prepare_stdout()
    return events(a.files, a.kind)


def _rules(argv: list[str]) -> int:
    from espdiag.commands.rules import rules_command

    a = rules_parser().parse_args(argv)
    prepare_stdout()
    return rules_command(_load_rules(a.rules), a.test, a.paths, a.verbose)


def _explain(argv: list[str]) -> int:
    from espdiag.commands.explain import explain

    a = explain_parser().parse_args(argv)
    prepare_stdout()
    return explain(_load_rules(a.rules), a.id)


def _run(argv: list[str]) -> int:
    from espdiag.commands.run import run_command

    a, command = parse_run(argv)
    return run_command(command, _load_rules(a.rules), a.format, a.colour, a.verbose, a.tee, a.probe)


def _serve(argv: list[str]) -> int:
    from espdiag.commands.serve import serve

    a = serve_parser().parse_args(argv)
    return serve(a.host, a.port, a.threads, _load_rules(a.rules))


def _probe(argv: list[str]) -> int:
    from espdiag.commands.probe import probe

    a = probe_parser().parse_args(argv)
    return probe(a, _load_rules(a.rules))


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "diagnose": _diagnose, "check": _check, "events": _events, "rules": _rules, "explain": _explain, "run": _run,
    "serve": _serve, "probe": _probe,
}


def _dispatch(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return _diagnose(argv)


# ---------------------------------------------------------------- errors


# import name -> the package to install (the import name of PyYAML is yaml)
_DEPENDENCIES = {"lark": "lark", "yaml": "pyyaml", "rich": "rich"}


def _crash_report() -> None:
    import platform  # only for a crash report: it costs start-up time

    print("Please report this at the project's issue tracker with the details below.\n", file=sys.stderr)
    print(f"### version information\n\nespdiag {__version__}, Python {platform.python_version()}, "
          f"{platform.platform()}\n\n### error information\n\n```\n{traceback.format_exc()}```",
          file=sys.stderr)


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
        silence_stdout()
        code[0] = EXIT_BROKEN_PIPE
    except ModuleNotFoundError as e:
        if e.name not in _DEPENDENCIES:
            raise
        # running from a source checkout without installing: a setup step, not a bug
        package = _DEPENDENCIES[e.name]
        print(f"espdiag: the package {package!r} is missing; install espdiag with 'pipx install .' or "
              f"'python3 -m pip install .' in a virtual environment (or 'pip install {package}')",
              file=sys.stderr)
        code[0] = ExitCode.USAGE


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        with _error_handler() as code:
            code[0] = _dispatch(args_list)
    except Exception as e:
        print(f"espdiag: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        _crash_report()
        return ExitCode.CRASH
    return code[0]


if __name__ == "__main__":
    raise SystemExit(main())

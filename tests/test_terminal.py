"""The terminal report, seen the way a user sees it: through a real pseudo-terminal of 80 columns."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys

import pytest
from conftest import ROOT, SAMPLES

from espdiag.api import diagnose_path
from espdiag.render import layout, rich_out, text

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
SAMPLE_BLOCK = re.compile(r"```\n\$ espdiag (\S+)\n(.*?)```", re.S)
URL_LINE = re.compile(r"^\s+(?:Docs: )?https?://\S+$")


def run_in_pty(args: list[str], columns: int = 80, env: dict[str, str] | None = None) -> str:
    """Run espdiag with stdout and stderr on a pseudo-terminal of ``columns`` columns; its output."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "ESPDIAG_FORMAT")}
    full_env.update({"TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}, **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "espdiag", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, cwd=ROOT, env=full_env)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        proc.wait(timeout=30)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def _words(s: str) -> list[str]:
    return s.split()


@pytest.mark.parametrize("sample", ["ck-cloud-wrote-zero.log", "ck-cloud-read-zero.log", "macos-port-busy.log"])
def test_the_report_fits_80_columns_and_breaks_only_between_words(sample: str) -> None:
    out = run_in_pty([f"samples/{sample}"])
    assert "\x1b[" in out  # a terminal: the colour report
    plain = ANSI.sub("", out)
    for line in plain.splitlines():
        assert len(line) <= 80 or URL_LINE.match(line), line
    # the same words in the same order as the unwrapped report: nothing was split inside a word
    # (evidence lines are cut with "…" instead of wrapped, so they are compared apart)
    unwrapped = text.render([diagnose_path(f"samples/{sample}")])
    assert _words(_prose(plain)) == _words(_prose(unwrapped))
    for shown, full in zip(_evidence(plain), _evidence(unwrapped), strict=True):
        assert shown == full or (shown.endswith("…") and full.startswith(shown[:-1]))


EVIDENCE = re.compile(r"^\s+\d+ \| .*$", re.M)


def _prose(report: str) -> str:
    return EVIDENCE.sub("", report)


def _evidence(report: str) -> list[str]:
    return [m.group().rstrip() for m in EVIDENCE.finditer(report)]


def test_continuation_lines_hang_under_their_text() -> None:
    plain = ANSI.sub("", run_in_pty(["samples/ck-cloud-wrote-zero.log"]))
    lines = plain.splitlines()
    fix = next(i for i, line in enumerate(lines) if line.startswith("     1. Make sure COM9"))
    assert lines[fix + 1].startswith("        ") and lines[fix + 1][8] != " "  # under "Make", not under "1."
    explain = next(i for i, line in enumerate(lines) if line.startswith("   esptool-ck opened COM9"))
    assert lines[explain + 1].startswith("   ") and lines[explain + 1][3] != " "


def test_evidence_lines_are_cut_and_keep_their_line_numbers() -> None:
    plain = ANSI.sub("", run_in_pty(["samples/ck-cloud-read-zero.log"]))
    (cut,) = [line for line in plain.splitlines() if "Flashing with command:" in line]
    assert cut.startswith("       5 | Flashing with command:") and cut.endswith("…") and len(cut) == 80


def test_readme_sample_output_is_what_the_tool_prints() -> None:
    readme = (ROOT / "README.md").read_text()
    m = SAMPLE_BLOCK.search(readme)
    assert m, "the README's sample output block is missing"
    shown = ANSI.sub("", run_in_pty([m.group(1)]))
    assert m.group(2) == shown, "regenerate it with: python tests/test_terminal.py"


def test_text_format_wraps_only_when_given_a_width() -> None:
    report = diagnose_path(SAMPLES / "ck-cloud-wrote-zero.log")
    assert max(len(line) for line in text.render([report]).splitlines()) > 100  # a pipe or a file: one line each
    assert max(len(line) for line in text.render([report], width=60).splitlines() if not URL_LINE.match(line)) <= 60


def test_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    assert layout.terminal_width(io.StringIO()) == 100
    monkeypatch.delenv("COLUMNS")
    assert layout.terminal_width(io.StringIO()) is None  # not a terminal


def test_a_long_word_is_split_at_the_edge_but_a_url_is_not() -> None:
    segments = [("", "   " + "x" * 100 + " https://example.com/" + "y" * 90)]
    out = "".join(t for _, t in layout._wrap(segments, 40, 3)).split("\n")
    assert out[0] == "   " + "x" * 37 and all(line.startswith("   ") for line in out)
    assert out[-1] == "   https://example.com/" + "y" * 90


# ------------------------------------------------------------------------------------------------ colour
def _rich(colour: str, tty: bool) -> str:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    buf = Stream()
    rich_out.write([diagnose_path(SAMPLES / "ck-cloud-wrote-zero.log")], buf, colour=colour)
    return buf.getvalue()


@pytest.mark.parametrize(("colour", "tty", "coloured"), [
    ("always", False, True), ("never", True, False), ("auto", True, True), ("auto", False, False)])
def test_the_colour_option_decides(colour: str, tty: bool, coloured: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert ("\x1b[" in _rich(colour, tty)) is coloured


def test_no_colour_on_a_terminal_with_no_color() -> None:
    out = run_in_pty(["samples/ck-cloud-wrote-zero.log"], env={"NO_COLOR": "1"})
    assert "\x1b[" not in out and "port-write-failure" in out


def test_a_wrapped_sentence_is_one_coloured_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = _rich("always", False)
    assert "\x1b[1mThe upload failed: The computer cannot send anything to the serial port.\x1b[0m" in out


def test_colour_into_a_pipe_is_not_wrapped_unless_columns_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    widths = [len(line) for line in ANSI.sub("", _rich("always", False)).splitlines()]
    assert max(widths) > 100
    monkeypatch.setenv("COLUMNS", "60")
    lines = ANSI.sub("", _rich("always", False)).splitlines()
    assert all(len(line) <= 60 or URL_LINE.match(line) for line in lines)


if __name__ == "__main__":  # rewrite the README's sample output with what the tool prints at 80 columns
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    block = SAMPLE_BLOCK.search(readme)
    assert block
    shown = ANSI.sub("", run_in_pty([block.group(1)]))
    readme_path.write_text(readme[: block.start(2)] + shown + readme[block.end(2) :])

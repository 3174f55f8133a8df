"""What a log (or a file name) holds must never act in the output: no Markdown image or link, no
terminal control sequence, no bidi reordering, no GitHub workflow command."""

from __future__ import annotations

import io
import json
import re

import pytest
from conftest import SAMPLES
from markdown_it import MarkdownIt

from espdiag.api import diagnose_bytes, diagnose_text
from espdiag.render import github, json_out, markdown, sarif, text
from espdiag.render.safe import one_line, visible

EVIL_PORT = "![x](https://evil.example/t.png)[Click<img/src=x>here](https://evil.example/)<details>"
PERMISSION = (SAMPLES / "esptool5-linux-permission.log").read_text()


def _html(md: str) -> str:
    # Discourse renders with markdown-it and linkify; GitHub's autolinks are a subset of linkify's
    return MarkdownIt("commonmark", {"linkify": True}).enable(["linkify", "table", "strikethrough"]).render(md)


def _outside_code(html: str) -> str:
    return re.sub(r"<code[^>]*>.*?</code>", "", html, flags=re.S)


def test_a_hostile_port_name_is_no_image_or_link_in_the_markdown_reply() -> None:
    report = diagnose_text(PERMISSION.replace("/dev/ttyACM0", EVIL_PORT), name="up.log")
    assert report.context["port"] == EVIL_PORT and report.causes  # the port is quoted in the fixes
    out = markdown.render([report])
    html = _html(out)
    assert "<img" not in html and "<details" not in _outside_code(html)
    assert "evil.example" not in _outside_code(html)  # not even a bare URL that linkify would catch
    assert 'href="https://evil' not in html
    assert html.count("evil.example/t.png") >= 3  # shown (setup, explanation, fix), only as code


@pytest.mark.parametrize("value", ["a`b", "``x``", "` lead", "<b>bold</b>", "x_y*z*", "[a](b)"])
def test_code_spans_hold_any_value(value: str) -> None:
    html = _html(f"port {markdown.code(value)} end")
    assert "<code>" in html
    inner = re.search(r"<code>(.*?)</code>", html, re.S)
    assert inner is not None
    assert inner.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == value


@pytest.mark.parametrize("text", ["https://evil.com/x", "www.evil.com", "evil.com/t.png", "me@evil.com",
                                  "ftp://evil.com", "see HTTPS://EVIL.COM."])
def test_bare_urls_in_prose_are_not_linkified(text: str) -> None:
    assert "<a" not in _html(markdown.prose(text))
    assert _html(markdown.prose(text)).startswith("<p>" + text.replace("&", "&amp;"))  # shown as written


def test_values_from_evidence_fields_are_code_spans() -> None:
    import dataclasses

    from espdiag.events import Event

    report = diagnose_text(PERMISSION, name="up.log")
    cause = report.causes[0]
    event = Event("port_error", 5, "x", {"reason": "[a](https://evil.com)"})
    report.causes[0] = dataclasses.replace(cause, evidence=(event,), explain="The OS said [a](https://evil.com).")
    html = _html(markdown.render([report]))
    assert "<code>[a](https://evil.com)</code>" in html and "<a href=\"https://evil" not in html


def test_rule_text_with_markdown_is_escaped_not_rendered() -> None:
    assert _html(markdown.prose("see [here](https://x.example) or ![i](y) *now*")).count("<a") == 0
    assert "<em>" not in _html(markdown.prose("*now*"))
    assert "<h1>" not in _html(markdown.prose("# Heading"))


@pytest.mark.parametrize(
    ("source", "shown"),
    [("/home/helper/private/upload.log", "`upload.log`"), ("C:\\Users\\me\\Desktop\\up.log", "`up.log`"),
     ("logs/a.log", "`a.log`")],
)
def test_the_markdown_reply_names_the_file_by_its_base_name(source: str, shown: str) -> None:
    out = markdown.render([diagnose_text(PERMISSION, name=source)])
    first = out.splitlines()[0]
    assert first.startswith(f"**espdiag:** {shown}: **FAILURE**")
    assert "home" not in out and "Users" not in out


@pytest.mark.parametrize("source", ["<stdin>", "<text>"])
def test_the_markdown_reply_does_not_show_stdin(source: str) -> None:
    out = markdown.render([diagnose_text(PERMISSION, name=source)])
    assert out.startswith("**espdiag:** **FAILURE**") and source not in out


# ----------------------------------------------------------------------------- C1 and bidi controls
C1_AND_BIDI = ["\x9b", "\x9d", "\x85", "\u202e", "\u202a", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"]
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _hostile_log() -> bytes:
    # every control in the port name, an error line and a free-text line
    port = "/dev/tty" + "".join(C1_AND_BIDI) + "USB0"
    log = PERMISSION.replace("/dev/ttyACM0", port)
    return (log + "\x9d0;pwned\x07 \u202eevil\u202c text\n").encode()


@pytest.mark.parametrize("fmt", ["text", "markdown", "github", "json", "sarif"])
def test_c1_and_bidi_controls_never_reach_the_output(fmt: str) -> None:
    name = "up\x9b31m\u202e.log"  # a file name does not go through the normaliser
    report = diagnose_bytes(_hostile_log(), name=name)
    render = {"text": lambda r: text.render(r, width=80), "markdown": markdown.render, "github": github.render,
              "json": json_out.render, "sarif": sarif.render}[fmt]
    out = render([report])
    assert not UNSAFE.search(out.replace("\n", "").replace("\t", ""))
    if fmt in ("json", "sarif"):
        assert json.loads(out)  # escaped, still the same data
    if fmt == "json":
        assert json.loads(out)["source"] == name


def test_the_normaliser_strips_c1_and_bidi_from_log_lines() -> None:
    report = diagnose_bytes(_hostile_log())
    assert report.context["port"] == "/dev/ttyUSB0"


def test_visible_shows_what_it_replaces() -> None:
    assert visible("a\x9bb\u202ec\td\ne\x1b") == "a\\x9bb\\u202ec\td\ne\\x1b"
    assert one_line("a\nb") == "a\\nb"


def test_the_rich_report_has_no_c1_controls() -> None:
    from espdiag.render import rich_out

    buf = io.StringIO()
    rich_out.write([diagnose_bytes(_hostile_log(), name="x\x9b.log")], buf, colour="never")
    assert not UNSAFE.search(buf.getvalue().replace("\n", ""))


# ----------------------------------------------------------------------------- GitHub workflow commands
NASTY_NAME = "a\n::add-mask::x\n::error file=z::pwned.log"


def test_annotations_escape_file_names_and_messages() -> None:
    report = diagnose_text(PERMISSION, name=NASTY_NAME)
    for line in github.lines(report):
        assert "\n" not in line and line.count("::") == 2  # one command per line, nothing injected
        assert "file=a%0A%3A%3Aadd-mask%3A%3Ax%0A" in line


@pytest.mark.parametrize("name", [NASTY_NAME, "::error::pwned.log", "##[error]legacy.log", "  ::warning::x"])
def test_summary_lines_cannot_be_workflow_commands(name: str) -> None:
    out = github.plain_lines([f"{name}: failure port-permission (0.90)", "ok.log: success"])
    assert all("\n" not in line for line in out)
    if out[0].startswith("::stop-commands::"):  # GitHub reads nothing between these two as a command
        token = out[0].removeprefix("::stop-commands::")
        assert len(token) >= 32 and token not in name and out[-1] == f"::{token}::"
        out = out[1:-1]
    else:
        assert not [line for line in out if line.lstrip().startswith(("::", "##["))]
    assert out == [f"{one_line(name)}: failure port-permission (0.90)", "ok.log: success"]


def test_summary_lines_without_danger_are_unchanged() -> None:
    assert github.plain_lines(["up.log: failure x (0.90)"]) == ["up.log: failure x (0.90)"]


def test_annotation_levels_follow_fail_on() -> None:
    report = diagnose_text((SAMPLES / "ck-cloud-read-zero.log").read_text(), name="up.log")
    confidences = [c.confidence for c in report.causes[: github.MAX_CAUSES]]
    assert confidences[0] > 0.8 and 0.3 < confidences[1] < 0.5
    default = github.lines(report)
    assert default[0].startswith("::error") and default[1].startswith("::warning")
    strict = github.lines(report, fail_on=0.3)
    assert strict[1].startswith("::error")
    lax = github.lines(report, fail_on=0.95)
    assert not any(line.startswith("::error file=up.log,line=5,") for line in lax)
    assert lax[-1].startswith("::error") and "cause unknown" in lax[-1]  # the failure is still an error

"""Subcommands through main(argv): check, events, rules [--test], explain, and the new --format values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES
from conftest import run_main as run

from espdiag.api import scan

FAIL = str(SAMPLES / "ck-cloud-read-zero.log")
OK = str(SAMPLES / "esptool4-success.log")
UNEXPLAINED = b"A fatal error occurred: the moon is in the wrong phase\n"


def usage(argv: list[str], capsys, monkeypatch) -> str:
    with pytest.raises(SystemExit) as e:
        run(argv, capsys, monkeypatch)
    assert e.value.code == 2
    return capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ check
@pytest.mark.parametrize(
    ("files", "extra", "code", "lines"),
    [
        ([OK], [], 0, [f"{OK}: success"]),
        ([FAIL], [], 1, [f"{FAIL}: failure boot-mode (0.84)"]),
        ([OK, FAIL], [], 1, [f"{OK}: success", f"{FAIL}: failure boot-mode (0.84)"]),
        # a failed upload fails the check even when no cause reaches --fail-on: the upload did fail
        ([FAIL], ["--fail-on", "0.9"], 1, [f"{FAIL}: failure unexplained (best guess boot-mode 0.84)"]),
        ([FAIL], ["--fail-on", "0.3"], 1, [f"{FAIL}: failure boot-mode (0.84)"]),
    ],
)
def test_check_lines_and_exit_codes(files, extra, code, lines, capsys, monkeypatch) -> None:
    got, out, err = run(["check", *extra, *files], capsys, monkeypatch)
    assert (got, out.splitlines(), err) == (code, lines, "")


def test_check_unexplained_failure_from_stdin(capsys, monkeypatch) -> None:
    code, out, _ = run(["check", "-"], capsys, monkeypatch, UNEXPLAINED)
    assert code == 1 and out.startswith("<stdin>: failure unexplained")


def test_check_threshold_applies_to_logs_that_did_not_fail(capsys, monkeypatch) -> None:
    stuck = str(SAMPLES / "s3-download-mode-stuck.log")  # written and verified, then left in download mode (45 %)
    code, out, _ = run(["check", "--fail-on", "0.4", stuck], capsys, monkeypatch)
    assert code == 1 and "usb-native-reenumeration" in out
    code, out, _ = run(["check", "--fail-on", "1", stuck], capsys, monkeypatch)
    assert code == 0 and "usb-native-reenumeration" not in out


def test_check_keeps_going_after_an_unreadable_file(capsys, monkeypatch, tmp_path) -> None:
    missing = str(tmp_path / "gone.log")
    code, out, err = run(["check", missing, OK], capsys, monkeypatch)
    assert code == 2
    assert out.splitlines() == [f"{OK}: success"]
    assert err.strip() == f"espdiag: {missing}: no such file"


def test_check_github_format(capsys, monkeypatch) -> None:
    code, out, _ = run(["check", "--format", "github", FAIL, OK], capsys, monkeypatch)
    lines = out.splitlines()
    assert code == 1
    assert lines[0].startswith(f"::error file={FAIL.replace(':', '%3A')},line=5,title=espdiag%3A The ESP8266")
    assert f"::notice file={OK.replace(':', '%3A')},title=espdiag%3A upload succeeded::The upload succeeded." in lines
    assert lines[-2:] == [f"{FAIL}: failure boot-mode (0.84)", f"{OK}: success"]


@pytest.mark.parametrize(("argv", "message"), [
    (["check"], "the following arguments are required: FILE"),
    (["check", "--fail-on", "x", OK], "'x' is not a number"),
    (["check", "--fail-on", "2", OK], "2 is not in 0..1"),
    (["check", "--format", "xml", OK], "invalid choice: 'xml'"),
])
def test_check_usage_errors(argv, message, capsys, monkeypatch) -> None:
    assert message in usage(argv, capsys, monkeypatch)


# ------------------------------------------------------------------------------------------------ formats
@pytest.mark.parametrize("fmt", ["markdown", "github", "sarif"])
def test_new_formats_through_the_cli(fmt, capsys, monkeypatch) -> None:
    code, out, _ = run(["--format", fmt, FAIL], capsys, monkeypatch)
    assert code == 1 and "boot-mode" in out and "\x1b" not in out
    code, out, _ = run(["diagnose", "-f", fmt], capsys, monkeypatch, Path(FAIL).read_bytes())
    assert code == 1 and "boot-mode" in out


# ------------------------------------------------------------------------------------------------ events
def test_events_is_json_lines_of_every_event(capsys, monkeypatch) -> None:
    code, out, _ = run(["events", FAIL], capsys, monkeypatch)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert all(set(r) == {"kind", "line", "text", "fields"} for r in rows)
    assert [r["line"] for r in rows] == sorted(r["line"] for r in rows)
    with open(FAIL, "rb") as f:
        tracker, _ = scan(f)
    assert len(rows) == tracker.events_seen  # the same pipeline as a diagnosis, nothing dropped
    banner = next(r for r in rows if r["kind"] == "tool_banner")
    assert banner["line"] == 7 and banner["text"].startswith("esptool v0.4.13")


def test_events_from_stdin_and_kind_filter(capsys, monkeypatch) -> None:
    code, out, _ = run(["events", "--kind", "port_error"], capsys, monkeypatch,
                       b"\xef\xbb\xbfesptool.py v4.0\nserial.serialutil.SerialException: [Errno 2] could not open "
                       b"port /dev/ttyUSB0: [Errno 2] No such file or directory: '/dev/ttyUSB0'\n")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and row["kind"] == "port_error" and row["line"] == 2 and row["fields"]["errno"] == 2


def test_events_of_a_clipboard_pipe_in_utf16(capsys, monkeypatch) -> None:
    # Windows PowerShell 5 pipes text to native programs in the console code page, PowerShell 7 in UTF-8,
    # and `Get-Clipboard > x.log` writes UTF-16 with a BOM: all must read the same.
    text = "esptool.py v4.5\r\nConnecting....\r\nA fatal error occurred: Failed to connect to ESP32: No serial data received.\r\n"
    for data in (text.encode("utf-16"), text.encode("utf-8-sig"), text.encode("utf-8")):
        code, out, _ = run(["events"], capsys, monkeypatch, data)
        kinds = [json.loads(line)["kind"] for line in out.splitlines()]
        assert code == 0 and kinds == ["tool_banner", "connecting", "no_serial_data"]


def test_events_missing_file(capsys, monkeypatch, tmp_path) -> None:
    code, out, err = run(["events", str(tmp_path / "x.log")], capsys, monkeypatch)
    assert (code, out) == (2, "") and err.strip() == f"espdiag: {tmp_path / 'x.log'}: no such file"


# ------------------------------------------------------------------------------------------------ rules
RULE = """\
id: {id}
cause: boot-mode
title: Wrong boot mode
when:
  - event: wrong_boot_mode
fixes: [Hold BOOT while resetting.]
docs: https://example.com
examples:
  - match: "A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)!"
  - no_match: "{no_match}"
"""


def _rule_dir(tmp_path: Path, no_match: str = "Hash of data verified.", rule_id: str = "my-rule") -> Path:
    d = tmp_path / "espdiag-rules"
    d.mkdir(exist_ok=True)
    (d / f"{rule_id}.yaml").write_text(RULE.format(id=rule_id, no_match=no_match))
    return d


def test_rules_lists_builtin_and_user_rules(capsys, monkeypatch, tmp_path) -> None:
    code, out, _ = run(["rules", "--rules", str(_rule_dir(tmp_path))], capsys, monkeypatch)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["id", "cause", "title", "(file)"]
    assert any(line.startswith("port-locked-posix ") and "port-busy" in line
               and "port-locked-posix.yaml)" in line for line in lines)
    mine = next(line for line in lines if line.startswith("my-rule "))
    assert "Wrong boot mode" in mine and "my-rule.yaml" in mine
    assert lines[-1].endswith(" rules")


def test_rules_test_builtin_all_pass(capsys, monkeypatch) -> None:
    code, out, _ = run(["rules", "--test"], capsys, monkeypatch)
    passed = int(out.splitlines()[-1].split()[0])
    assert code == 0 and passed > 100 and out.splitlines()[-1].endswith(" passed, 0 failed")


def test_rules_test_only_the_given_dir(capsys, monkeypatch, tmp_path) -> None:
    d = _rule_dir(tmp_path)
    code, out, _ = run(["rules", "--test", str(d)], capsys, monkeypatch)
    assert (code, out) == (0, "2 passed, 0 failed\n")
    code, out, _ = run(["rules", "--test", "-v", str(d / "my-rule.yaml")], capsys, monkeypatch)
    assert code == 0 and out.count("PASS ") == 2


def test_rules_test_reports_a_failing_example(capsys, monkeypatch, tmp_path) -> None:
    d = _rule_dir(tmp_path, no_match="Wrong boot mode detected (0x13)")
    code, out, _ = run(["rules", "--test", str(d)], capsys, monkeypatch)
    first, last = out.splitlines()
    assert code == 1 and last == "1 passed, 1 failed"
    assert first.startswith("FAIL ") and "my-rule.yaml:10 my-rule: expected no_match, but the rule fired" in first


def test_rules_test_with_extra_rules_runs_both(capsys, monkeypatch, tmp_path) -> None:
    code, out, _ = run(["rules", "--test", "--rules", str(_rule_dir(tmp_path))], capsys, monkeypatch)
    assert code == 0 and int(out.splitlines()[-1].split()[0]) > 100


def test_rules_test_broken_rule_is_exit_2(capsys, monkeypatch, tmp_path) -> None:
    d = _rule_dir(tmp_path)
    (d / "bad.yaml").write_text("id: bad\ncause: nope\n")
    code, out, err = run(["rules", "--test", str(d)], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert f"{d / 'bad.yaml'}:2: cause 'nope' is not in the taxonomy" in err


def test_rules_paths_need_test(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(["rules", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and err.startswith("espdiag: rule paths are only taken with --test") and err.count("\n") == 1


def test_rules_test_missing_path(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(["rules", "--test", str(tmp_path / "nope")], capsys, monkeypatch)
    assert code == 2 and "no such rule file or directory" in err


# ------------------------------------------------------------------------------------------------ explain
def test_explain_rule(capsys, monkeypatch) -> None:
    code, out, _ = run(["explain", "port-locked-posix"], capsys, monkeypatch)
    assert code == 0
    assert out.startswith("port-locked-posix  (cause: port-busy, weight 0.85, ")
    assert "Fires when the upload failed and all of:" in out
    assert "- a port_error line where errno is one of [11, 16, 35]" in out
    assert "- no port_error line where errno is 2" in out
    assert "1. Close every serial monitor" in out
    assert "Docs: https://" in out
    assert "port_error: Port cannot be opened" in out


def test_explain_cause_lists_its_rules(capsys, monkeypatch) -> None:
    code, out, _ = run(["explain", "port-busy"], capsys, monkeypatch)
    assert code == 0 and out.startswith("cause port-busy: ") and "port-locked-posix" in out


def test_explain_user_rule_with_fix_variants(capsys, monkeypatch, tmp_path) -> None:
    d = _rule_dir(tmp_path)
    text = (d / "my-rule.yaml").read_text().replace(
        "fixes: [Hold BOOT while resetting.]",
        "fixes:\n  - text: Hold BOOT while resetting.\n    for: {arduino-ide: 'Tools > Upload Speed.'}\n"
        "    unless: {context: {chip: {in: [ESP32-S3]}}}")
    (d / "my-rule.yaml").write_text(text)
    code, out, _ = run(["explain", "--rules", str(d), "my-rule"], capsys, monkeypatch)
    assert code == 0
    assert "arduino-ide: Tools > Upload Speed." in out
    assert "- the setup (context): chip is one of ['ESP32-S3']" in out


def test_explain_unknown_id_is_one_line(capsys, monkeypatch) -> None:
    code, out, err = run(["explain", "boot-mod"], capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert err == "espdiag: 'boot-mod': no such rule or cause (did you mean 'boot-mode'?); 'espdiag rules' lists them\n"


def test_plain_file_argument_still_diagnoses(capsys, monkeypatch) -> None:
    code, out, _ = run([OK], capsys, monkeypatch)
    assert code == 0 and "SUCCESS" in out


def test_annotated_rule_in_rules_readme_loads_and_passes(capsys, monkeypatch, tmp_path) -> None:
    text = (Path(__file__).resolve().parent.parent / "rules" / "README.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```\n", 1)[0]
    d = tmp_path / "my-rules"
    d.mkdir()
    (d / "port-locked-posix.yaml").write_text(block)
    code, out, err = run(["rules", "--test", str(d)], capsys, monkeypatch)
    assert (code, out, err) == (0, "2 passed, 0 failed\n", "")


# ------------------------------------------------------------------------------------------------ issue 13
def test_events_takes_several_files_and_names_them(capsys, monkeypatch, tmp_path) -> None:
    code, out, err = run(["events", "--kind", "tool_banner", FAIL, OK, str(tmp_path / "gone.log")], capsys, monkeypatch)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 2 and err.strip() == f"espdiag: {tmp_path / 'gone.log'}: no such file"
    assert [r["file"] for r in rows] == [FAIL, OK]  # both files were read, the missing one did not stop them
    assert all(r["kind"] == "tool_banner" for r in rows)


def test_events_mistyped_kind_is_an_error_with_a_suggestion(capsys, monkeypatch) -> None:
    code, out, err = run(["events", "--kind", "tool_baner", FAIL], capsys, monkeypatch)
    assert (code, out) == (2, "")
    assert err.strip() == "espdiag: --kind 'tool_baner': no such event kind (did you mean 'tool_banner'?)"


def test_precommit_hook_matches_logs_by_name_so_utf16_logs_are_checked(capsys, monkeypatch, tmp_path) -> None:
    import re

    import yaml

    hook = next(h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text()) if h["id"] == "espdiag")
    assert "text" not in hook.get("types", []) and "text" not in hook.get("types_or", [])
    assert re.search(hook["files"], "logs/upload.log") and not re.search(hook["files"], "requirements.txt")
    log = tmp_path / "upload.log"  # what PowerShell's '>' writes
    log.write_bytes("esptool.py v4.5\r\nConnecting....\r\nA fatal error occurred: Failed to connect to ESP32: "
                    "No serial data received.\r\n".encode("utf-16"))
    identify = pytest.importorskip("identify.identify")
    assert "binary" in identify.tags_from_path(str(log))  # why 'types: [text]' skipped it
    code, out, _ = run(["check", str(log)], capsys, monkeypatch)
    assert code == 1 and out.startswith(f"{log}: failure boot-mode")

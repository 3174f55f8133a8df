"""Several attempts in one paste, retries inside one attempt, and bounded memory for retry loops."""

from __future__ import annotations

from espdiag.api import diagnose_text
from espdiag.sessions import KEEP

FAIL = "esptool.py v3.0\nSerial port COM4\nConnecting........_____\nA fatal error occurred: Failed to connect to ESP8266: Timed out waiting for packet header\n"
OK = "esptool.py v3.0\nSerial port COM4\nConnecting....\nChip is ESP8266EX\nWriting at 0x00000000... (100 %)\nHash of data verified.\nHard resetting via RTS pin...\n"


def test_last_attempt_decides() -> None:
    report = diagnose_text(FAIL + OK)
    assert report.verdict == "success" and report.attempts == 2 and report.failed_attempts == 1
    report = diagnose_text(OK + FAIL)
    assert report.verdict == "failure" and report.attempts == 2
    assert report.first_line == 8  # evidence comes from the second attempt


def test_trailing_prose_is_not_an_attempt() -> None:
    report = diagnose_text(FAIL + "\nThanks for any help!\nI tried two cables.\n")
    assert report.verdict == "failure" and report.attempts == 1


def test_an_attempt_cut_short_does_not_hide_the_failure_before_it() -> None:
    cut = "esptool.py v3.0\nSerial port COM4\nConnecting....."
    report = diagnose_text(FAIL + cut)
    assert report.verdict == "failure" and report.attempts == 2 and report.first_line == 1
    assert report.causes[0].id == "boot-mode"
    assert "the last one ends before it failed or finished" in report.notes[0]
    assert diagnose_text(OK + FAIL + cut).first_line == 8
    # a success after the failure: the cut attempt is the one to report, and it has no result
    report = diagnose_text(FAIL + OK + cut)
    assert report.verdict == "unknown" and report.attempts == 3
    assert "this diagnoses attempt 3 of 3" in report.notes[0]


def test_a_wrapper_summary_after_a_start_line_belongs_to_the_attempt_before() -> None:
    log = FAIL + "CMake Error at run_cmd.cmake:14 (message):\nesptool.py v3.0\nmake: *** [Makefile:190: flash] Error 2\n"
    report = diagnose_text(log)
    assert report.verdict == "failure" and report.attempts == 1 and report.failed_attempts == 1
    assert report.causes and report.causes[0].id == "boot-mode"
    # with real progress after the start line it is an attempt of its own
    report = diagnose_text(FAIL + "esptool.py v3.0\nConnecting....\nChip is ESP8266EX\nA fatal error occurred: Timed out waiting for packet content\n")
    assert report.attempts == 2 and report.first_line == 5


def test_retry_inside_an_attempt_that_then_works() -> None:
    log = ("INFO Upload with baud rate 460800 failed. Trying again with baud rate 115200.\n"
           "A fatal error occurred: Serial data stream stopped: Possible serial noise or corruption.\n" + OK[16:])
    assert diagnose_text(log).verdict == "success"


def test_wrapper_done_after_a_failure_is_not_success() -> None:
    log = "A fatal esptool.py error occurred: could not open port 'COM5': PermissionError(13, 'Access denied.', None, 5)\nCompleted upload.\n"
    assert diagnose_text(log).verdict == "failure"


def test_retry_loop_counts_stay_exact() -> None:
    loop = "trying to connect\nread 0, requested 1\n" * 5000
    report = diagnose_text("setting board to ck\n" + loop + "warning: espcomm_sync failed\nerror: espcomm_open failed\n")
    top = report.causes[0]
    assert top.id == "boot-mode"
    reads = [e for e in top.evidence if e.text == "read 0, requested 1"]
    assert reads and top.evidence_counts["read 0, requested 1"] == 5000
    assert len(top.evidence) <= 8


def test_kept_events_are_bounded() -> None:
    import io

    from espdiag.api import scan

    tracker, _ = scan(io.BytesIO(("read 0, requested 1\n" * 10_000).encode()))
    session = tracker.current
    assert session.count("ck_read") == 10_000
    assert len([e for e in session.events() if e.kind == "ck_read"]) <= 2 * KEEP


def test_unknown_lines_are_capped_by_the_session_itself() -> None:
    # the cap used to live only in the scanner (and in the test's reference loop)
    from espdiag.sessions import KEEP_OTHER, Tracker

    tracker = Tracker()
    for i in range(100):
        tracker.add(i + 1, "other", f"hello {i}", {})
    assert tracker.current.count("other") == KEEP_OTHER and tracker.lines_other == 100
    assert len(tracker.current.text_counts) == KEEP_OTHER


def test_counted_texts_are_bounded_in_bytes() -> None:
    import io

    from espdiag.api import scan
    from espdiag.sessions import MAX_DISTINCT_BYTES

    # 600 distinct failure lines of 4 KB in one attempt: 2.4 MB of text, counted only up to the bound
    log = b"".join(b"A fatal error occurred: %05d " % i + b"x" * 4000 + b"\n" for i in range(600))
    tracker, _ = scan(io.BytesIO(log))
    session = tracker.current
    assert session.count("fatal_error") == 600
    assert session.text_bytes == sum(map(len, session.text_counts)) <= MAX_DISTINCT_BYTES
    assert 100 < len(session.text_counts) < 600

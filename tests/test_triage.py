"""The issue-triage Action's script against recorded `issues` events and a loopback GitHub API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from espdiag import triage

EVENTS = Path(__file__).resolve().parent / "data" / "triage"
ROOT = Path(__file__).resolve().parent.parent


class FakeGitHub:
    """Records every request; answers the comment list with ``existing``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.existing: list[dict[str, Any]] = []
        self.status = 201


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            fake.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                  "body": json.loads(self.rfile.read(length)) if length else None})

        def _answer(self, status: int, value: Any) -> None:
            data = json.dumps(value).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._record()
            self._answer(200, fake.existing)

        def do_POST(self) -> None:
            self._record()
            self._answer(fake.status, {"id": 1})

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("GITHUB_REPOSITORY", "octo/board")
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    try:
        yield fake
    finally:
        server.shutdown()


def run(event: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(EVENTS / event))
    return triage.main(list(args))


def test_a_new_issue_with_a_failed_upload_gets_one_comment(github: FakeGitHub, monkeypatch, capsys) -> None:
    assert run("fenced.json", monkeypatch) == 0
    get, post = github.requests
    assert get["method"] == "GET" and get["path"].startswith("/repos/octo/board/issues/7/comments")
    assert post["method"] == "POST" and post["path"] == "/repos/octo/board/issues/7/comments"
    assert post["headers"]["Authorization"] == "Bearer t0ken"
    assert post["headers"]["Accept"] == "application/vnd.github+json"
    body = post["body"]["body"]
    assert body.startswith(triage.MARKER)
    assert "port-missing" in body and "/dev/ttyACM0" in body
    out = capsys.readouterr().out
    assert "ttyACM0" not in out  # the issue's text never reaches the job log


@pytest.mark.parametrize("event", ["issue-form.json", "form-plain.json"])
def test_logs_in_issue_forms_and_details_are_found(github: FakeGitHub, monkeypatch, event: str) -> None:
    assert run(event, monkeypatch) == 0
    assert [r["method"] for r in github.requests] == ["GET", "POST"]


def test_never_twice_on_one_issue(github: FakeGitHub, monkeypatch) -> None:
    github.existing = [{"id": 5, "body": "thanks"}, {"id": 6, "body": triage.MARKER + "\nearlier reply"}]
    assert run("fenced.json", monkeypatch) == 0
    assert [r["method"] for r in github.requests] == ["GET"]


@pytest.mark.parametrize("event", ["no-log.json", "success-log.json", "pull-request.json"])
def test_nothing_is_said_without_a_failed_upload(github: FakeGitHub, monkeypatch, event: str) -> None:
    assert run(event, monkeypatch) == 0
    assert github.requests == []


def test_threshold_input(github: FakeGitHub, monkeypatch) -> None:
    assert run("fenced.json", monkeypatch, "--threshold", "0.99") == 0
    assert github.requests == []


def test_a_refused_comment_fails_the_step(github: FakeGitHub, monkeypatch, capsys) -> None:
    github.status = 403
    assert run("fenced.json", monkeypatch) == 1
    assert "403" in capsys.readouterr().err


def test_missing_event_is_a_usage_error(monkeypatch, capsys) -> None:
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    assert triage.main([]) == 2
    monkeypatch.setenv("GITHUB_EVENT_PATH", "/nonexistent/event.json")
    assert triage.main([]) == 2


def test_finding_logs_is_linear_on_hostile_bodies() -> None:
    # unclosed fences, <details and <summary tags by the thousand: one pass each
    for body in ("```\n" * 20000, "<details>" * 20000, "<details><summary>" * 20000, "### x\n" * 20000):
        start = time.perf_counter()
        triage.find_logs(body)
        assert time.perf_counter() - start < 2


def test_fences_and_details() -> None:
    body = "intro\n````text\nline 1\n```\nstill inside\n````\n<details><summary>log 2</summary>\nA\n</details>\n"
    assert triage.find_logs(body) == ["line 1\n```\nstill inside", "A"]


def test_the_action_reads_the_event_file_not_interpolated_text() -> None:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    scripts = " ".join(step.get("run", "") for step in action["runs"]["steps"])
    assert "github.event" not in scripts  # ${{ github.event.issue.body }} in a script is a code injection
    assert "espdiag.triage" in scripts

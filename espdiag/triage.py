"""Issue triage for the GitHub Action (``action.yml``): diagnose the upload logs pasted in a new issue
and post one comment with the Markdown diagnosis.

``python -m espdiag.triage [--threshold 0.5]`` reads the ``issues`` event from ``$GITHUB_EVENT_PATH``
and talks to ``$GITHUB_API_URL`` with ``$GITHUB_TOKEN``. It comments only when a failed upload is
diagnosed with a cause at or above the threshold, and never twice on one issue (a hidden marker in
the comment). The issue body is a stranger's text: it is never printed to the job log (where a line
could pass as a workflow command), only counts and cause ids are.

Exit codes: 0 done (commented or nothing to say), 2 usage or a missing/unreadable event, 1 the
GitHub API refused the comment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from espdiag.report import Report

MARKER = "<!-- espdiag-triage -->"
MAX_BODY = 1024 * 1024  # GitHub caps issue bodies at 65 536 characters; anything bigger is not one
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})")


def _split_fences(lines: list[str]) -> tuple[list[str], list[str]]:
    """Fenced blocks' contents, and the lines outside fences; one pass (an unclosed fence runs to the end)."""
    blocks: list[str] = []
    outside: list[str] = []
    fence: str | None = None
    inside: list[str] = []
    for line in lines:
        if fence is None:
            m = _FENCE_OPEN.match(line)
            if m:
                fence, inside = m.group(1), []
            else:
                outside.append(line)
            continue
        stripped = line.strip()
        if line[: len(line) - len(line.lstrip(" "))].count(" ") <= 3 and stripped.startswith(fence) \
                and not stripped.strip(fence[0]):
            blocks.append("\n".join(inside))
            fence = None
        else:
            inside.append(line)
    if fence is not None:
        blocks.append("\n".join(inside))
    return blocks, outside


def _cut_between(text: str, opening: str, closing: str) -> tuple[list[str], str]:
    """The parts of ``text`` inside ``opening...closing`` (case-insensitive, not nested) and the text around them."""
    lower = text.lower()
    inner: list[str] = []
    around: list[str] = []
    pos = 0
    while True:
        start = lower.find(opening, pos)
        end = lower.find(closing, start) if start >= 0 else -1
        if start < 0 or end < 0:
            break
        tag_end = text.find(">", start, end)
        inner.append(text[(tag_end + 1 if tag_end >= 0 else start + len(opening)):end])
        around.append(text[pos:start])
        pos = end + len(closing)
    around.append(text[pos:])
    return inner, "".join(around)


def find_logs(body: str) -> list[str]:
    """Candidate logs in an issue body: fenced blocks, then <details> and issue-form sections without fences."""
    blocks, outside = _split_fences(body.replace("\r\n", "\n")[:MAX_BODY].split("\n"))
    details, rest = _cut_between("\n".join(outside), "<details", "</details>")
    for part in details:
        blocks.append(_cut_between(part, "<summary", "</summary>")[1])
    # issue forms render each field as '### Label' and its text; a pasted log without fences is one
    section: list[str] | None = None
    for line in [*rest.split("\n"), "### end"]:
        if line.startswith("### "):
            if section:
                blocks.append("\n".join(section))
            section = []
        elif section is not None:
            section.append(line)
    return [log.strip("\n") for log in blocks if log.strip()]


def diagnose_logs(logs: Sequence[str], threshold: float) -> list[Report]:
    """The failed uploads among ``logs`` whose top cause reaches ``threshold``."""
    from espdiag.api import diagnose_text
    from espdiag.errors import EspdiagError
    from espdiag.rulecache import load_rules

    rules = load_rules()
    found = []
    for i, log in enumerate(logs, 1):
        try:
            report = diagnose_text(log, f"log {i}" if len(logs) > 1 else "log", rules)
        except EspdiagError:
            continue
        if report.verdict == "failure" and report.causes and report.causes[0].confidence >= threshold:
            found.append(report)
    return found


def comment_body(reports: Sequence[Report]) -> str:
    from espdiag.render import markdown

    return (f"{MARKER}\nThis looks like a failed ESP upload. espdiag's reading of the log:\n\n"
            + markdown.render(list(reports)))


class GitHub:
    def __init__(self, api: str, repo: str, token: str) -> None:
        self.api = api.rstrip("/")
        self.repo = repo
        self.token = token

    def request(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        req = urllib.request.Request(f"{self.api}/repos/{self.repo}{path}", data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "espdiag-triage",
            **({"Content-Type": "application/json"} if data is not None else {}),
        })
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def already_commented(self, number: int) -> bool:
        for page in range(1, 11):  # 1 000 comments: a new issue has few
            comments = self.request("GET", f"/issues/{number}/comments?per_page=100&page={page}")
            if not isinstance(comments, list):
                return False
            if any(MARKER in str(c.get("body", "")) for c in comments if isinstance(c, dict)):
                return True
            if len(comments) < 100:
                return False
        return False

    def comment(self, number: int, body: str) -> None:
        self.request("POST", f"/issues/{number}/comments", {"body": body})


def _issue(path: str) -> dict[str, Any] | None:
    with open(path, encoding="utf-8") as f:
        event = json.load(f)
    issue = event.get("issue") if isinstance(event, dict) else None
    if not isinstance(issue, dict) or isinstance(issue.get("pull_request"), dict):
        return None
    return issue


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m espdiag.triage", description=__doc__.split("\n\n")[0])
    p.add_argument("--threshold", type=float, default=0.5, help="least confidence of the top cause (default 0.5)")
    a = p.parse_args(argv)
    event_path = os.environ.get("GITHUB_EVENT_PATH")
    if not event_path:
        print("espdiag-triage: GITHUB_EVENT_PATH is not set (run it from the GitHub Action)", file=sys.stderr)
        return 2
    try:
        issue = _issue(event_path)
    except (OSError, ValueError) as e:
        print(f"espdiag-triage: cannot read the event: {e}", file=sys.stderr)
        return 2
    if issue is None:
        print("espdiag-triage: not an issue event; nothing to do")
        return 0
    logs = find_logs(str(issue.get("body") or ""))
    reports = diagnose_logs(logs, a.threshold)
    print(f"espdiag-triage: {len(logs)} candidate log(s), {len(reports)} failure(s) diagnosed at >= {a.threshold}"
          + "".join(f"; {r.causes[0].id} {r.causes[0].confidence:.2f}" for r in reports))
    if not reports:
        return 0
    gh = GitHub(os.environ.get("GITHUB_API_URL", "https://api.github.com"), os.environ.get("GITHUB_REPOSITORY", ""),
                os.environ.get("GITHUB_TOKEN", ""))
    number = int(issue.get("number", 0))
    try:
        if gh.already_commented(number):
            print("espdiag-triage: already commented on this issue")
            return 0
        gh.comment(number, comment_body(reports))
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"espdiag-triage: the GitHub API refused: {getattr(e, 'code', '')} {getattr(e, 'reason', e)}",
              file=sys.stderr)
        return 1
    print("espdiag-triage: commented")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The paste page's HTML. Every value that came from a log or a rule is escaped here, nowhere else.

No inline script or style (the Content-Security-Policy forbids both): behaviour is in
``static/app.js``, which only adds the copy button and file dropping; without it the page is a
plain form whose answer is rendered by the server.
"""

from __future__ import annotations

from html import escape

from espdiag import __version__
from espdiag.report import Report

_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/style.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header><h1><a href="/">espdiag</a></h1><p>Why did the ESP8266/ESP32 upload fail, and what to do next.</p></header>
<main>
"""
_FOOT = """</main>
<footer><p>espdiag {version}. Nothing you paste is stored or logged.
The same answer as JSON: <code>POST /api/v1/diagnose</code>.</p></footer>
</body>
</html>
"""


def _page(title: str, body: str) -> str:
    return _HEAD.format(title=escape(title)) + body + _FOOT.format(version=escape(__version__))


def _form(log: str = "", error: str = "") -> str:
    alert = f'<p class="error" role="alert">{escape(error)}</p>\n' if error else ""
    return f"""<form method="post" action="/" enctype="multipart/form-data" id="paste-form">
{alert}<label for="log">Upload log (paste the whole output, or drop a file on the box)</label>
<textarea id="log" name="log" rows="14" spellcheck="false" autocomplete="off">{escape(log)}</textarea>
<label for="file">…or choose a log file</label>
<input type="file" id="file" name="file" accept=".log,.txt,text/plain">
<button type="submit" id="diagnose">Diagnose</button>
</form>
"""


def form_page(error: str = "") -> str:
    return _page("espdiag: explain a failed ESP upload", _form(error=error))


def error_page(status: str, message: str) -> str:
    return _page(f"espdiag: {status}", f'<p class="error" role="alert">{escape(status)}: {escape(message)}</p>\n'
                 + _form())


def _link(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{escape(url)}" rel="noopener noreferrer nofollow">{escape(url)}</a>'
    return escape(url)


def _cause(rank: int, cause: object) -> str:
    from espdiag.ranking import Cause

    assert isinstance(cause, Cause)
    width = max((len(str(e.line)) for e in cause.evidence), default=1)
    evidence = "\n".join(f"{e.line:>{width}} | {e.text}" for e in cause.evidence)
    parts = [f'<section class="cause" id="cause-{rank}">',
             f'<h3><span class="confidence">{round(cause.confidence * 100)} %</span> '
             f'<span class="cause-title">{escape(cause.title)}</span> <code class="cause-id">{escape(cause.id)}</code></h3>']
    if cause.explain:
        parts.append(f"<p>{escape(cause.explain)}</p>")
    if evidence:
        parts.append(f'<pre class="evidence" aria-label="evidence lines from the log">{escape(evidence)}</pre>')
    if cause.fixes:
        parts.append('<ol class="fixes">' + "".join(f"<li>{escape(f)}</li>" for f in cause.fixes) + "</ol>")
    if cause.docs:
        parts.append('<ul class="docs">' + "".join(f"<li>{_link(d)}</li>" for d in cause.docs) + "</ul>")
    parts.append("</section>")
    return "\n".join(parts) + "\n"


def result_page(report: Report, reply: str, log: bytes) -> str:
    causes = "".join(_cause(i, c) for i, c in enumerate(report.causes, 1))
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    checklist = "".join(f"<li>{escape(c)}</li>" for c in report.checklist)
    body = ['<section id="result" aria-live="polite">',
            f'<h2 id="verdict" class="verdict-{escape(report.verdict)}">{escape(report.summary)}</h2>']
    if notes:
        body.append(f'<ul class="notes">{notes}</ul>')
    body.append(causes or "")
    if checklist:
        body.append(f'<h3>Things to check</h3><ol class="checklist">{checklist}</ol>')
    body.append('<h3><label for="markdown">Forum reply (Markdown)</label></h3>')
    body.append(f'<textarea id="markdown" rows="10" readonly>{escape(reply)}</textarea>')
    body.append('<p><button type="button" id="copy" hidden>Copy as forum reply</button> '
                '<span id="copy-status" role="status"></span></p>')
    body.append("</section>\n")
    text = log.decode("utf-8", "replace")
    return _page(f"espdiag: {report.summary}", "\n".join(body) + _form(text))

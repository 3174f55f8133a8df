"""The WSGI application: the paste page, the JSON API, health and schema.

Routes: ``GET /`` (the page), ``POST /`` (the page's form, answered as HTML: the page works without
JavaScript), ``POST /api/v1/diagnose`` (``text/plain`` log, or JSON ``{"log": ..., "format": ...}``),
``GET /api/v1/schema``, ``GET /healthz``, ``GET /static/<file>``.

Pasted logs hold paths and user names: nothing of a request body is stored or logged. Bodies over
``MAX_BODY`` are refused with 413 before they are read; diagnosis time is linear in the body, so the
cap bounds the time of every request too.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import urllib.parse
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from espdiag import __version__
from espdiag.api import diagnose_bytes
from espdiag.errors import EspdiagError
from espdiag.render import json_out, markdown
from espdiag.rules import RuleSet
from espdiag.serve import page

MAX_BODY = 10 * 1024 * 1024
FORMATS = ("json", "markdown", "text")
SECURITY_HEADERS = [
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
     "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
_STATIC = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
StartResponse = Callable[..., Any]


class HTTPError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Response:
    def __init__(self, body: bytes | str, content_type: str, status: str = "200 OK") -> None:
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = content_type
        self.status = status


def _json(value: Any, status: str = "200 OK") -> Response:
    return Response(json.dumps(value, indent=2, ensure_ascii=False) + "\n", "application/json; charset=utf-8", status)


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HTTPError("400 Bad Request", "invalid Content-Length") from None
    if length > MAX_BODY:
        raise HTTPError("413 Content Too Large", f"the body is over {MAX_BODY // (1024 * 1024)} MB")
    stream = environ["wsgi.input"]
    body: bytes = stream.read(length) if length else stream.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise HTTPError("413 Content Too Large", f"the body is over {MAX_BODY // (1024 * 1024)} MB")
    return body


def _media_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()


class App:
    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.route(environ)
        except HTTPError as e:
            if str(environ.get("PATH_INFO", "")).startswith("/api/"):
                response = _json({"error": e.message}, e.status)
            else:
                response = Response(page.error_page(e.status, e.message), "text/html; charset=utf-8", e.status)
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))), *SECURITY_HEADERS]
        start_response(response.status, headers)
        return [response.body]

    def route(self, environ: dict[str, Any]) -> Response:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", "/"))
        routes: dict[str, dict[str, Callable[[dict[str, Any]], Response]]] = {
            "/": {"GET": lambda _e: Response(page.form_page(), "text/html; charset=utf-8"), "POST": self.form_post},
            "/api/v1/diagnose": {"POST": self.api_diagnose},
            "/api/v1/schema": {"GET": lambda _e: Response(_schema(), "application/schema+json")},
            "/healthz": {"GET": lambda _e: _json({"status": "ok", "version": __version__})},
        }
        if path.startswith("/static/") and method in ("GET", "HEAD"):
            return _static(path.removeprefix("/static/"))
        handlers = routes.get(path)
        if handlers is None:
            raise HTTPError("404 Not Found", "no such page")
        handler = handlers.get("GET" if method == "HEAD" else method)
        if handler is None:
            raise HTTPError("405 Method Not Allowed", f"{method} is not allowed here")
        return handler(environ)

    def diagnose(self, log: bytes) -> Any:
        try:
            # the same name as a log piped to the command line, so the JSON is identical
            return diagnose_bytes(log, "<stdin>", self.rules)
        except EspdiagError as e:
            raise HTTPError("422 Unprocessable Content", str(e).replace("<stdin>: ", "", 1)) from None

    def api_diagnose(self, environ: dict[str, Any]) -> Response:
        media = _media_type(environ)
        body = _read_body(environ)
        fmt = "json"
        if media == "application/json":
            try:
                request = json.loads(body)
            except (ValueError, RecursionError):
                raise HTTPError("400 Bad Request", "the body is not valid JSON") from None
            if not isinstance(request, dict) or not isinstance(request.get("log"), str):
                raise HTTPError("400 Bad Request", 'expected {"log": "<the upload log>", "format": "json"}')
            fmt = request.get("format", "json")
            if fmt not in FORMATS:
                raise HTTPError("400 Bad Request", f"format must be one of {', '.join(FORMATS)}")
            log = request["log"].encode("utf-8", "surrogatepass")
        elif media in ("text/plain", "application/octet-stream", ""):
            log = body
        else:
            raise HTTPError("415 Unsupported Media Type", "send the log as text/plain or as JSON {\"log\": ...}")
        report = self.diagnose(log)
        if fmt == "markdown":
            return Response(markdown.render([report]), "text/markdown; charset=utf-8")
        if fmt == "text":
            from espdiag.render import text

            return Response(text.render([report], False), "text/plain; charset=utf-8")
        return Response(json_out.render([report]), "application/json; charset=utf-8")

    def form_post(self, environ: dict[str, Any]) -> Response:
        log = _form_log(_media_type(environ), str(environ.get("CONTENT_TYPE", "")), _read_body(environ))
        if not log.strip():
            return Response(page.form_page(error="Paste a log or choose a file first."), "text/html; charset=utf-8",
                            "400 Bad Request")
        report = self.diagnose(log)
        return Response(page.result_page(report, markdown.render([report]), log), "text/html; charset=utf-8")


def _form_log(media: str, content_type: str, body: bytes) -> bytes:
    """The log from the page's form: the chosen file when there is one, else the text box."""
    if media == "application/x-www-form-urlencoded":
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
        return "".join(fields.get("log", [""])[:1]).encode("utf-8")
    if media != "multipart/form-data":
        raise HTTPError("415 Unsupported Media Type", "the form must be posted as a web form")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
    text, upload = b"", b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if name == "log":
            text = payload
        elif name == "file":
            upload = payload
    return upload or text


def _schema() -> bytes:
    return resources.files("espdiag").joinpath("schema.json").read_bytes()


def _static(name: str) -> Response:
    if name not in _STATIC:  # a fixed list: no path from the request reaches the file system
        raise HTTPError("404 Not Found", "no such file")
    data = resources.files("espdiag.serve").joinpath(f"static/{name}").read_bytes()
    return Response(data, _STATIC[name])


def make_app(rules: RuleSet | None = None) -> App:
    if rules is None:
        from espdiag.rulecache import load_rules

        rules = load_rules()
    return App(rules)

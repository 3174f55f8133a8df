"""`espdiag serve`: the JSON API against the command line, its limits and headers, and the page."""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, run_main

from espdiag.serve import app as serve_app

LOGS = sorted(p for p in SAMPLES.glob("*") if p.suffix in (".log", ".md"))
FAIL_LOG = (SAMPLES / "idf-flash-no-data.log").read_bytes()


@pytest.fixture(scope="module")
def app(rules: Any) -> serve_app.App:
    return serve_app.App(rules)


def call(app: serve_app.App, method: str, path: str, body: bytes = b"", content_type: str = "",
         length: int | None = None) -> tuple[int, dict[str, str], bytes]:
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body) if length is None else length), "wsgi.input": io.BytesIO(body),
    }
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = int(status.split()[0]), dict(headers)

    out = b"".join(app(environ, start_response))
    return got["status"], got["headers"], out


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.name)
def test_api_answers_what_the_command_line_prints(app, log: Path, capsys, monkeypatch) -> None:
    data = log.read_bytes()
    _code, cli, _err = run_main(["--format", "json"], capsys, monkeypatch, stdin=data)
    status, headers, body = call(app, "POST", "/api/v1/diagnose", data, "text/plain; charset=utf-8")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body.decode() == cli


def test_api_json_request_and_markdown_format(app, capsys, monkeypatch) -> None:
    _code, cli, _err = run_main(["--format", "markdown"], capsys, monkeypatch, stdin=FAIL_LOG)
    request = json.dumps({"log": FAIL_LOG.decode(), "format": "markdown"}).encode()
    status, headers, body = call(app, "POST", "/api/v1/diagnose", request, "application/json")
    assert status == 200 and headers["Content-Type"].startswith("text/markdown")
    assert body.decode() == cli
    status, _h, body = call(app, "POST", "/api/v1/diagnose", json.dumps({"log": FAIL_LOG.decode()}).encode(),
                            "application/json")
    assert status == 200 and json.loads(body)["verdict"] == "failure"


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b'["a list"]', "application/json", 400),
    (b'{"log": 5}', "application/json", 400),
    (b'{"log": "x", "format": "pickle"}', "application/json", 400),
    (b"<xml/>", "application/xml", 415),
    (random.Random(1).randbytes(4096), "text/plain", 422),
])
def test_api_refuses_bad_requests_with_a_json_error(app, body: bytes, content_type: str, status: int) -> None:
    got, headers, out = call(app, "POST", "/api/v1/diagnose", body, content_type)
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(out)["error"]


def test_bodies_over_10_mb_get_413_without_being_read(app) -> None:
    class Unreadable(io.BytesIO):
        def read(self, *a: Any) -> bytes:
            raise AssertionError("the body was read")

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/v1/diagnose", "CONTENT_TYPE": "text/plain",
               "CONTENT_LENGTH": str(10 * 1024 * 1024 + 1), "wsgi.input": Unreadable()}
    statuses: list[str] = []
    app(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["413 Content Too Large"]
    # a body without a length is read up to the cap only
    status, _h, _b = call(app, "POST", "/api/v1/diagnose", b"x" * (10 * 1024 * 1024 + 10), "text/plain", length=0)
    assert status == 413


def test_schema_health_and_unknown_routes(app) -> None:
    status, _headers, body = call(app, "GET", "/api/v1/schema")
    assert status == 200 and json.loads(body)["$schema"].startswith("https://json-schema.org/")
    assert call(app, "GET", "/healthz")[0] == 200
    assert call(app, "GET", "/nope")[0] == 404
    assert call(app, "GET", "/api/v1/diagnose")[0] == 405
    assert call(app, "GET", "/static/../../etc/passwd")[0] == 404
    assert call(app, "GET", "/static/app.js")[1]["Content-Type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/v1/schema", "/nope", "/static/style.css"])
def test_security_headers_on_every_answer(app, path: str) -> None:
    _s, headers, _b = call(app, "GET", path)
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"


def _multipart(fields: dict[str, tuple[str | None, bytes]]) -> tuple[bytes, str]:
    boundary = "----espdiagtestboundary"
    parts = []
    for name, (filename, value) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_the_form_works_without_javascript(app) -> None:
    body, ctype = _multipart({"log": (None, FAIL_LOG), "file": ("", b"")})
    status, headers, page = call(app, "POST", "/", body, ctype)
    html = page.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert 'id="verdict" class="verdict-failure"' in html
    assert "<code class=\"cause-id\">port-missing</code>" in html
    assert 'id="markdown"' in html
    # an uploaded file wins over the text box
    body, ctype = _multipart({"log": (None, b""), "file": ("up.log", FAIL_LOG)})
    assert "verdict-failure" in call(app, "POST", "/", body, ctype)[2].decode()
    # urlencoded too, and an empty form asks again
    assert "verdict-failure" in call(app, "POST", "/", urllib.parse.urlencode({"log": FAIL_LOG}).encode(),
                                     "application/x-www-form-urlencoded")[2].decode()
    status, _h, page = call(app, "POST", "/", b"log=", "application/x-www-form-urlencoded")
    assert status == 400 and 'role="alert"' in page.decode()


def test_log_text_is_escaped_in_the_page(app) -> None:
    hostile = FAIL_LOG.replace(b"/dev/ttyACM0", b"<script>alert(1)</script><img src=x onerror=alert(2)>")
    body, ctype = _multipart({"log": (None, hostile)})
    html = call(app, "POST", "/", body, ctype)[2].decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_nothing_of_the_log_is_logged(app, caplog) -> None:
    secret = b"/home/alice-secret-user/project/build/fw.bin"
    caplog.set_level(logging.DEBUG)
    call(app, "POST", "/api/v1/diagnose", FAIL_LOG + b"\nwrite_flash 0x0 " + secret + b"\n", "text/plain")
    assert "alice-secret-user" not in caplog.text


# ------------------------------------------------------------------ a real server and a real browser
@pytest.fixture(scope="module")
def server(app) -> Iterator[str]:
    waitress = pytest.importorskip("waitress")
    srv = waitress.create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.effective_port}"
    finally:
        srv.close()


def test_waitress_serves_the_api(server: str) -> None:
    import urllib.request

    req = urllib.request.Request(server + "/api/v1/diagnose", data=FAIL_LOG, headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert json.loads(resp.read())["causes"][0]["id"] == "port-missing"


def _browser() -> Any:
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no chromium/chromedriver here (Debian: apt-get install chromium chromium-driver; .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=420,900"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def test_a_real_browser_pastes_sees_the_cause_and_copies_the_reply(server: str, tmp_path: Path,
                                                                   capsys, monkeypatch) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait as Wait

    browser = _browser()
    try:
        browser.get(server + "/")
        box = browser.find_element(By.ID, "log")
        # a paste lands in the box as one input event: the same as setting its value
        browser.execute_script("arguments[0].value = arguments[1];", box, FAIL_LOG.decode())
        browser.find_element(By.ID, "diagnose").click()
        Wait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#cause-1 .cause-title"))
        title = browser.find_element(By.CSS_SELECTOR, "#cause-1 .cause-title").text
        assert title == "The selected serial port does not exist"
        assert "failed" in browser.find_element(By.ID, "verdict").text
        browser.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": server, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        copy = browser.find_element(By.ID, "copy")
        assert copy.is_displayed()  # the script un-hides it
        copy.click()
        status = browser.find_element(By.ID, "copy-status")
        Wait(browser, 20).until(lambda _b: status.text)  # the clipboard answers asynchronously
        assert status.text.startswith("Copied")
        copied = browser.execute_async_script(
            "const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, e => done('ERR ' + e));")
        _code, cli, _err = run_main(["--format", "markdown"], capsys, monkeypatch, stdin=FAIL_LOG)
        assert copied.strip() == cli.strip()
        shot = tmp_path / "serve-page.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 1000
        artefacts = Path(__file__).resolve().parent.parent / ".test-artifacts"
        artefacts.mkdir(exist_ok=True)
        (artefacts / "serve-page.png").write_bytes(shot.read_bytes())
    finally:
        browser.quit()

"""``espdiag serve``: the paste page and JSON API (espdiag/serve/) under the waitress WSGI server."""

from __future__ import annotations

import sys

from espdiag.errors import ExitCode
from espdiag.rules import RuleSet
from espdiag.serve.app import MAX_BODY, make_app


def serve(host: str, port: int, threads: int, rules: RuleSet) -> int:
    try:
        import waitress
    except ImportError:
        print("espdiag serve: needs the waitress WSGI server: pip install 'espdiag[serve]'", file=sys.stderr)
        return ExitCode.USAGE
    app = make_app(rules)
    shown = f"[{host}]" if ":" in host else host
    print(f"espdiag serve: http://{shown}:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        waitress.serve(
            app, host=host, port=port, threads=threads, ident="espdiag",
            # waitress refuses bigger bodies itself; the app answers 413 with a message first
            max_request_body_size=MAX_BODY + 64 * 1024, channel_timeout=60, clear_untrusted_proxy_headers=True,
            _quiet=True,
        )
    except OSError as e:
        print(f"espdiag serve: cannot listen on {host}:{port}: {e.strerror or e}", file=sys.stderr)
        return ExitCode.USAGE
    return ExitCode.OK

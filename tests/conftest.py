from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"

# the suite never reads or writes the user's own cache folder
os.environ.setdefault("ESPDIAG_CACHE_DIR", tempfile.mkdtemp(prefix="espdiag-test-cache-"))


@pytest.fixture(scope="session")
def rules():
    from espdiag.rules import load_rules

    return load_rules()


# The virtual board's fixtures (esptool_versions, esptool_log) for every test file;
# see tests/virtual_board/fixtures.py.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
pytest_plugins = ["virtual_board.fixtures"]



class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def run_main(argv: list[str], capsys, monkeypatch, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run ``espdiag.main.main(argv)`` in-process with ``stdin``: (exit code, stdout, stderr)."""
    from espdiag.main import main

    monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def rules():
    from espdiag.rules import load_rules

    return load_rules()


# The virtual board's fixtures (esptool_versions, esptool_log) for every test file;
# see tests/virtual_board/fixtures.py.
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))
pytest_plugins = ["virtual_board.fixtures"]

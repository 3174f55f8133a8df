#!/usr/bin/env bash
# Install the pinned esptool versions (or the ones given as arguments) into
# <repo>/.esptool-versions/<version>, each with `pip install --target`, unless
# already there.  Select one at run time with PYTHONPATH=.esptool-versions/<v>.
#   tests/virtual_board/install_esptools.sh            # 3.3.3 4.8.1 5.6.0
#   PYTHON=python3.11 tests/virtual_board/install_esptools.sh 4.8.1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
"$PY" - "$here/.." "$@" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[1])
from virtual_board.harness import PINNED_VERSIONS, ensure_esptool, esptool_dir
for v in sys.argv[2:] or PINNED_VERSIONS:
    print(f"esptool {v}: {ensure_esptool(v, python=sys.executable, quiet=False)}", flush=True)
PYEOF

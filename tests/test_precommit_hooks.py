"""The shipped .pre-commit-hooks.yaml, run for real with `pre-commit try-repo` in a scratch git repository.

It runs the committed HEAD (commit before running it by hand). pre-commit builds a virtual environment for the hook and installs espdiag into it from PyPI-resolved
dependencies, so this needs network access the first time; every subprocess has a time limit, and
the test is skipped (not failed) when the environment cannot be installed for lack of network.
HOME and PRE_COMMIT_HOME point into tmp_path so nothing outside the test is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, SAMPLES

TIMEOUT = 600  # seconds per pre-commit run: a first run installs a virtual environment
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_manifest_shape() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["espdiag"]["entry"] == "espdiag check"
    assert hooks["espdiag"]["language"] == "python"
    assert hooks["espdiag-rules"]["entry"] == "espdiag rules --test"
    for hook in hooks.values():
        assert {"id", "name", "description", "entry", "language", "files"} <= set(hook)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    if not (ROOT / ".git").exists():
        pytest.skip("try-repo needs espdiag as a git repository (not an unpacked sdist)")
    base = tmp_path_factory.mktemp("precommit")
    repo = base / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "HOME": str(base / "home"),
        "PRE_COMMIT_HOME": str(base / "cache"),
        "PRE_COMMIT_COLOR": "never",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    (base / "home").mkdir()
    shutil.copy(SAMPLES / "ck-cloud-read-zero.log", repo / "x.log")
    shutil.copy(SAMPLES / "esptool4-success.log", repo / "ok.log")
    rules = repo / "espdiag-rules"
    rules.mkdir()
    (rules / "my-rule.yaml").write_text(
        "id: my-rule\ncause: boot-mode\ntitle: t\nwhen:\n  - event: wrong_boot_mode\nfixes: [do it]\n"
        "docs: https://example.com\nexamples:\n"
        '  - match: "A fatal error occurred: Failed to connect to ESP32: Wrong boot mode detected (0x13)!"\n'
        '  - no_match: "Hash of data verified."\n')
    subprocess.run(["git", "init", "-q"], cwd=repo, env=env, check=True, timeout=60)
    subprocess.run(["git", "add", "."], cwd=repo, env=env, check=True, timeout=60)
    return repo, env


def try_repo(scratch: tuple[Path, dict[str, str]], hook: str, *files: str) -> subprocess.CompletedProcess[str]:
    repo, env = scratch
    # the committed HEAD, as in a CI clone: uncommitted work in a shared tree would make a shadow commit
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()
    proc = subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), hook, "--ref", head,
                           "--files", *files], cwd=repo, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    if proc.returncode not in (0, 1) or "An unexpected error has occurred" in proc.stdout + proc.stderr:
        log = Path(env["PRE_COMMIT_HOME"]) / "pre-commit.log"
        detail = log.read_text() if log.exists() else proc.stdout + proc.stderr
        if any(s in detail for s in ("Could not find a version", "NewConnectionError", "Temporary failure in name",
                                     "Network is unreachable", "No matching distribution")):
            pytest.skip("pre-commit could not install the hook environment (no network)")
        pytest.fail(f"pre-commit try-repo crashed:\n{detail[-4000:]}")
    return proc


def test_hook_fails_on_a_failed_upload_log(scratch) -> None:
    proc = try_repo(scratch, "espdiag", "x.log", "ok.log")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"x\.log: failure boot-mode \(0\.\d\d\)", proc.stdout)  # calibrated: refits move it
    assert "ok.log: success" in proc.stdout


def test_hook_passes_on_a_successful_upload_log(scratch) -> None:
    proc = try_repo(scratch, "espdiag", "ok.log")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_rules_hook_runs_the_examples(scratch) -> None:
    proc = try_repo(scratch, "espdiag-rules", "espdiag-rules/my-rule.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout

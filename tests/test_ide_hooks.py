"""The IDE recipes in the README wrap a real upload command with `espdiag run --` and diagnose it.

Neither PlatformIO nor the Arduino IDE runs here, so each recipe is applied the way its tool
applies it (SCons's `env.Replace`, arduino-builder's `{placeholder}` substitution) and the
resulting command line is run through a shell with a stand-in uploader that prints a real failure.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IDE = ROOT / "tests" / "data" / "ide"
README = (ROOT / "README.md").read_text()


class SConsEnv(dict):  # type: ignore[type-arg]
    def Replace(self, **kw: str) -> None:
        self.update(kw)

    def subst(self, text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: str(self.get(m.group(1), "")), text)


def _run_shell(command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120, env=env)


def test_readme_shows_the_tested_platformio_script() -> None:
    script = (IDE / "espdiag_upload.py").read_text()
    assert script.strip() in README


def test_platformio_extra_script_wraps_the_upload_and_diagnoses_it() -> None:
    # espressif32's UPLOADCMD, with the stand-in uploader as $UPLOADER
    env = SConsEnv(UPLOADCMD='"$PYTHONEXE" "$UPLOADER" $UPLOADERFLAGS $SOURCE', PYTHONEXE=sys.executable,
                   UPLOADER=str(IDE / "fake_esptool.py"), UPLOADERFLAGS="--chip esp32s3 --port /dev/ttyACM0",
                   SOURCE=".pio/build/esp32/firmware.bin")
    code = compile((IDE / "espdiag_upload.py").read_text(), "espdiag_upload.py", "exec")
    exec(code, {"Import": lambda name: None, "env": env})
    exec(code, {"Import": lambda name: None, "env": env})  # a second load does not wrap twice
    assert env["UPLOADCMD"].startswith("espdiag run -- ") and env["UPLOADCMD"].count("espdiag") == 1
    proc = _run_shell(env.subst(env["UPLOADCMD"]))
    assert proc.returncode == 2  # the upload's own exit code
    assert "Hash of data" not in proc.stdout and "Could not open /dev/ttyACM0" in proc.stdout
    assert "port-missing" in proc.stderr or "does not exist" in proc.stderr


def test_arduino_platform_local_recipe_wraps_the_upload() -> None:
    m = re.search(r"^tools\.esptool_py\.upload\.pattern=(.+)$", README, re.MULTILINE)
    assert m, "the README gives the platform.local.txt line"
    pattern = m.group(1)
    values = {"path": str(Path(sys.executable).parent), "cmd": Path(sys.executable).name,
              "upload.pattern_args": shlex.quote(str(IDE / "fake_esptool.py")) + " --port COM5"}
    command = re.sub(r"\{([\w.]+)\}", lambda mm: values[mm.group(1)], pattern)
    proc = _run_shell(command)
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr

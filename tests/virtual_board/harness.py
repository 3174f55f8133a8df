"""Run the real esptool (a pinned version, from its own target dir) against a
:class:`~.board.VirtualBoard` with a named fault, and capture its log.

Each esptool version lives in its own ``pip install --target`` directory under
``<repo>/.esptool-versions/<version>`` (gitignored) and is selected by putting
that directory on ``PYTHONPATH``; see :func:`ensure_esptool` and
``install_esptools.sh``.

Typical use::

    from tests.virtual_board.harness import run_write_flash
    log = run_write_flash("4.8.1", "normal-boot", "esp32")
    assert "Wrong boot mode detected" in log.output
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .board import VirtualBoard
from .faults import Fault, HostFault

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_DIR = Path(os.environ.get("ESPDIAG_ESPTOOL_VERSIONS_DIR", REPO_ROOT / ".esptool-versions"))
PINNED_VERSIONS: tuple[str, ...] = ("3.3.3", "4.8.1", "5.6.0")
RUNNER = Path(__file__).with_name("esptool_runner.py")
MISSING_PORT = "/dev/ttyUSB_nonexistent"
IMAGE_OFFSET = "0x10000"
NOBODY_UID = 65534


@dataclass
class CompletedLog:
    """What one esptool run printed (stdout and stderr merged, in order)."""

    returncode: int
    output: str
    command: list[str]  # the argv that was executed
    esptool_command: str  # the same esptool invocation as a user would type it
    version: str
    fault: str
    chip: str
    duration: float
    timed_out: bool = False
    board_boots: list[str] = field(default_factory=list)

    @property
    def output_text(self) -> str:  # name used in the original brief
        return self.output


# ---------------------------------------------------------------- esptool installs


def esptool_dir(version: str) -> Path:
    return VERSIONS_DIR / version


def is_installed(version: str) -> bool:
    d = esptool_dir(version)
    return (d / "esptool").is_dir() or (d / "esptool.py").is_file()


def installed_versions(candidates: Sequence[str] = PINNED_VERSIONS) -> list[str]:
    return [v for v in candidates if is_installed(v)]


def ensure_esptool(version: str, python: str | None = None, quiet: bool = True) -> Path:
    """Install ``esptool==version`` into ``.esptool-versions/<version>`` unless present.

    Uses ``pip install --target`` into a scratch dir, renamed into place when
    complete, under a file lock, so concurrent callers are safe.
    """
    target = esptool_dir(version)
    if is_installed(version):
        return target
    VERSIONS_DIR.mkdir(parents=True, exist_ok=True)
    with open(VERSIONS_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_installed(version):
            return target
        scratch = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=VERSIONS_DIR))
        cmd = [
            python or sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(scratch),
            f"esptool=={version}",
        ]
        if quiet:
            cmd.insert(4, "--quiet")
        try:
            subprocess.run(cmd, check=True)
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)
    return target


def major(version: str) -> int:
    return int(version.split(".")[0])


# ---------------------------------------------------------------- command lines


def make_test_image(path: Path, size: int = 96 * 1024, seed: int = 8266) -> Path:
    """A deterministic, moderately compressible 'firmware' blob (~40 % after zlib)."""
    rng = random.Random(seed)
    words = [bytes(rng.randrange(256) for _ in range(rng.randrange(2, 9))) for _ in range(300)]
    blob = bytearray()
    while len(blob) < size:
        blob += rng.choice(words)
    # deliberately no 0xE9 image magic: esptool would then parse and check an image header
    blob[0] = 0x00
    path.write_bytes(bytes(blob[:size]))
    return path


def write_flash_args(
    version: str,
    chip: str,
    image: str | os.PathLike[str],
    *,
    offset: str = IMAGE_OFFSET,
    no_stub: bool = False,
    connect_attempts: int | None = 2,
    flash_size: str | None = "detect",
) -> list[str]:
    """esptool arguments (no ``--port``) for a typical write, in the version's spelling.

    v5 renamed sub-commands and their options to kebab-case (``write-flash``,
    ``--flash-size``); v3/v4 use ``write_flash`` / ``--flash_size``.  The global
    options (``--chip``, ``--no-stub``, ``--connect-attempts``) are spelled the
    same in all three.
    """
    v5 = major(version) >= 5
    args = ["--chip", chip]
    if connect_attempts is not None:
        args += ["--connect-attempts", str(connect_attempts)]
    if no_stub:
        args.append("--no-stub")
    args.append("write-flash" if v5 else "write_flash")
    if flash_size:
        args += ["--flash-size" if v5 else "--flash_size", flash_size]
    args += [offset, str(image)]
    return args


def _insert_port(args: Sequence[str], port: str) -> list[str]:
    args = list(args)
    if "--port" in args or "-p" in args:
        return [a.replace("{port}", port) for a in args]
    return ["--port", port, *args]


def _env(version: str, extra_home: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESPTOOL_", "PYTHON"))}
    env["PYTHONPATH"] = str(esptool_dir(version))
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("COLUMNS", "100")
    if extra_home:
        env["HOME"] = extra_home
    return env


def user_command(version: str, args: Sequence[str]) -> str:
    """How a user would have typed this run (what goes into ``.cmd`` files)."""
    prog = "esptool.py" if major(version) < 5 else "esptool"
    return shlex.join([prog, *args])


# ---------------------------------------------------------------- running


def _run(
    argv: list[str], env: dict[str, str], timeout: float, cwd: str | os.PathLike[str] | None = None
) -> tuple[int, str, float, bool]:
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        out, rc, timed_out = proc.stdout, proc.returncode, False
    except subprocess.TimeoutExpired as e:
        out = e.stdout or b""
        rc, timed_out = -9, True
    text = out.decode("utf-8", errors="replace") if isinstance(out, bytes) else out
    return rc, text, time.monotonic() - t0, timed_out


def _esptool_argv(python: str, args: list[str], fast_rfc2217: bool) -> list[str]:
    if fast_rfc2217:
        return [python, str(RUNNER), *args]
    return [python, "-m", "esptool", *args]


def run_esptool(
    esptool_args: Sequence[str],
    fault: str | Fault | HostFault,
    chip: str,
    timeout: float = 60.0,
    *,
    version: str = PINNED_VERSIONS[-1],
    python: str | None = None,
    protocol: str = "rfc2217",
    fast_rfc2217: bool = True,
    board_options: dict[str, object] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> CompletedLog:
    """Run esptool ``esptool_args`` against a board with ``fault`` and capture its log.

    ``esptool_args`` must not contain the port: ``--port <url>`` is put in front
    (or ``{port}`` placeholders are filled in if ``--port`` is present).

    ``fault`` is a board :class:`Fault` (a virtual board is started) or a
    :class:`HostFault` (no board; the port is a real device path that is
    missing / exclusively locked / not accessible).  Raises
    :class:`HostFaultUnavailable` when a host fault cannot be staged here.

    ``fast_rfc2217`` runs esptool through ``esptool_runner.py`` which only
    shortens pyserial's RFC 2217 acknowledgement polling (see that module);
    with ``False`` the run is plain ``python -m esptool`` (about 0.2 s per
    command).
    """
    python = python or sys.executable
    if not is_installed(version):
        raise FileNotFoundError(f"esptool {version} is not installed in {esptool_dir(version)}")
    name = fault.value if isinstance(fault, (Fault, HostFault)) else str(fault)
    if name in {h.value for h in HostFault}:
        return _run_host_fault(HostFault(name), esptool_args, chip, timeout, version, python, fast_rfc2217, cwd)

    board = VirtualBoard(chip, name, protocol=protocol, **(board_options or {}))  # type: ignore[arg-type]
    with board:
        args = _insert_port(esptool_args, board.url)
        argv = _esptool_argv(python, args, fast_rfc2217 and protocol == "rfc2217")
        rc, out, dt, timed_out = _run(argv, _env(version), timeout, cwd)
        boots = list(board.boots)
    return CompletedLog(rc, out, argv, user_command(version, args), version, name, chip, dt, timed_out, boots)


def run_write_flash(
    version: str,
    fault: str | Fault | HostFault,
    chip: str,
    *,
    no_stub: bool = False,
    image: Path | None = None,
    timeout: float = 60.0,
    connect_attempts: int | None = 2,
    **kwargs: object,
) -> CompletedLog:
    """The common case: ``write_flash --flash_size detect 0x10000 app.bin``.

    esptool runs in a scratch directory holding ``app.bin`` (or a copy of
    ``image``), so the command line shows a short relative path.
    """
    with _image_dir() as d:
        if image is None:
            make_test_image(d / "app.bin")
        else:
            shutil.copyfile(image, d / "app.bin")
        (d / "app.bin").chmod(0o644)
        args = write_flash_args(version, chip, "app.bin", no_stub=no_stub, connect_attempts=connect_attempts)
        return run_esptool(args, fault, chip, timeout, version=version, cwd=d, **kwargs)  # type: ignore[arg-type]


@dataclass
class StagedRun:
    """An esptool write ready to run against a live board: run ``argv`` with ``env`` in ``cwd``."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    board: VirtualBoard


@contextlib.contextmanager
def staged_write_flash(
    version: str, fault: str | Fault, chip: str, *, no_stub: bool = False, python: str | None = None
) -> Iterator[StagedRun]:
    """Like :func:`run_write_flash` for a board fault, but the caller runs esptool itself.

    For wrapping esptool in another program (``espdiag run -- <argv>``): the
    board is up and ``app.bin`` is in ``cwd`` while the context is open.
    """
    if not is_installed(version):
        raise FileNotFoundError(f"esptool {version} is not installed in {esptool_dir(version)}")
    name = fault.value if isinstance(fault, Fault) else str(fault)
    with _image_dir() as d, VirtualBoard(chip, name) as board:
        make_test_image(d / "app.bin")
        args = _insert_port(write_flash_args(version, chip, "app.bin", no_stub=no_stub), board.url)
        yield StagedRun(_esptool_argv(python or sys.executable, args, True), _env(version), d, board)


@contextlib.contextmanager
def _image_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="vboard-img-"))
    try:
        d.chmod(0o755)  # readable for the unprivileged user of the permission fault
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- host-side faults


class HostFaultUnavailable(RuntimeError):
    """The host fault cannot be staged on this machine (reason in the message)."""


@contextlib.contextmanager
def _pty_slave() -> Iterator[str]:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        yield path
    finally:
        os.close(slave)
        os.close(master)


def _nobody_prefix(python: str, version: str) -> tuple[list[str], str]:
    """argv prefix that drops to uid/gid 65534, plus a python it can execute."""
    if os.geteuid() != 0:
        raise HostFaultUnavailable("needs root to make a device node the test user cannot open")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise HostFaultUnavailable("setpriv (util-linux) not found")
    prefix = [setpriv, f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups", "--"]
    for py in (python, "/usr/bin/python3"):
        probe = subprocess.run(
            [*prefix, py, "-c", "import esptool"],
            env=_env(version, "/tmp"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        if probe.returncode == 0:
            return prefix, py
    raise HostFaultUnavailable(f"no python that uid {NOBODY_UID} can run esptool {version} with")


def _run_host_fault(
    fault: HostFault,
    esptool_args: Sequence[str],
    chip: str,
    timeout: float,
    version: str,
    python: str,
    fast_rfc2217: bool,
    cwd: str | os.PathLike[str] | None = None,
) -> CompletedLog:
    env = _env(version)
    if fault is HostFault.PORT_MISSING:
        args = _insert_port(esptool_args, MISSING_PORT)
        argv = _esptool_argv(python, args, fast_rfc2217)
        rc, out, dt, to = _run(argv, env, timeout, cwd)
        return CompletedLog(rc, out, argv, user_command(version, args), version, fault.value, chip, dt, to)

    if fault is HostFault.PORT_BUSY and major(version) < 4:
        raise HostFaultUnavailable(
            "esptool < 4 opens ports without an exclusive lock, so a busy port cannot be "
            "told apart here (on a pty it fails on the DTR ioctl instead)"
        )
    with _pty_slave() as path:
        args = _insert_port(esptool_args, path)
        if fault is HostFault.PORT_BUSY:
            # what pyserial's exclusive=True does (and a serial monitor holding the port)
            holder = os.open(path, os.O_RDWR | os.O_NOCTTY)
            try:
                fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                argv = _esptool_argv(python, args, fast_rfc2217)
                rc, out, dt, to = _run(argv, env, timeout, cwd)
            finally:
                os.close(holder)
        else:  # PORT_PERMISSION
            os.chown(path, 0, 0)
            os.chmod(path, 0o600)
            prefix, py = _nobody_prefix(python, version)
            argv = [*prefix, *_esptool_argv(py, args, fast_rfc2217)]
            rc, out, dt, to = _run(argv, _env(version, "/tmp"), timeout, cwd)
        return CompletedLog(rc, out, argv, user_command(version, args), version, fault.value, chip, dt, to)

"""Write one esptool log per fault and esptool version.

For every (fault, version) it writes ``<fault>-esptool<ver>.log`` (exactly what
esptool printed, stdout and stderr merged, nothing added) and a sibling
``<fault>-esptool<ver>.cmd`` holding the esptool command line as a user would
have typed it.  With ``--chip both`` the chip goes into the name:
``<fault>-<chip>-esptool<ver>.log``.  A ``manifest.json`` records exit codes,
the exact executed argv, durations and board boot history.

Usage (from the repo root)::

    python tests/virtual_board/generate_samples.py [OUTDIR] [--versions 4.8.1 5.6.0]
        [--faults none normal-boot ...] [--chip esp32|esp8266|both] [--no-stub] [--install]

Default OUTDIR is ``samples/generated/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python tests/virtual_board/generate_samples.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "virtual_board"

from .faults import ALL_FAULT_NAMES, Fault, HostFault
from .harness import (
    PINNED_VERSIONS,
    REPO_ROOT,
    CompletedLog,
    HostFaultUnavailable,
    ensure_esptool,
    installed_versions,
    run_write_flash,
)


def default_chip(fault: str) -> str:
    if fault in {f.value for f in Fault} and not Fault(fault).applies_to("esp32"):
        return "esp8266"
    return "esp32"


def chips_for(fault: str, choice: str) -> list[str]:
    if choice == "both":
        if fault in {h.value for h in HostFault}:
            return ["esp32"]
        return [c for c in ("esp8266", "esp32") if Fault(fault).applies_to(c)]
    if fault in {f.value for f in Fault} and not Fault(fault).applies_to(choice):
        return []
    return [choice]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?", default=str(REPO_ROOT / "samples" / "generated"))
    ap.add_argument("--versions", nargs="+", default=list(PINNED_VERSIONS))
    ap.add_argument("--faults", nargs="+", default=list(ALL_FAULT_NAMES), choices=ALL_FAULT_NAMES)
    ap.add_argument("--chip", default="auto", choices=["auto", "esp32", "esp8266", "both"])
    ap.add_argument("--no-stub", action="store_true", help="pass --no-stub (ROM loader only)")
    ap.add_argument("--install", action="store_true", help="pip-install missing pinned versions first")
    ap.add_argument("--timeout", type=float, default=90.0)
    args = ap.parse_args(argv)

    if args.install:
        for v in args.versions:
            ensure_esptool(v)
    versions = installed_versions(args.versions)
    missing = sorted(set(args.versions) - set(versions))
    if missing:
        print(f"skipping versions not installed: {', '.join(missing)} (use --install)", file=sys.stderr)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, object]] = []
    for fault in args.faults:
        chips = [default_chip(fault)] if args.chip == "auto" else chips_for(fault, args.chip)
        for chip in chips:
            for version in versions:
                stem = f"{fault}-{chip}-esptool{version}" if args.chip == "both" else f"{fault}-esptool{version}"
                try:
                    log: CompletedLog = run_write_flash(version, fault, chip, no_stub=args.no_stub, timeout=args.timeout)
                except HostFaultUnavailable as e:
                    print(f"{stem}: skipped ({e})", file=sys.stderr)
                    continue
                (outdir / f"{stem}.log").write_text(log.output, encoding="utf-8")
                (outdir / f"{stem}.cmd").write_text(log.esptool_command + "\n", encoding="utf-8")
                last = [ln for ln in log.output.splitlines() if ln.strip()]
                key = next((ln for ln in reversed(last) if "rror" in ln or "verified" in ln), last[-1] if last else "")
                print(f"{stem}: exit {log.returncode} ({log.duration:.1f}s) {key.strip()[:110]}")
                manifest.append(
                    {
                        "name": stem,
                        "fault": fault,
                        "chip": chip,
                        "esptool": version,
                        "returncode": log.returncode,
                        "timed_out": log.timed_out,
                        "duration_s": round(log.duration, 2),
                        "command": log.esptool_command,
                        "executed": log.command,
                        "board_boots": log.board_boots,
                        "no_stub": args.no_stub,
                    }
                )
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Stands in for esptool in the IDE-hook tests: prints a real esptool failure and exits 2."""
import sys
from pathlib import Path

sys.stdout.write((Path(__file__).resolve().parents[3] / "samples" / "idf-flash-no-data.log").read_text())
sys.exit(2)

"""Output formats. Each module turns a list of Reports into text; only main.py writes to streams."""

from __future__ import annotations


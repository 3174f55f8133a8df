"""Output formats. Each module turns a list of Reports into text; only main.py writes to streams."""

from __future__ import annotations

# every --format value; "auto" picks rich on a terminal, text otherwise (espdiag/output.py)
FORMATS = ("auto", "rich", "text", "json", "markdown", "github", "sarif")

"""Whether a report gets colour: ``--color`` first, then NO_COLOR / FORCE_COLOR / TERM=dumb, then the stream.

Here, not in output.py, so that the colour renderer can ask without importing output.py (which
imports the renderers).
"""

from __future__ import annotations

import os
from typing import TextIO


def use_colour(stream: TextIO, colour: str) -> bool:
    if colour == "always":
        return True
    if colour == "never" or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())

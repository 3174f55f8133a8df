"""espdiag: explain why an ESP8266/ESP32 firmware upload failed.

The pipeline, one module per stage:
reader (bytes -> lines) -> normalise (undo what pasting did) -> parse (lark grammar, one event per line)
-> sessions (split attempts, bounded storage) -> context (facts about the setup) -> engine (YAML rules)
-> ranking (causes with confidence) -> render (rich / text / json / markdown).

The library API lives in ``espdiag.api``; this module stays import-free so ``--version`` is instant.
"""

from __future__ import annotations

__version__ = "0.1.0"

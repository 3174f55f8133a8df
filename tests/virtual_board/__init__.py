"""A virtual ESP8266/ESP32 board for running the real esptool against, with named faults.

* :mod:`.board`    -- the emulated chip behind an RFC 2217 (or raw socket) TCP port
* :mod:`.faults`   -- the named faults (board side and host side)
* :mod:`.harness`  -- run a pinned esptool version against a board, capture the log
* :mod:`.generate_samples` -- write one log (+ ``.cmd``) per fault and version
* ``install_esptools.sh`` -- pip-install the pinned esptool versions into
  ``.esptool-versions/<version>`` (gitignored)
"""

from .board import VirtualBoard
from .faults import ALL_FAULT_NAMES, BOARD_FAULTS, HOST_FAULTS, Fault, HostFault

__all__ = ["ALL_FAULT_NAMES", "BOARD_FAULTS", "HOST_FAULTS", "Fault", "HostFault", "VirtualBoard"]

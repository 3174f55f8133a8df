"""``espdiag probe``: ask the board itself when no log can tell the causes apart (issue 15).

* :mod:`.link`     -- open a pyserial URL, drive DTR/RTS (esptool's reset sequences), name a port's holder
* :mod:`.rom`      -- the read-only part of the ROM serial protocol: SYNC, READ_REG, the SPI flash id
* :mod:`.steps`    -- the fixed probe sequence; it writes a transcript, which is an upload log
* :mod:`.report`   -- diagnose the transcript with the same grammar and rules, one report

The probe never writes or erases flash and never touches eFuses: the only commands it sends are
SYNC, READ_REG, GET_SECURITY_INFO, the SPI-register writes that run the flash's read-id command,
and the flash "attach" (SPI_ATTACH, or on the ESP8266 ROM a FLASH_BEGIN of size 0, as esptool's
``flash_id`` does, which erases nothing).
"""

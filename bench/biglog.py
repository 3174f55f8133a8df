# ruff: noqa: E501  (the templates hold whole log lines)
"""Generate large, realistic upload logs, streamed to disk (never held in memory).

The log is what a serial capture of a retry loop looks like: a wrapper (Arduino IDE, PlatformIO, a
shell loop) runs the flasher again and again; attempts alternate between esptool.py v2-v5 sessions
that fail to connect, esptool.py sessions that stop mid-write, and esptool-ck ``-vv`` sessions that
retry the sync dozens of times. A few lines vary per attempt (timings, percentages) as they do in
real captures, so the per-distinct-line cache sees both repeats and new lines.

    python bench/biglog.py OUT.log SIZE_MB
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

ESPTOOL_NO_CONNECT = """\
Upload started
Flashing with command:/home/maker/.arduino15/packages/esp8266/tools/python3/3.7.2/python3 -I /home/maker/.arduino15/packages/esp8266/hardware/esp8266/3.1.2/tools/upload.py --chip esp8266 --port /dev/ttyUSB0 --baud 921600 --before default_reset --after hard_reset write_flash 0x0 /tmp/arduino_build_1/blink.ino.bin
esptool.py v3.0
Serial port /dev/ttyUSB0
Connecting........_____....._____....._____....._____....._____....._____....._____
Traceback (most recent call last):
  File "/home/maker/.arduino15/packages/esp8266/hardware/esp8266/3.1.2/tools/upload.py", line 66, in <module>
    esptool.main(cmdline)
  File "/home/maker/.arduino15/packages/esp8266/hardware/esp8266/3.1.2/tools/esptool/esptool.py", line 3552, in main
    esp.connect(args.before, args.connect_attempts)
A fatal error occurred: Failed to connect to ESP8266: Timed out waiting for packet header
esptool.serial.serialutil.SerialException: Failed to connect to ESP8266: Timed out waiting for packet header
exit status 1
Failed uploading: uploading error: exit status 1
"""

ESPTOOL4_MID_WRITE = """\
Processing esp32dev (platform: espressif32; board: esp32dev; framework: arduino)
Configuring upload protocol...
AVAILABLE: cmsis-dap, esp-bridge, esp-builtin, esp-prog, espota, esptool, iot-bus-jtag, jlink, minimodule, olimex-arm-usb-ocd, olimex-arm-usb-ocd-h, olimex-arm-usb-tiny-h, olimex-jtag-tiny, tumpa
CURRENT: upload_protocol = esptool
Looking for upload port...
Auto-detected: /dev/ttyUSB1
Uploading .pio/build/esp32dev/firmware.bin
esptool.py v4.5.1
Serial port /dev/ttyUSB1
Connecting....
Chip is ESP32-D0WD-V3 (revision v3.1)
Features: WiFi, BT, Dual Core, 240MHz, VRef calibration in efuse, Coding Scheme None
Crystal is 40MHz
MAC: 24:0a:c4:11:22:33
Uploading stub...
Running stub...
Stub running...
Changing baud rate to 921600
Changed.
Configuring flash size...
Flash will be erased from 0x00001000 to 0x00005fff...
Flash will be erased from 0x00008000 to 0x00008fff...
Flash will be erased from 0x00010000 to 0x000dffff...
Compressed 17536 bytes to 12202...
Writing at 0x00001000... (100 %)
Wrote 17536 bytes (12202 compressed) at 0x00001000 in 0.{t1} seconds (effective {k1}.4 kbit/s)...
Hash of data verified.
Compressed 3072 bytes to 146...
Writing at 0x00008000... (100 %)
Wrote 3072 bytes (146 compressed) at 0x00008000 in 0.1 seconds (effective 341.2 kbit/s)...
Hash of data verified.
Compressed 851232 bytes to 543210...
{writes}
A fatal error occurred: Serial data stream stopped: Possible serial noise or corruption.
*** [upload] Error 2
========================= [FAILED] Took {took}.{t2} seconds =========================
"""

ESPTOOL5_NO_DATA = """\
esptool v5.0.2
Serial port /dev/ttyACM0:
Connecting.......
\x1b[31mERROR: A fatal error occurred: Failed to connect to ESP32-S3: No serial data received.\x1b[0m
For troubleshooting steps visit: https://docs.espressif.com/projects/esptool/en/latest/troubleshooting.html
"""

CK_HEAD = """\
Upload started
Programming with: Serial
Flashing with command:C:/Users/maker/.arduino-create/esp8266/esptool/2.5.0-3-20ed2b9/esptool.exe -vv -cd nodemcu -cb 115200 -cp COM9 -ca 0x00000 -cf C:/Users/maker/AppData/Local/Temp/arduino-create-agent41/blink.bin
esptool v0.4.13-1-gf80ae31 - (c) 2014 Ch. Klippel ck@atelier-klippel.de
setting board to nodemcu
setting baudrate from 115200 to 115200
setting port from COM1 to COM9
setting address from 0x00000000 to 0x00000000
espcomm_upload_file
espcomm_upload_mem
setting serial port timeouts to 1000 ms
opening bootloader
resetting board
"""
CK_TRY = """\
trying to connect
flush start
setting serial port timeouts to 1 ms
setting serial port timeouts to 1000 ms
flush complete
espcomm_send_command: sending command header
espcomm_send_command: sending command payload
read 0, requested 1
"""
CK_TAIL = """\
warning: espcomm_sync failed
error: espcomm_open failed
error: espcomm_upload_mem failed
error: espcomm_upload_mem failed
An error occurred while uploading the sketch
"""

BOOT_NOISE = """\
 ets Jan  8 2013,rst cause:2, boot mode:(3,6)

load 0x4010f000, len 3584, room 16
tail 0
chksum 0xb0
csum 0xb0
v2843a5ac
~ld
Hello from the sketch, loop {n}
"""


def _attempt(n: int) -> str:
    kind = n % 4
    if kind == 0:
        return ESPTOOL_NO_CONNECT
    if kind == 1:
        stop = 5 + n % 60
        writes = "\n".join(f"Writing at 0x{0x10000 + i * 0x4000:08x}... ({i * 100 // 64} %)" for i in range(stop))
        return ESPTOOL4_MID_WRITE.format(t1=n % 7, k1=500 + n % 400, writes=writes, took=10 + n % 50, t2=n % 100)
    if kind == 2:
        return ESPTOOL5_NO_DATA + BOOT_NOISE.format(n=n % 1000)
    return CK_HEAD + CK_TRY * (10 + n % 40) + CK_TAIL


def chunks(size: int) -> Iterator[bytes]:
    """Whole attempts, as bytes, until ``size`` bytes have been produced (the last one is cut)."""
    done = 0
    n = 0
    while done < size:
        data = _attempt(n).encode()
        if done + len(data) > size:
            data = data[: size - done]
        done += len(data)
        n += 1
        yield data


def write_log(path: Path, size: int) -> Path:
    with open(path, "wb", buffering=1 << 20) as f:
        for data in chunks(size):
            f.write(data)
    return path


if __name__ == "__main__":
    write_log(Path(sys.argv[1]), int(float(sys.argv[2]) * 1_000_000))

esptool --port /dev/ttyUSB_nonexistent --chip esp32 --connect-attempts 2 write-flash --flash-size detect 0x10000 app.bin

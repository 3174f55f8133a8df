esptool.py --port /dev/ttyUSB_nonexistent --chip esp32 --connect-attempts 2 write_flash --flash_size detect 0x10000 app.bin

esptool.py --port rfc2217://127.0.0.1:39859 --chip esp32 --connect-attempts 2 write_flash --flash_size detect 0x10000 app.bin

esptool --port rfc2217://127.0.0.1:40227 --chip esp32 --connect-attempts 2 write-flash --flash-size detect 0x10000 app.bin

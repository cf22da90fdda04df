"""pyserial URL handler package (``serial.protocol_handler_packages`` entry)."""

"""pyserial URL handlers (``serial.protocol_handler_packages``): ``gcodesim://``."""

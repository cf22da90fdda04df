"""``dp5sim://`` handler module found by ``serial.serial_for_url`` (see ``url_handler``)."""

from __future__ import annotations

from perception.sensors.xrf.url_handler import Dp5SimSerial as Serial

__all__ = ["Serial"]

"""Ultralytics must never try the network: build, train-free predict and font lookup offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Runs in a fresh interpreter where every socket connect/DNS lookup raises, so any
# network attempt by Ultralytics (font download, weight fetch, settings sync) fails loudly.
SCRIPT = textwrap.dedent(
    """
    import socket, sys
    def _no_net(*a, **k):
        raise RuntimeError(f"network access attempted: {a!r}")
    socket.socket.connect = _no_net
    socket.create_connection = _no_net
    socket.getaddrinfo = _no_net
    from perception.detector.offline import configure_ultralytics_offline, disable_settings_sync
    root = configure_ultralytics_offline(sys.argv[1] if len(sys.argv) > 1 else None)
    import numpy as np
    from ultralytics import YOLO
    from ultralytics.utils.checks import check_font
    disable_settings_sync()
    font = check_font("Arial.ttf")
    assert str(font).startswith(str(root)), font
    model = YOLO("yolo11n.yaml")
    res = model.predict(np.zeros((64, 64, 3), dtype=np.uint8), imgsz=64, verbose=False)
    print("OK", len(res), font)
    """
)


def test_ultralytics_runs_without_network(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "yolo")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK 1" in proc.stdout
    assert (tmp_path / "yolo" / "Ultralytics" / "Arial.ttf").is_file()

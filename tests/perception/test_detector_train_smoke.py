"""One-epoch training on a tiny synthetic set runs fully offline, writes weights + metadata,
and exports to an ONNX file the line detector loads."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from perception.detector.metadata import dataset_fingerprint
from sorting.dataset.synth import SynthConfig, synthesize

# A fresh interpreter where every socket connect/DNS lookup raises: any network attempt
# (font download, weight fetch, settings sync, hub) fails the run loudly.
SCRIPT = textwrap.dedent(
    """
    import socket, sys
    from pathlib import Path
    def _no_net(*a, **k):
        raise RuntimeError(f"network access attempted: {a!r}")
    socket.socket.connect = _no_net
    socket.create_connection = _no_net
    socket.getaddrinfo = _no_net
    from perception.detector.offline import configure_ultralytics_offline
    configure_ultralytics_offline(Path(sys.argv[3]))
    from perception.detector.train import TrainConfig, train_detector
    from perception.detector.export import export_onnx
    from perception.detector.onnx_detector import OnnxDetector
    import numpy as np
    res = train_detector(
        TrainConfig(data=Path(sys.argv[1]), epochs=1, imgsz=64, batch=4, workers=0,
                    project=Path(sys.argv[2]), name="smoke"),
        command="smoke-test",
    )
    onnx = export_onnx(res.weights, Path(sys.argv[2]) / "smoke.onnx", imgsz=(64, 96))
    det = OnnxDetector(onnx, conf=0.001)
    d = det.detect(np.zeros((120, 160, 3), dtype=np.uint8))
    print("OK", res.weights, det.input_hw, len(d) >= 0)
    """
)


def test_one_epoch_training_offline(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    synthesize(data, SynthConfig(n_images=6, seed=5, val_fraction=0.34, width_px=160,
                                 height_px=120, images_per_scene=6))
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data / "data.yaml"), str(tmp_path / "runs"),
         str(tmp_path / "yolo")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "OK" in proc.stdout and "(64, 96) True" in proc.stdout
    run = tmp_path / "runs" / "smoke"
    assert (run / "results.csv").is_file()  # per-epoch metrics of the run
    meta = json.loads((run / "weights" / "best.json").read_text())
    from perception.catalog import load_catalog

    assert meta["classes"] == load_catalog().class_names
    assert meta["dataset_fingerprint"] == dataset_fingerprint(data)
    assert meta["training_command"] == "smoke-test"
    assert meta["git_revision"]
    assert set(meta["metrics"]) == {"precision", "recall", "mAP50", "mAP50-95"}
    exported = json.loads((tmp_path / "runs" / "smoke.json").read_text())
    assert exported["imgsz"] == [64, 96]
    assert exported["dataset_fingerprint"] == meta["dataset_fingerprint"]

"""Benchmark: a full intrinsic calibration from 30 ChArUco views vs OpenCV's own calibrateCamera.

The views are rendered once by the simulated camera (640 x 480, distorted, off-centre
principal point) and detected once; both sides then solve from the *same*
detections, best of ``--repeat`` runs:

- ``cv2.calibrateCamera``: the peer, one solve (k3 fixed, as ours);
- ``calibrate_intrinsics``: ours — ``calibrateCameraExtended`` (adds the
  covariance), the bad-view rejection test, the degeneracy check, per-view
  residuals and guidance.

The ratio column is peer time / our time (below 1 = we are slower). Detection
time (our ``detect_charuco``, OpenCV's ``CharucoDetector``) is listed per view.

Run: ``.venv/bin/python -m bench.calibration``
"""

from __future__ import annotations

import argparse
import platform
import time

import cv2
import numpy as np
from rich.table import Table

from calibration.camera import PinholeCamera
from calibration.detection import detect_charuco
from calibration.intrinsics import calibrate_intrinsics
from calibration.targets import CharucoTarget
from perception.sensors.camera.targets_sim import PlacedTarget, TargetRenderer, held_poses
from sorting.cli.output import console


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--views", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    base = PinholeCamera.looking_down(1.2, 0.0, 1.0, 640, 480, 46.0)
    cam = PinholeCamera(640, 480, base.fx * 1.004, base.fx, 323.4, 236.1,
                        (-0.12, 0.06, 0.001, -0.0005, 0.0), base.T_belt_camera)
    board = CharucoTarget(9, 6, 0.04, 0.03)
    rng = np.random.default_rng(0)
    renderer = TargetRenderer(cam, rng)
    poses = held_poses(cam, board, args.views, rng, distance_m=(0.45, 0.8))
    images = [renderer.render([PlacedTarget(board, p)]) for p in poses]
    t0 = time.perf_counter()
    dets = [detect_charuco(img, board, f"v{i}") for i, img in enumerate(images)]
    t_detect = (time.perf_counter() - t0) / len(images)

    obj = [d.object_points.astype(np.float32).reshape(-1, 1, 3) for d in dets]
    img_pts = [d.image_points.astype(np.float32).reshape(-1, 1, 2) for d in dets]
    crit = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-12)

    def peer() -> float:
        rms, _k, _d, _r, _t = cv2.calibrateCamera(
            obj, img_pts, (640, 480), None, None, flags=cv2.CALIB_FIX_K3, criteria=crit
        )
        return float(rms)

    def ours() -> float:
        return calibrate_intrinsics(dets).rms_px

    def best(fn: object) -> float:
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            fn()  # type: ignore[operator]
            times.append(time.perf_counter() - t)
        return min(times)

    t_peer = best(peer)
    t_ours = best(ours)
    res = calibrate_intrinsics(dets)
    table = Table(title=f"intrinsic calibration, {len(dets)} views, "
                        f"{sum(d.n for d in dets)} corners ({platform.machine()}, "
                        f"{platform.python_version()}, OpenCV {cv2.__version__})")
    for col in ("what", "time (ms)", "ratio peer/ours", "note"):
        table.add_column(col)
    table.add_row("cv2.calibrateCamera (peer)", f"{t_peer * 1e3:.1f}", "", f"RMS {peer():.4f} px")
    table.add_row("calibrate_intrinsics (ours)", f"{t_ours * 1e3:.1f}", f"{t_peer / t_ours:.2f}",
                  f"RMS {res.rms_px:.4f} px, fx err {100 * (res.camera.fx / cam.fx - 1):+.3f} %")
    table.add_row("detect_charuco per view", f"{t_detect * 1e3:.1f}", "", "640 x 480")
    console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

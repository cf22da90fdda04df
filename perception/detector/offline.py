"""Keep Ultralytics off the network: offline mode, a local config dir and the font it looks for.

Ultralytics fetches ``Arial.ttf`` (for plots and dataset checks) and weights
from the internet unless told otherwise. :func:`configure_ultralytics_offline`
must run **before** ``import ultralytics``: it sets ``YOLO_OFFLINE=1``, points
``YOLO_CONFIG_DIR`` at a project-local directory, copies the shipped DejaVu
Sans font there under the names Ultralytics asks for, and turns settings sync
off. Models are built from YAML (``yolo11n.yaml``), never from ``.pt`` names
that would trigger a download.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from perception.errors import PerceptionError

REPO_ROOT = Path(__file__).resolve().parents[2]
FONT = REPO_ROOT / "datasets" / "fonts" / "DejaVuSans.ttf"
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")


def configure_ultralytics_offline(config_dir: Path | None = None) -> Path:
    """Prepare the environment so Ultralytics never touches the network; return the config dir.

    ``config_dir`` defaults to ``$YOLO_CONFIG_DIR`` if set, else ``<repo>/.yolo``.
    Raises :class:`PerceptionError` if the shipped font is missing.
    """
    if not FONT.is_file():
        raise PerceptionError(
            f"{FONT}: shipped font missing; Ultralytics would try to download one"
        )
    env_dir = os.environ.get("YOLO_CONFIG_DIR")
    root = Path(config_dir) if config_dir else Path(env_dir) if env_dir else REPO_ROOT / ".yolo"
    font_dir = root / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    for name in FONT_NAMES:
        target = font_dir / name
        if not target.is_file() or target.stat().st_size != FONT.stat().st_size:
            shutil.copyfile(FONT, target)
    os.environ["YOLO_CONFIG_DIR"] = str(root)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "False")
    return root


def disable_settings_sync() -> None:
    """Turn off Ultralytics' settings sync (call after importing ultralytics)."""
    from ultralytics import settings

    settings.update({"sync": False})  # type: ignore[no-untyped-call]

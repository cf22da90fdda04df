"""Line descriptions: YAML files under ``launch/`` validated by pydantic models."""

from sorting.config.line import (
    BeltConfig,
    CameraConfig,
    DepthConfig,
    FeedConfig,
    LineConfig,
    RecordConfig,
    load_line,
    parse_line,
)

__all__ = [
    "BeltConfig",
    "CameraConfig",
    "DepthConfig",
    "FeedConfig",
    "LineConfig",
    "RecordConfig",
    "load_line",
    "parse_line",
]

"""Object volume from a downward-looking 3D sensor.

Point cloud (organized, optical frame) -> belt plane (:mod:`.plane`) -> height
map in belt coordinates (:mod:`.heightmap`) -> segmentation that splits touching
objects (:mod:`.segment`) -> per-object volume, footprint, height, oriented box
and suction grasp point (:mod:`.measure`). :class:`VolumeEstimator` runs it all.
"""

from perception.volume.errors import BadCloudError, FrameError, PlaneNotFoundError, VolumeError
from perception.volume.heightmap import HeightMap, HeightMapConfig, build_heightmap
from perception.volume.measure import (
    UNDERCUT_FACTOR,
    MeasureConfig,
    ObjectVolumeEstimate,
    ShapeClass,
    measure_objects,
)
from perception.volume.pipeline import VolumeConfig, VolumeEstimator, VolumeFrame
from perception.volume.plane import Plane, PlaneFitConfig, fit_plane, refine_plane
from perception.volume.segment import SegmentConfig, segment_heightmap

__all__ = [
    "UNDERCUT_FACTOR",
    "BadCloudError",
    "FrameError",
    "HeightMap",
    "HeightMapConfig",
    "MeasureConfig",
    "ObjectVolumeEstimate",
    "Plane",
    "PlaneFitConfig",
    "PlaneNotFoundError",
    "SegmentConfig",
    "ShapeClass",
    "VolumeConfig",
    "VolumeError",
    "VolumeEstimator",
    "VolumeFrame",
    "build_heightmap",
    "fit_plane",
    "measure_objects",
    "refine_plane",
    "segment_heightmap",
]

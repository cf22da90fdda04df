"""The line description: belt, feed, sensors and their belt positions, nodes, recording.

A line file (``launch/line1.yaml``) is validated by the pydantic models below.
An invalid file raises :class:`sorting.errors.ConfigError` whose message names
the file and each bad YAML path, e.g.
``launch/line1.yaml: sensors.camera.rate_hz: Input should be greater than 0``.

Positions are in the belt frame (m): x along travel from the infeed end,
y across the belt (0 on the centre line), heights above the belt surface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robot.config import ArmConfig, BasePose, GripperConfig
from sorting.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LINE = REPO_ROOT / "launch" / "line1.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BeltConfig(_Model):
    length_m: float = Field(6.0, gt=0, description="infeed to discharge")
    width_m: float = Field(0.8, gt=0)
    speed_mps: float = Field(0.5, gt=0, le=5.0)
    speed_jitter: float = Field(
        0.01, ge=0, lt=0.5, description="relative slow speed wobble (1 sigma)"
    )
    ramp_s: float = Field(1.0, ge=0, description="start-up ramp from standstill to speed_mps")
    encoder_ticks_per_m: float = Field(10000.0, gt=0)
    encoder_rate_hz: float = Field(100.0, gt=0, le=2000)


class FeedConfig(_Model):
    objects_per_m: float = Field(2.5, gt=0, description="mean objects per metre of belt")
    mix: dict[str, float] = Field(
        default_factory=lambda: {"weee": 0.6, "scrap": 0.25, "slag": 0.15},
        description="weights per stream or per class name",
    )
    min_gap_m: float = Field(0.02, ge=0)
    overlap_probability: float = Field(0.05, ge=0, le=1)
    edge_margin_m: float = Field(0.03, ge=0)

    @model_validator(mode="after")
    def _mix_positive(self) -> FeedConfig:
        if not self.mix:
            raise ValueError("mix: must name at least one stream or class")
        for key, weight in self.mix.items():
            if weight < 0:
                raise ValueError(f"mix.{key}: weight must be >= 0")
        if sum(self.mix.values()) <= 0:
            raise ValueError("mix: weights must not all be 0")
        return self


class CameraConfig(_Model):
    enabled: bool = True
    x_m: float = Field(1.2, ge=0)
    y_m: float = 0.0
    height_m: float = Field(1.0, gt=0)
    width_px: int = Field(640, gt=0, le=8192)
    height_px: int = Field(480, gt=0, le=8192)
    hfov_deg: float = Field(46.0, gt=1, lt=170)
    yaw_deg: float = Field(0.0, ge=-180, le=180,
                           description="turn about the vertical: 0 = image u along belt +x")
    rate_hz: float = Field(2.0, gt=0, le=200)
    exposure_s: float = Field(0.001, gt=0, le=0.1)
    frame_id: str = "camera_optical_frame"


class DepthConfig(_Model):
    enabled: bool = True
    x_m: float = Field(2.0, ge=0)
    y_m: float = 0.0
    height_m: float = Field(0.9, gt=0)
    width_px: int = Field(160, gt=0, le=4096)
    height_px: int = Field(120, gt=0, le=4096)
    hfov_deg: float = Field(52.0, gt=1, lt=170)
    yaw_deg: float = Field(0.0, ge=-180, le=180,
                           description="turn about the vertical: 0 = image u along belt +x")
    rate_hz: float = Field(4.0, gt=0, le=100)
    frame_id: str = "depth_optical_frame"


class HsiConfig(_Model):
    """NIR line-scan camera (FX17-like, 224 bands 900-1700 nm) across the belt."""

    enabled: bool = True
    x_m: float = Field(1.6, ge=0)
    width_px: int = Field(48, gt=0, le=4096, description="spatial pixels across the belt")
    model: str = Field("", description="classifier (path without suffix); '' = shipped model")
    frame_id: str = "hsi_optical_frame"


class XrfConfig(_Model):
    """Inline XRF head on a traverse across the belt, aimed at tracked objects."""

    enabled: bool = True
    x_m: float = Field(2.6, ge=0)
    port: str = Field("dp5sim://line1-xrf", description="pyserial URL or device of the DP5")
    channels: Literal[256, 512, 1024, 2048, 4096, 8192] = 2048
    live_time_s: float = Field(0.3, gt=0, le=60)
    busy_s: float | None = Field(
        None, ge=0, le=60, description="how long the head is busy per acquisition (it lets "
        "pass what arrives meanwhile); None: the live time for a device, 0 for the dp5sim:// "
        "emulator, whose acquisitions complete when read (set it to simulate a real head)")
    spot_radius_m: float = Field(0.012, gt=0, le=0.1)
    setup: str = Field("", description="XRF set-up YAML; '' = datasets/xrf/setup_default.yaml")
    balance: str | None = Field(
        "scatter", description="light-element balance for quantification: 'scatter' (dark "
        "matrix from the tube's scatter), a formula such as CH2O, or None (normalise)")
    timeout_s: float = Field(0.5, gt=0)
    retries: int = Field(3, ge=0)

    def emulated(self) -> bool:
        """The port is the simulated line's ``dp5sim://`` emulator (acquisitions complete
        when read), not a device that counts for its live time."""
        return self.port.startswith("dp5sim://")

    def head_busy_s(self) -> float:
        """How long the head is busy per acquisition: ``busy_s``, else the live time for a
        device and 0 for the ``dp5sim://`` emulator."""
        if self.busy_s is not None:
            return self.busy_s
        return 0.0 if self.emulated() else self.live_time_s


class XrtSimDeviationConfig(_Model):
    """Simulator only: how the simulated scanner's true set-up departs from the nominal one
    the line's model assumes (zero = none), for proving ``crmsort calibrate xrt``."""

    tube_kv_delta: float = Field(0.0, ge=-60, le=60, description="true tube kV minus nominal")
    filter_thickness_pct: float = Field(0.0, gt=-80, le=400,
                                        description="tube filter thicker than nominal, %")
    interlayer_thickness_pct: float = Field(0.0, gt=-80, le=400,
                                            description="inter-layer filter thicker, %")


class XrtConfig(_Model):
    """Dual-energy X-ray transmission line scanner (tube above the belt, detectors under it):
    weighs what it sees through, and tells light metals from heavy ones."""

    enabled: bool = True
    x_m: float = Field(2.3, ge=0)
    width_px: int = Field(256, gt=0, le=4096, description="detector pixels across the belt")
    source_height_m: float = Field(1.0, gt=0, le=5, description="focal spot above the belt")
    detector_depth_m: float = Field(0.03, ge=0, le=0.5, description="detectors under the belt")
    tube_kv: float = Field(160.0, ge=20, le=600)
    frame_id: str = "xrt_frame"
    encoding: Literal["transmission", "raw_counts"] = Field(
        "transmission", description="what the (simulated) driver publishes: flat-fielded lines, "
        "or raw counts that the XRT node flat-fields with the stored xrt.reference")
    sim_deviation: XrtSimDeviationConfig = Field(default_factory=XrtSimDeviationConfig)


class SensorsConfig(_Model):
    camera: CameraConfig = Field(default_factory=CameraConfig)
    depth: DepthConfig = Field(default_factory=DepthConfig)
    hsi: HsiConfig = Field(default_factory=HsiConfig)
    xrf: XrfConfig = Field(default_factory=XrfConfig)
    xrt: XrtConfig = Field(default_factory=XrtConfig)


class SimConfig(_Model):
    ground_truth_rate_hz: float = Field(10.0, gt=0, le=1000)
    status_rate_hz: float = Field(1.0, gt=0, le=100)


class ControlConfig(_Model):
    """How the line is commanded (see :mod:`sorting.control`): whether it starts on its own,
    and the limits of its stops."""

    autostart: bool = Field(True, description="the line starts RUNNING on its own (the belt "
                            "ramps up from standstill); false: it waits STOPPED for a START")
    estop_stop_s: float = Field(0.2, ge=0, le=5, description="an E-stop brakes the belt from "
                                "nominal speed to standstill in this time")
    start_speed_fraction: float = Field(0.95, gt=0, le=1, description="STARTING becomes "
                                        "RUNNING when the encoder shows this share of speed_mps")
    stopped_speed_mps: float = Field(0.005, gt=0, description="the encoder is taken as "
                                     "standing still below this speed")
    drain_timeout_s: float = Field(10.0, gt=0, description="a pick task unanswered this long "
                                   "no longer holds a STOPPING line")
    state_rate_hz: float = Field(1.0, gt=0, le=100, description="control/state is published "
                                 "on every change and this often")


# Indicative values of the contained element (EUR per kg of element), set by the operator;
# rounded 2025-26 market levels, only used to rank objects and report value captured.
DEFAULT_PRICES = {
    "Au": 70000.0, "Pd": 30000.0, "Pt": 30000.0, "Ag": 900.0, "Ge": 1500.0, "Ga": 300.0,
    "In": 350.0, "Ta": 250.0, "Tb": 1000.0, "Dy": 300.0, "Nd": 80.0, "Pr": 80.0, "Co": 30.0,
    "Li": 60.0, "W": 40.0, "Sb": 40.0, "Sn": 28.0, "V": 25.0, "Ni": 15.0, "Cu": 8.5, "Cr": 9.0,
    "Al": 2.3, "Zn": 2.6, "Mn": 2.0, "Fe": 0.3,
}


def _demo_arms() -> list[ArmConfig]:
    """Two delta pickers over the belt centre line, each with four chutes beside the belt."""
    arms = []
    for k, x in enumerate((3.6, 4.6)):
        bins = {
            "battery": (x - 0.12, -0.45, 0.15),
            "magnet": (x + 0.12, -0.45, 0.15),
            "pcb": (x - 0.12, 0.45, 0.15),
            "metal": (x + 0.12, 0.45, 0.15),
        }
        # a 20 mm bellows cup: small enough to seal on an 18 mm cell, ~19 N at -60 kPa
        gripper = GripperConfig(cup_diameter_m=0.02, vacuum_capacity_kg=0.8)
        arms.append(ArmConfig(name=f"arm{k + 1}", base=BasePose(x_m=x), bins=bins,
                              gripper=gripper))
    return arms


class SortingConfig(_Model):
    """Sort policy: which classes go to which bin, what is worth a pick, element prices."""

    bins: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "battery": ["li_ion_cylindrical_cell", "li_ion_pouch_pack"],
            "pcb": ["pcb_high_grade", "pcb_low_grade", "mobile_phone", "tablet",
                    "tantalum_capacitor"],
            "magnet": ["hdd_vcm_magnet_assembly", "hard_disk_drive"],
            "metal": ["copper_scrap", "brass_fitting"],
        },
        description="bin name -> detector class names it takes",
    )
    priority_classes: list[str] = Field(
        default_factory=lambda: ["li_ion_cylindrical_cell", "li_ion_pouch_pack"],
        description="picked whenever reachable, whatever their value (fire risk)",
    )
    min_value_eur: float = Field(0.02, ge=0, description="objects worth less are let pass")
    min_class_confidence: float = Field(
        0.5, ge=0, le=1, description="class posterior below which an object is let pass "
        "(bin purity before recovery)")
    priority_min_confidence: float = Field(
        0.25, ge=0, le=1, description="class posterior from which a priority class is pulled")
    detector_accuracy: float = Field(
        0.69, gt=0, lt=1, description="the detector's per-frame class accuracy, as measured "
        "on held-out data (weighs its votes in the class posterior)")
    detector_confusion: str = Field(
        "datasets/models/detector/crmsort_yolo11n.confusion.json",
        description="the detector's measured class confusion (crmsort eval --confusion-out; "
        "relative to the repository); '' or a missing file: a symmetric confusion from "
        "detector_accuracy")
    prices_eur_per_kg: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    publish_rate_hz: float = Field(10.0, gt=0, le=100)
    track_gate_m: float = Field(0.08, gt=0, le=1.0)
    balance_rate_hz: float = Field(1.0, gt=0, le=100, description="the tracker publishes "
                                   "the mass balance (sorting/balance) this often")
    shift_hours: float = Field(8.0, gt=0, le=24, description="the mass balance is also kept "
                               "per shift of this many hours")
    shift_start_hour: float = Field(6.0, ge=0, lt=24, description="the first shift of a day "
                                    "starts this many hours after midnight UTC")

    @model_validator(mode="after")
    def _one_bin_per_class(self) -> SortingConfig:
        seen: dict[str, str] = {}
        for bin_name, classes in self.bins.items():
            for c in classes:
                if c in seen:
                    raise ValueError(f"bins.{bin_name}: class {c!r} is already in bin {seen[c]!r}")
                seen[c] = bin_name
        for e, price in self.prices_eur_per_kg.items():
            if price < 0:
                raise ValueError(f"prices_eur_per_kg.{e}: must be >= 0")
        return self

    def bin_for(self, class_name: str) -> str:
        """The bin a class goes to, or "" (let it pass)."""
        for bin_name, classes in self.bins.items():
            if class_name in classes:
                return bin_name
        return ""

    def target_bin(self, class_name: str, class_confidence: float, value_eur: float) -> str:
        """The bin to pick an object into, or "" (let it pass): a priority class when its
        class is at least ``priority_min_confidence`` sure, whatever its value; any other
        class when it is worth ``min_value_eur`` and at least ``min_class_confidence`` sure."""
        if class_name in self.priority_classes:
            return self.bin_for(class_name) if (
                class_confidence >= self.priority_min_confidence) else ""
        if value_eur < self.min_value_eur or class_confidence < self.min_class_confidence:
            return ""
        return self.bin_for(class_name)


class NetworkConfig(_Model):
    """Where DDS traffic may go: loopback only unless the line names real interfaces."""

    interfaces: list[str] = Field(default_factory=lambda: ["lo"], min_length=1)
    peers: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    multicast: bool = False


class DeployConfig(_Model):
    """How the line runs as processes over DDS (``crmsort run --processes``)."""

    domain_id: int = Field(42, ge=0, le=232)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    step_s: float = Field(0.01, gt=0, le=1.0)
    stale_after_s: float = Field(3.0, gt=0)
    diagnostics_period_s: float = Field(1.0, gt=0)
    remappings: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="node name -> {from topic: to topic} (ROS 2 launch)")


class RecordConfig(_Model):
    topics: list[str] | Literal["all"] = "all"
    chunk_size_mib: float = Field(4.0, gt=0, le=1024)
    compression: Literal["none", "zstd", "lz4"] = "none"


class LineConfig(_Model):
    """A whole line: what ``crmsort demo`` and ``crmsort run`` start."""

    name: str = Field("line1", pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    seed: int = Field(42, ge=0)
    belt: BeltConfig = Field(default_factory=BeltConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    sensors: SensorsConfig = Field(default_factory=SensorsConfig)
    sim: SimConfig = Field(default_factory=SimConfig)
    sorting: SortingConfig = Field(default_factory=SortingConfig)
    arms: list[ArmConfig] = Field(default_factory=_demo_arms)
    deploy: DeployConfig = Field(default_factory=DeployConfig)
    record: RecordConfig = Field(default_factory=RecordConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    nodes: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per-node parameter overrides, by node name"
    )

    @property
    def namespace(self) -> str:
        return "/" + self.name

    @model_validator(mode="after")
    def _arms_and_bins(self) -> LineConfig:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arms: arm names must be unique, got {names}")
        for i, arm in enumerate(self.arms):
            if arm.base.x_m > self.belt.length_m:
                raise ValueError(f"arms[{i}].base.x_m: {arm.base.x_m} m is past the belt end")
        for bin_name in self.sorting.bins:
            if self.arms and not any(bin_name in a.bins for a in self.arms):
                raise ValueError(f"sorting.bins.{bin_name}: no arm has a bin of that name")
        return self

    @model_validator(mode="after")
    def _sensors_on_belt(self) -> LineConfig:
        for sensor in ("camera", "depth", "hsi", "xrf", "xrt"):
            cfg = getattr(self.sensors, sensor)
            if cfg.x_m > self.belt.length_m:
                raise ValueError(
                    f"sensors.{sensor}.x_m: {cfg.x_m} m is past the belt end "
                    f"({self.belt.length_m} m)"
                )
            if abs(getattr(cfg, "y_m", 0.0)) > self.belt.width_m / 2:
                raise ValueError(f"sensors.{sensor}.y_m: {cfg.y_m} m is off the belt")
        return self


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<root>"


def parse_line(data: Any, source: str = "<line>") -> LineConfig:
    """Validate a parsed YAML document; raise ConfigError naming ``source`` and each bad path."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return LineConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = _yaml_path(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {msg}" if not msg.startswith(path) else msg)
        raise ConfigError(
            f"{source}: invalid line description:\n  " + "\n  ".join(problems)
        ) from None


def load_line(path: str | Path | None = None) -> LineConfig:
    """Load and validate a line YAML file (default: ``launch/line1.yaml``)."""
    file = Path(path) if path is not None else DEFAULT_LINE
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read line description: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}: {exc}") from None
    return parse_line(data if data is not None else {}, str(file))

"""Arm descriptions: pydantic models for the ``arms:`` section of a line YAML.

Positions are in the belt frame (m): x along travel from the infeed end, y across (0 on the
centre line), z up from the belt surface. An arm's ``base`` is the centre of its fixed base
plate (its ``<arm>_base_link``), with ``yaw_rad`` about z; the arm frame has z up, so the tool
works at negative arm-frame z. Joint angles in rad, speeds rad/s, accelerations rad/s²,
jerks rad/s³.

:func:`parse_arms` validates a list and raises :class:`robot.errors.RobotConfigError` naming
each bad YAML path (``arms[1].geometry.forearm_m: Input should be greater than 0``).
:func:`demo_arms` returns the two delta pickers the demo line uses.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robot.errors import RobotConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Vec3 = tuple[float, float, float]


class BasePose(_Model):
    """Base plate centre in the belt frame (m) and yaw about z (rad)."""

    x_m: float
    y_m: float = 0.0
    z_m: float = Field(1.1, gt=0, description="height of the base plate above the belt")
    yaw_rad: float = 0.0


class DeltaGeometryConfig(_Model):
    base_radius_m: float = Field(0.2, gt=0)
    effector_radius_m: float = Field(0.05, gt=0)
    upper_arm_m: float = Field(0.45, gt=0)
    forearm_m: float = Field(1.0, gt=0)
    tool_length_m: float = Field(0.1, ge=0, description="TCP below the platform centre")


class JointLimitsConfig(_Model):
    """Limits shared by the three (identical) delta joints."""

    min_rad: float = -0.698  # -40°
    max_rad: float = 1.745  # +100°
    max_velocity_rps: float = Field(10.0, gt=0, le=100)
    max_acceleration_rps2: float = Field(100.0, gt=0, le=5000)
    max_jerk_rps3: float = Field(5000.0, gt=0, le=1e6)

    @model_validator(mode="after")
    def _ordered(self) -> JointLimitsConfig:
        if not self.min_rad < self.max_rad:
            raise ValueError(f"min_rad: {self.min_rad} must be < max_rad {self.max_rad}")
        return self


class WorkspaceConfig(_Model):
    """Safe TCP workspace: a cylinder about the base axis, between two heights above the belt."""

    radius_m: float = Field(0.5, gt=0)
    z_low_m: float = Field(0.0, description="lowest TCP height above the belt")
    z_high_m: float = Field(0.2, description="highest TCP height above the belt")

    @model_validator(mode="after")
    def _ordered(self) -> WorkspaceConfig:
        if not self.z_low_m < self.z_high_m:
            raise ValueError(f"z_low_m: {self.z_low_m} must be < z_high_m {self.z_high_m}")
        return self


class GripperConfig(_Model):
    """Vacuum suction cup."""

    cup_diameter_m: float = Field(0.04, gt=0, le=0.5)
    vacuum_capacity_kg: float = Field(1.0, gt=0, description="largest mass the cup holds")
    vacuum_dwell_s: float = Field(0.05, ge=0, le=2, description="vacuum on until sealed")
    release_s: float = Field(0.04, ge=0, le=2, description="vacuum off until the object drops")
    seal_pressure_kpa: float = Field(
        -60.0, lt=0, description="gauge pressure with a sealed cup (below atmosphere)"
    )
    grip_threshold_kpa: float = Field(
        -35.0, lt=0, description="gauge pressure below which the pick counts as verified"
    )


class MotionConfig(_Model):
    approach_height_m: float = Field(0.05, gt=0, description="hover above the pick point")
    standby_xyz: Vec3 | None = Field(
        None, description="belt-frame standby pose; default above the base at z_high_m"
    )


class SafetyConfig(_Model):
    max_payload_kg: float = Field(1.0, gt=0)
    max_tcp_speed_mps: float = Field(10.0, gt=0, description="FlexPicker-class top speed")
    braking_time_s: float = Field(0.1, gt=0, le=2, description="E-stop to standstill, worst case")
    watchdog_timeout_s: float = Field(0.25, gt=0, description="tracking/encoder data older → hold")
    min_belt_speed_mps: float = Field(0.02, ge=0, description="below this, no picks start")


class ArmConfig(_Model):
    """One arm on the line."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    kind: Literal["delta"] = "delta"
    base: BasePose
    geometry: DeltaGeometryConfig = Field(default_factory=DeltaGeometryConfig)
    joints: JointLimitsConfig = Field(default_factory=JointLimitsConfig)
    workspace: WorkspaceConfig = Field(default_factory=WorkspaceConfig)
    gripper: GripperConfig = Field(default_factory=GripperConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    bins: dict[str, Vec3] = Field(description="bin name → belt-frame release point (m)")

    @model_validator(mode="after")
    def _bins_reachable(self) -> ArmConfig:
        if not self.bins:
            raise ValueError("bins: an arm needs at least one bin")
        for name, xyz in self.bins.items():
            if not all(math.isfinite(v) for v in xyz):
                raise ValueError(f"bins.{name}: coordinates must be finite, got {xyz}")
            if not self.in_workspace(xyz):
                raise ValueError(f"bins.{name}: {xyz} is outside the arm's workspace")
        if self.motion.standby_xyz is not None and not self.in_workspace(self.motion.standby_xyz):
            raise ValueError(
                f"motion.standby_xyz: {self.motion.standby_xyz} is outside the workspace"
            )
        top = self.base.z_m - self.geometry.tool_length_m
        if self.workspace.z_high_m >= top:
            raise ValueError(
                f"workspace.z_high_m: {self.workspace.z_high_m} m must be below the base minus "
                f"the tool ({top} m)"
            )
        return self

    def in_workspace(self, xyz: Vec3) -> bool:
        """True when a belt-frame point lies in the workspace cylinder."""
        dx, dy = xyz[0] - self.base.x_m, xyz[1] - self.base.y_m
        ws = self.workspace
        return math.hypot(dx, dy) <= ws.radius_m + 1e-9 and ws.z_low_m - 1e-9 <= xyz[2] <= (
            ws.z_high_m + 1e-9
        )

    @property
    def standby(self) -> Vec3:
        if self.motion.standby_xyz is not None:
            return self.motion.standby_xyz
        return (self.base.x_m, self.base.y_m, self.workspace.z_high_m)


def _yaml_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "<root>"


def parse_arms(data: Any, source: str = "<arms>", prefix: str = "arms") -> list[ArmConfig]:
    """Validate a parsed ``arms:`` list; raise :class:`RobotConfigError` naming ``source`` and
    each bad YAML path. Arm names must be unique."""
    if not isinstance(data, list):
        raise RobotConfigError(
            f"{source}: {prefix}: expected a list of arms, got {type(data).__name__}"
        )
    arms: list[ArmConfig] = []
    problems: list[str] = []
    for k, item in enumerate(data):
        try:
            arms.append(ArmConfig.model_validate(item))
        except ValidationError as exc:
            for err in exc.errors():
                path = _yaml_path(f"{prefix}[{k}]", tuple(err["loc"]))
                problems.append(f"{path}: {err['msg'].removeprefix('Value error, ')}")
    names = [a.name for a in arms]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{prefix}: arm name {name!r} is used more than once")
    if problems:
        raise RobotConfigError(f"{source}: invalid arm description:\n  " + "\n  ".join(problems))
    return arms


def demo_arms(x_positions_m: tuple[float, ...] = (3.6, 4.6)) -> list[ArmConfig]:
    """The demo's delta pickers (Codian D4-1100 / FlexPicker class: Ø1.0 m × 0.2 m workspace,
    10 rad/s, 100 rad/s², 5000 rad/s³), one per x position, each over the belt centre line with
    two chutes just past the belt edges: ``crm`` on the left (+y), ``battery`` on the right."""
    return [
        ArmConfig(
            name=f"arm{k + 1}",
            base=BasePose(x_m=x),
            bins={"crm": (x, 0.45, 0.15), "battery": (x, -0.45, 0.15)},
        )
        for k, x in enumerate(x_positions_m)
    ]

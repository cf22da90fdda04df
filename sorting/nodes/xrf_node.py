"""XRF nodes: the DP5 driver aimed at tracked objects, and quantification of its spectra.

:class:`XrfAcquisitionNode` owns the serial link to the spectrometer (any
pyserial URL: a device, a pty, or the ``dp5sim://`` emulator of the simulated
line — the bytes cross the DP5 protocol either way). It follows the tracked
objects on ``sorting/objects``; when one approaches the XRF head it publishes
``xrf/aim`` (std_msgs/Float64, the traverse's across-belt target, m) and,
once the encoder (``belt/joint_states``) says the object is under the head,
acquires one spectrum and publishes
``xrf/spectrum`` (crmsort_msgs/XrfSpectrum, stamped with the time and encoder
position at which the acquisition started). The ``dp5sim://`` emulator's
acquisitions complete when they are read, so on the simulated line the node
acquires in its callback (deterministic replays). A device (a serial port or a
pty) counts for the live time: its acquisitions run on a worker thread, so the
node keeps following the belt and the objects meanwhile, and each spectrum is
published from the node's own callbacks once it is read. A trigger that comes
while the head still counts is refused and counted (``busy_refused``), not
queued behind it: by the time the head was free the object would have moved on.

:class:`XrfQuantNode` turns each ``xrf/spectrum`` into ``xrf/result``
(crmsort_msgs/XrfResult) with :class:`perception.xrf.Quantifier`.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from calibration.records import xrf_energy_from_store
from calibration.store import load_store
from perception.sensors.xrf.driver import Dp5Driver, XrfAcquisition
from perception.sensors.xrf.errors import Dp5Error
from perception.xrf import Balance, Quantifier, Spectrum, XrfError, load_setup
from sorting.config.cameras import calibration_path
from sorting.config.line import LineConfig
from sorting.msgs import new
from sorting.msgs.convert import header, stamp_ns
from sorting.runtime.context import Node, NodeContext
from sorting.xrf_trigger import Tracked, XrfTrigger, composition_stake


def _setup_path(text: str) -> Path | None:
    return Path(text) if text else None


class XrfAcquisitionNode(Node):
    """Aims and triggers the XRF head on tracked objects (see the module docstring)."""

    def __init__(self, ctx: NodeContext, line: LineConfig) -> None:
        super().__init__(ctx)
        self.cfg = line.sensors.xrf
        self.setup = load_setup(_setup_path(self.cfg.setup))
        self.driver = Dp5Driver.open_url(self.cfg.port, timeout_s=self.cfg.timeout_s,
                                         retries=self.cfg.retries)
        self.driver.configure(MCAC=self.cfg.channels)
        self.gain = self.setup.mca.gain_kev_per_channel(self.cfg.channels)
        self.offset = self.setup.mca.offset_kev
        store_file = calibration_path(line)
        scale = xrf_energy_from_store(load_store(store_file), self.cfg.channels,
                                      self.setup.mca.channels) if store_file.is_file() else None
        self.energy_calibrated = scale is not None
        if scale is not None:
            self.gain, self.offset = scale
        else:
            ctx.get_logger().warning(
                f"no xrf.energy calibration in {store_file} for {self.cfg.channels} channels: "
                "using the set-up's nominal energy scale")
        self.trigger = XrfTrigger(self.cfg.x_m,
                                  busy_m=self.cfg.head_busy_s() * line.belt.speed_mps)
        self.prices = dict(line.sorting.prices_eur_per_kg)
        self.acquisitions = 0
        self.failures = 0
        self.busy_refused = 0
        # a device blocks for the live time: acquire on a worker (see the module docstring)
        self._worker = (None if self.cfg.emulated() else
                        ThreadPoolExecutor(max_workers=1, thread_name_prefix="xrf-acquire"))
        self._pending: tuple[Future[XrfAcquisition], Tracked, float, int] | None = None
        self.pub_aim = ctx.create_publisher("std_msgs/msg/Float64", "xrf/aim", 10)
        self.pub = ctx.create_publisher("crmsort_msgs/msg/XrfSpectrum", "xrf/spectrum", 10)
        ctx.create_subscription("crmsort_msgs/msg/SortObjectArray", "sorting/objects",
                                self._on_objects, 5)
        ctx.create_subscription("sensor_msgs/msg/JointState", "belt/joint_states",
                                self._on_belt, 100)

    def _on_objects(self, msg: Any) -> None:
        tracked = [Tracked(int(o.id), float(o.belt_x_m), float(o.y_m), self._stake(o))
                   for o in msg.objects]
        aim = self.trigger.update(tracked, float(msg.belt_position_m))
        if aim is not None:
            self.pub_aim.publish(new("std_msgs/msg/Float64", data=aim.y_m))

    def _stake(self, o: Any) -> float:
        """What measuring object ``o`` is worth; 0 (and a warning) for an object whose
        element and u arrays disagree in length: it is still measured, in turn."""
        if len(o.elements) != len(o.mass_fraction_u):
            self.ctx.get_logger().warning(
                f"sorting/objects: object {o.id}: {len(o.elements)} elements but "
                f"{len(o.mass_fraction_u)} mass_fraction_u: its stake is taken as 0")
            return 0.0
        return composition_stake(float(o.mass_kg), list(o.elements),
                                 [float(u) for u in o.mass_fraction_u], self.prices)

    def _on_belt(self, msg: Any) -> None:
        p = float(msg.position[0])
        self._collect()
        acquire = self.trigger.tick(p)
        if acquire is not None:
            self._acquire(acquire, p)

    def _acquire(self, obj: Tracked, belt_position_m: float) -> None:
        started_ns = self.ctx.get_clock().now().nanoseconds
        if self._worker is None:
            try:
                acq = self.driver.acquire(self.cfg.live_time_s, self.cfg.channels)
            except Dp5Error as exc:
                self._failed(obj, exc)
                return
            self._publish(obj, belt_position_m, started_ns, acq)
            return
        if self._pending is not None:
            self.busy_refused += 1
            self.ctx.get_logger().warning(
                f"XRF head still counting for object {self._pending[1].object_id}: object "
                f"{obj.object_id} not measured (set sensors.xrf.busy_s to the head's cycle)")
            return
        future = self._worker.submit(self.driver.acquire, self.cfg.live_time_s,
                                     self.cfg.channels)
        self._pending = (future, obj, belt_position_m, started_ns)

    def _collect(self) -> None:
        """Publish the worker's acquisition once it is done (on the node's own thread)."""
        if self._pending is None or not self._pending[0].done():
            return
        future, obj, belt_position_m, started_ns = self._pending
        self._pending = None
        try:
            acq = future.result()
        except Dp5Error as exc:
            self._failed(obj, exc)
            return
        self._publish(obj, belt_position_m, started_ns, acq)

    def _failed(self, obj: Tracked, exc: Dp5Error) -> None:
        self.failures += 1
        self.ctx.get_logger().error(f"XRF acquisition for object {obj.object_id} failed: {exc}")

    def _publish(self, obj: Tracked, belt_position_m: float, started_ns: int,
                 acq: XrfAcquisition) -> None:
        self.acquisitions += 1
        self.pub.publish(new(
            "crmsort_msgs/msg/XrfSpectrum", header=header(started_ns, "xrf_spot"),
            acquisition_id=self.acquisitions,
            belt_position_m=belt_position_m,
            spot_y_m=float(obj.y_m), spot_radius_m=self.cfg.spot_radius_m,
            live_time_s=float(acq.live_time_s), real_time_s=float(acq.real_time_s),
            gain_kev_per_channel=self.gain, offset_kev=self.offset,
            tube_voltage_kv=float(self.setup.tube.voltage_kv),
            tube_current_ua=float(self.setup.tube.current_ua),
            counts=np.asarray(acq.counts, dtype=np.uint32),
        ))

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)   # an acquisition under way is still published
            self._collect()
        self.driver.close()


class XrfQuantNode(Node):
    """``xrf/spectrum`` → ``xrf/result`` (every analysed element: wt% ± u, LOD)."""

    def __init__(self, ctx: NodeContext, line: LineConfig) -> None:
        super().__init__(ctx)
        cfg = line.sensors.xrf
        self.quantifier = Quantifier(load_setup(_setup_path(cfg.setup)),
                                     balance=Balance.parse(cfg.balance))
        self.results: list[Any] = []
        self.failures = 0
        self.pub = ctx.create_publisher("crmsort_msgs/msg/XrfResult", "xrf/result", 10)
        ctx.create_subscription("crmsort_msgs/msg/XrfSpectrum", "xrf/spectrum", self._on_spectrum,
                                10)

    def _on_spectrum(self, msg: Any) -> None:
        try:
            spec = Spectrum(counts=np.asarray(msg.counts, dtype=np.float64),
                            gain_kev_per_channel=float(msg.gain_kev_per_channel),
                            offset_kev=float(msg.offset_kev), live_time_s=float(msg.live_time_s),
                            real_time_s=float(msg.real_time_s))
            res = self.quantifier.quantify(spec)
        except XrfError as exc:
            # a spectrum that cannot be quantified (bad calibration fields, a scatter window
            # the dark-matrix family cannot match) is reported and counted; the line goes on
            self.failures += 1
            self.ctx.get_logger().warning(
                f"XRF acquisition {msg.acquisition_id}: not quantified: {exc}")
            return
        # every analysed element, below its detection limit too (mass_fraction <= lod): a
        # silent analysis is a measured near-zero that fusion must not replace by a prior
        els = list(res.elements)
        out = new(
            "crmsort_msgs/msg/XrfResult", header=header(stamp_ns(msg.header.stamp), "xrf_spot"),
            acquisition_id=msg.acquisition_id, belt_position_m=msg.belt_position_m,
            spot_y_m=msg.spot_y_m, spot_radius_m=msg.spot_radius_m,
            elements=[e.symbol for e in els],
            net_counts=np.array([e.net_counts for e in els], dtype=np.float32),
            mass_fraction=np.array([e.mass_fraction for e in els], dtype=np.float32),
            mass_fraction_u=np.array([e.mass_fraction_u for e in els], dtype=np.float32),
            lod=np.array([e.lod for e in els], dtype=np.float32),
            chi2_reduced=float(res.chi2_reduced), method=res.method,
            balance_fraction=float(res.balance_fraction),
        )
        self.results.append(out)
        self.pub.publish(out)

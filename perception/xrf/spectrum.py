"""``Spectrum``: counts per MCA channel with energy calibration and live/real time; readers and
writers for ``.npz``, Amptek ``.mca`` (text, ``<<DATA>>`` section, optional ``<<CALIBRATION>>``)
and CSV.

Energy of channel i: E(i) = offset_kev + gain_kev_per_channel·i + quadratic_kev·i² (keV).
Every constructor validates: counts one-dimensional, finite and ≥ 0; calibration strictly
increasing over the channel range; live time > 0 and ≤ real time; a per-channel energy array or a
declared channel count that disagrees with the counts. Violations raise ``SpectrumError``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from perception.xrf.errors import SpectrumError


@dataclass(frozen=True)
class Spectrum:
    """One acquisition. ``counts`` [channels] (float64, integers in practice), calibration in keV,
    times in s. ``source`` names where it came from (file path) for error messages."""

    counts: NDArray[np.float64]
    gain_kev_per_channel: float
    offset_kev: float
    live_time_s: float
    real_time_s: float
    quadratic_kev: float = 0.0
    source: str = field(default="<array>", compare=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.counts, dtype=np.float64)
        where = self.source
        if c.ndim != 1 or c.size < 16:
            raise SpectrumError(
                f"{where}: counts must be 1-D with ≥ 16 channels, got shape {c.shape}")
        bad = np.flatnonzero(~np.isfinite(c))
        if bad.size:
            raise SpectrumError(f"{where}: counts not finite at channel {bad[0]} ({c[bad[0]]})")
        neg = np.flatnonzero(c < 0)
        if neg.size:
            raise SpectrumError(f"{where}: negative counts at channel {neg[0]} ({c[neg[0]]})")
        for name in ("gain_kev_per_channel", "offset_kev", "quadratic_kev", "live_time_s",
                     "real_time_s"):
            v = float(getattr(self, name))
            if not np.isfinite(v):
                raise SpectrumError(f"{where}: {name} is not finite ({v})")
        # dE/di = gain + 2·q·i must stay > 0 over the channel range
        slopes = (self.gain_kev_per_channel,
                  self.gain_kev_per_channel + 2.0 * self.quadratic_kev * (c.size - 1))
        if min(slopes) <= 0.0:
            raise SpectrumError(
                f"{where}: energy calibration not increasing over channels 0..{c.size - 1} "
                f"(gain {self.gain_kev_per_channel} keV/ch, quadratic {self.quadratic_kev})"
            )
        if self.live_time_s <= 0.0:
            raise SpectrumError(f"{where}: live_time_s must be > 0, got {self.live_time_s}")
        if self.real_time_s < self.live_time_s * (1.0 - 1e-6):
            raise SpectrumError(
                f"{where}: real_time_s {self.real_time_s} < live_time_s {self.live_time_s}"
            )
        c.setflags(write=False)
        object.__setattr__(self, "counts", c)

    @property
    def channels(self) -> int:
        """Number of channels."""
        return int(self.counts.size)

    def energies_kev(self) -> NDArray[np.float64]:
        """Energy (keV) of every channel centre, shape [channels]."""
        i = np.arange(self.channels, dtype=np.float64)
        return self.offset_kev + self.gain_kev_per_channel * i + self.quadratic_kev * i * i

    def channel_of(self, energy_kev: float) -> float:
        """Fractional channel of an energy (keV) on the linear part of the calibration."""
        return (energy_kev - self.offset_kev) / self.gain_kev_per_channel

    @classmethod
    def from_energies(cls, counts: ArrayLike, energies_kev: ArrayLike, live_time_s: float,
                      real_time_s: float | None = None, source: str = "<array>") -> Spectrum:
        """Build from per-channel energies (fitted to a quadratic calibration). Raises
        ``SpectrumError`` if lengths differ or energies are not strictly increasing."""
        c = np.asarray(counts, dtype=np.float64)
        e = np.asarray(energies_kev, dtype=np.float64)
        if e.shape != c.shape:
            raise SpectrumError(
                f"{source}: {c.size} channels of counts but {e.size} calibration energies"
            )
        if not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            i = int(np.argmax(~(np.diff(e) > 0))) if e.size > 1 else 0
            raise SpectrumError(
                f"{source}: calibration energies not strictly increasing at channel {i + 1}"
            )
        q, g, o = np.polyfit(np.arange(e.size, dtype=np.float64), e, 2)
        if abs(q) * e.size**2 < 1e-6 * max(abs(e[-1]), 1.0):
            q = 0.0
            g, o = np.polyfit(np.arange(e.size, dtype=np.float64), e, 1)
        return cls(c, float(g), float(o), float(live_time_s),
                   float(real_time_s if real_time_s is not None else live_time_s),
                   quadratic_kev=float(q), source=source)


def calibration_from_points(points: list[tuple[float, float]], where: str) -> tuple[float, float]:
    """(gain, offset) keV from (channel, keV) pairs by least squares; ``SpectrumError`` if fewer
    than two distinct channels or if energy does not increase with channel."""
    if len({p[0] for p in points}) < 2:
        raise SpectrumError(f"{where}: calibration needs ≥ 2 distinct channels, got {points}")
    ch = np.array([p[0] for p in points])
    en = np.array([p[1] for p in points])
    order = np.argsort(ch)
    if np.any(np.diff(en[order]) <= 0):
        raise SpectrumError(f"{where}: calibration energies not increasing with channel: {points}")
    g, o = np.polyfit(ch, en, 1)
    return float(g), float(o)


def _default_cal(where: str, default: tuple[float, float] | None) -> tuple[float, float]:
    if default is None:
        raise SpectrumError(f"{where}: no energy calibration in the file and none given")
    return default


def read_npz(path: str | Path, default_calibration: tuple[float, float] | None = None
             ) -> Spectrum:
    """Read ``counts`` and ``live_time_s`` (+ ``real_time_s``, and ``gain_kev_per_channel`` /
    ``offset_kev`` [/ ``quadratic_kev``] or ``energies_kev``; optional ``channels``)."""
    p = str(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError) as exc:
        raise SpectrumError(f"{p}: cannot read .npz: {exc}") from exc
    for key in ("counts", "live_time_s"):
        if key not in d:
            raise SpectrumError(f"{p}: missing array {key!r} (have {sorted(d)})")
    counts = d["counts"].astype(np.float64)
    if "channels" in d and int(d["channels"]) != counts.size:
        raise SpectrumError(f"{p}: channels = {int(d['channels'])} but {counts.size} counts")
    live = float(d["live_time_s"])
    real = float(d["real_time_s"]) if "real_time_s" in d else live
    if "energies_kev" in d:
        return Spectrum.from_energies(counts, d["energies_kev"], live, real, source=p)
    if "gain_kev_per_channel" in d:
        g, o = float(d["gain_kev_per_channel"]), float(d.get("offset_kev", 0.0))
    else:
        g, o = _default_cal(p, default_calibration)
    q = float(d["quadratic_kev"]) if "quadratic_kev" in d else 0.0
    return Spectrum(counts, g, o, live, real, quadratic_kev=q, source=p)


def save_npz(spec: Spectrum, path: str | Path) -> None:
    """Write ``spec`` in the layout ``read_npz`` reads."""
    np.savez(path, counts=spec.counts, gain_kev_per_channel=spec.gain_kev_per_channel,
             offset_kev=spec.offset_kev, quadratic_kev=spec.quadratic_kev,
             live_time_s=spec.live_time_s, real_time_s=spec.real_time_s, channels=spec.channels)


_SECTION = re.compile(r"^<<(.+?)>>\s*$")


def read_mca(path: str | Path, default_calibration: tuple[float, float] | None = None
             ) -> Spectrum:
    """Read an Amptek MCA text file: ``LIVE_TIME - x``, ``REAL_TIME - x``, ``<<CALIBRATION>>``
    pairs ``channel energy`` (used when present), ``<<DATA>>`` one count a line up to
    ``<<END>>``, and ``MCAC=n`` in ``<<DP5 CONFIGURATION>>`` checked against the data length."""
    p = str(path)
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise SpectrumError(f"{p}: cannot read: {exc.strerror}") from exc
    section = ""
    header: dict[str, str] = {}
    cal: list[tuple[float, float]] = []
    data: list[float] = []
    mcac: int | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = _SECTION.match(line)
        if m:
            section = m.group(1).upper()
            continue
        if section == "PMCA SPECTRUM" and " - " in line:
            k, v = line.split(" - ", 1)
            header[k.strip().upper()] = v.strip()
        elif section == "CALIBRATION" and not line.upper().startswith("LABEL"):
            parts = line.split()
            try:
                cal.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError) as exc:
                raise SpectrumError(f"{p}:{lineno}: calibration line {line!r}") from exc
        elif section == "DATA":
            try:
                data.append(float(line))
            except ValueError as exc:
                raise SpectrumError(f"{p}:{lineno}: count {line!r} is not a number") from exc
        elif section.startswith("DP5 CONFIGURATION"):
            m2 = re.search(r"MCAC=(\d+)", line)
            if m2:
                mcac = int(m2.group(1))
    if not data:
        raise SpectrumError(f"{p}: no <<DATA>> section")
    if mcac is not None and mcac != len(data):
        raise SpectrumError(f"{p}: MCAC={mcac} in the configuration but {len(data)} data lines")
    try:
        live = float(header.get("LIVE_TIME", "nan"))
        real = float(header.get("REAL_TIME", header.get("LIVE_TIME", "nan")))
    except ValueError as exc:
        raise SpectrumError(f"{p}: LIVE_TIME/REAL_TIME not numbers: {header}") from exc
    if not np.isfinite(live):
        raise SpectrumError(f"{p}: LIVE_TIME missing")
    if cal:
        if max(c for c, _ in cal) >= len(data):
            raise SpectrumError(
                f"{p}: calibration point at channel {max(c for c, _ in cal):g} beyond the "
                f"{len(data)} data channels"
            )
        g, o = calibration_from_points(cal, p)
    else:
        g, o = _default_cal(p, default_calibration)
    return Spectrum(np.array(data), g, o, live, real, source=p)


def write_mca(spec: Spectrum, path: str | Path) -> None:
    """Write an Amptek-style MCA text file (two-point calibration, MCAC in the configuration)."""
    n = spec.channels
    lines = ["<<PMCA SPECTRUM>>", "TAG - live_data", "DESCRIPTION - crmsort",
             f"LIVE_TIME - {spec.live_time_s:.6f}", f"REAL_TIME - {spec.real_time_s:.6f}",
             "<<CALIBRATION>>", "LABEL - keV"]
    for ch in (0, n - 1):
        lines.append(f"{ch} {spec.offset_kev + spec.gain_kev_per_channel * ch:.6f}")
    lines.append("<<DATA>>")
    lines.extend(str(round(c)) for c in spec.counts)
    lines += ["<<END>>", "<<DP5 CONFIGURATION>>", f"MCAC={n};", "<<DP5 CONFIGURATION END>>"]
    Path(path).write_text("\n".join(lines) + "\n")


def read_csv(path: str | Path, default_calibration: tuple[float, float] | None = None
             ) -> Spectrum:
    """Read CSV: ``# key=value`` comment lines (``live_time_s``, ``real_time_s``,
    ``gain_kev_per_channel``, ``offset_kev``), then either a header naming ``counts`` and
    optionally ``energy_kev`` (or ``channel``) columns, or one count per line."""
    p = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpectrumError(f"{p}: cannot read: {exc.strerror}") from exc
    meta: dict[str, float] = {}
    body: list[str] = []
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#"):
            for k, v in re.findall(r"(\w+)\s*=\s*([-+0-9.eE]+)", s):
                meta[k] = float(v)
        elif s:
            body.append(s)
    if not body:
        raise SpectrumError(f"{p}: no data rows")
    rows = list(csv.reader(io.StringIO("\n".join(body))))
    cols = [c.strip().lower() for c in rows[0]]
    has_header = any(not _is_number(c) for c in cols)
    if has_header and "counts" not in cols:
        raise SpectrumError(f"{p}: header {rows[0]} has no 'counts' column")
    start = 1 if has_header else 0
    ci = cols.index("counts") if has_header else len(cols) - 1
    ei = cols.index("energy_kev") if has_header and "energy_kev" in cols else None
    counts: list[float] = []
    energies: list[float] = []
    for r, row in enumerate(rows[start:], start=start + 1):
        try:
            counts.append(float(row[ci]))
            if ei is not None:
                energies.append(float(row[ei]))
        except (ValueError, IndexError) as exc:
            raise SpectrumError(f"{p}: data row {r}: {row!r} is not numeric") from exc
    if "live_time_s" not in meta:
        raise SpectrumError(f"{p}: '# live_time_s=…' comment missing")
    live = meta["live_time_s"]
    real = meta.get("real_time_s", live)
    if "channels" in meta and int(meta["channels"]) != len(counts):
        raise SpectrumError(f"{p}: channels={int(meta['channels'])} but {len(counts)} rows")
    if ei is not None:
        return Spectrum.from_energies(counts, energies, live, real, source=p)
    if "gain_kev_per_channel" in meta:
        g, o = meta["gain_kev_per_channel"], meta.get("offset_kev", 0.0)
    else:
        g, o = _default_cal(p, default_calibration)
    return Spectrum(np.array(counts), g, o, live, real, source=p)


def write_csv(spec: Spectrum, path: str | Path) -> None:
    """Write CSV with ``# key=value`` metadata and ``channel,energy_kev,counts`` rows."""
    e = spec.energies_kev()
    out = [f"# live_time_s={spec.live_time_s}", f"# real_time_s={spec.real_time_s}",
           f"# gain_kev_per_channel={spec.gain_kev_per_channel}",
           f"# offset_kev={spec.offset_kev}", "channel,energy_kev,counts"]
    out += [f"{i},{e[i]:.6f},{round(c)}" for i, c in enumerate(spec.counts)]
    Path(path).write_text("\n".join(out) + "\n")


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def read_spectrum(path: str | Path, default_calibration: tuple[float, float] | None = None
                  ) -> Spectrum:
    """Read by extension: ``.npz``, ``.mca``, ``.csv``/``.txt``; ``SpectrumError`` otherwise."""
    suffix = Path(path).suffix.lower()
    readers = {".npz": read_npz, ".mca": read_mca, ".csv": read_csv, ".txt": read_csv}
    if suffix not in readers:
        raise SpectrumError(f"{path}: unknown spectrum format {suffix!r} (.npz, .mca, .csv)")
    return readers[suffix](path, default_calibration)


def write_spectrum(spec: Spectrum, path: str | Path) -> None:
    """Write by extension: ``.npz``, ``.mca``, ``.csv``."""
    suffix = Path(path).suffix.lower()
    writers = {".npz": save_npz, ".mca": write_mca, ".csv": write_csv}
    if suffix not in writers:
        raise SpectrumError(f"{path}: unknown spectrum format {suffix!r} (.npz, .mca, .csv)")
    writers[suffix](spec, path)

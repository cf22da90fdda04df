"""DP5 driver through the emulator: over ``serial_for_url("dp5sim://")`` and over a pty."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import serial

import perception.sensors.xrf  # noqa: F401  (registers dp5sim://)
from perception.sensors.xrf.driver import Dp5Driver
from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.errors import (
    Dp5AckError,
    Dp5BusyError,
    Dp5ConfigError,
    Dp5Error,
    Dp5TimeoutError,
)
from perception.sensors.xrf.faults import Fault, FaultConfig
from perception.sensors.xrf.packets import (
    ACK_RETRYABLE,
    ACK_SUCCESS,
    CHANNEL_COUNTS,
    AckCode,
    Request,
)
from perception.sensors.xrf.pty_bridge import PtyBridge
from perception.sensors.xrf.synthetic import SyntheticSource

RETRIES = 2


def _no_sleep(_: float) -> None:
    pass


@pytest.fixture(params=["url", "pty"])
def rig(request: pytest.FixtureRequest) -> Iterator[tuple[Dp5Driver, Dp5Emulator]]:
    """A driver talking to a fresh emulator, through dp5sim:// or through a pseudo-terminal."""
    emu = Dp5Emulator(SyntheticSource(rng=np.random.default_rng(5)), np.random.default_rng(6),
                      channels=1024)
    if request.param == "url":
        port = serial.serial_for_url("dp5sim://", emulator=emu, timeout=0.05)
        drv = Dp5Driver(port, timeout_s=0.05, retries=RETRIES, sleep=_no_sleep)
        yield drv, emu
        drv.close()
    else:
        with PtyBridge(emu, poll_s=0.005) as path:
            # generous: the bridge thread shares 2 busy cores with other work
            port = serial.Serial(path, baudrate=115200, timeout=0.5)
            drv = Dp5Driver(port, timeout_s=0.5, retries=RETRIES, sleep=_no_sleep)
            yield drv, emu
            drv.close()


def test_every_request_type_round_trips(rig: tuple[Dp5Driver, Dp5Emulator]) -> None:
    drv, _emu = rig
    assert drv.echo(b"\x00\xf5\xfaecho") == b"\x00\xf5\xfaecho"  # sync bytes inside data
    drv.configure(MCAC=2048, PRET=0.5, TPEA=2.4)
    assert drv.read_config("MCAC", "PRET", "TPEA") == {"MCAC": "2048", "PRET": "0.5",
                                                       "TPEA": "2.4"}
    drv.enable_mca()
    st = drv.status()  # instant presets: first status after enable sees 0.5 s live done
    assert st.mca_enabled and st.preset_time_done and st.live_time_s == pytest.approx(0.5)
    drv.disable_mca()
    assert not drv.status().mca_enabled
    counts, st2 = drv.spectrum()
    assert counts.shape == (2048,) and counts.sum() == st2.slow_count > 0
    for req in (Request.SPECTRUM, Request.SPECTRUM_CLEAR):  # spectrum without status
        f = drv.transact(req, b"", lambda fr: fr.pid1 == 0x81)
        assert (f.pid2, len(f.data)) == (7, 3 * 2048)
    assert drv.spectrum()[0].sum() == 0  # 02/02 cleared it
    drv.enable_mca()
    drv.status()
    drv.disable_mca()  # else the still-enabled MCA refills to the preset at once
    c, _ = drv.spectrum(clear=True)  # 02/04
    assert c.sum() > 0 and drv.spectrum()[0].sum() == 0
    drv.clear()
    assert drv.status().real_time_s == 0.0
    assert sum(drv.errors.values()) == 0


@pytest.mark.parametrize("channels", CHANNEL_COUNTS)
def test_acquire_every_channel_count_over_url(channels: int) -> None:
    src = SyntheticSource(rate_cps=5000.0, rng=np.random.default_rng(channels))
    emu = Dp5Emulator(src, np.random.default_rng(1))
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu), sleep=_no_sleep)
    acq = drv.acquire(0.2, channels)
    assert acq.counts.shape == (channels,) and acq.channels == channels
    assert acq.counts.sum() == acq.status.slow_count
    np.testing.assert_array_equal(acq.counts, emu.counts)


def test_acquire_8192_over_pty() -> None:
    emu = Dp5Emulator(rng=np.random.default_rng(2))
    with PtyBridge(emu, poll_s=0.005) as path:
        drv = Dp5Driver(serial.Serial(path, timeout=0.5), timeout_s=0.5, sleep=_no_sleep)
        acq = drv.acquire(0.3, 8192)  # 24 640-byte reply crosses the pty in pieces
        drv.close()
    np.testing.assert_array_equal(acq.counts, emu.counts)
    assert sum(drv.errors.values()) == 0


def test_acquire_honours_preset_and_counts_match_source() -> None:
    src = SyntheticSource(rate_cps=50_000.0, rng=np.random.default_rng(11))
    emu = Dp5Emulator(src, np.random.default_rng(12), channels=2048)
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu), sleep=_no_sleep)
    acq = drv.acquire(live_time_s=2.0, channels=2048)
    # status time fields have 1 ms resolution
    assert acq.live_time_s == pytest.approx(2.0, abs=1e-3)
    expected = src.expected(2.0, 2048).sum()  # 1e5 counts
    assert abs(acq.counts.sum() - expected) < 5 * np.sqrt(expected)  # Poisson 5σ
    # non-paralyzable dead time: real = live + n τ, τ = 2 µs by default (TPEA = 1 µs)
    tau = 2e-6
    assert acq.real_time_s == pytest.approx(2.0 + acq.counts.sum() * tau, abs=2e-3)
    assert acq.status.dead_time_fraction == pytest.approx(acq.dead_time_fraction, abs=0.01)


def test_acquire_with_clock_polls_until_preset() -> None:
    t = [0.0]

    def clock() -> float:
        t[0] += 0.25  # each request finds a quarter second has passed
        return t[0]

    emu = Dp5Emulator(rng=np.random.default_rng(3), clock=clock, channels=512)
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu), sleep=_no_sleep)
    acq = drv.acquire(1.0)
    assert acq.live_time_s == pytest.approx(1.0, abs=1e-3)  # capped at the preset exactly
    assert emu.stats["req:STATUS"] >= 3  # it had to poll


@pytest.mark.parametrize("code", [c for c in AckCode if c not in ACK_SUCCESS])
def test_every_ack_error_code(code: AckCode) -> None:
    n = RETRIES + 1 if code in ACK_RETRYABLE else 1  # refusals are not resent
    emu = Dp5Emulator(rng=np.random.default_rng(0), faults=FaultConfig(script=(code,) * n))
    sleeps: list[float] = []
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu), retries=RETRIES,
                    sleep=sleeps.append)
    with pytest.raises(Dp5AckError) as err:
        drv.status()
    assert err.value.code == int(code)
    key = f"ack_{code.name.lower()}"
    if code in ACK_RETRYABLE:  # link errors and busy: resent until retries run out
        assert drv.errors[key] == RETRIES + 1 and drv.errors["retries"] == RETRIES
        assert isinstance(err.value, Dp5BusyError) == (code is AckCode.BUSY)
        assert len(sleeps) == (RETRIES + 1 if code is AckCode.BUSY else 0)
    else:  # refusals: raised at once
        assert drv.errors[key] == 1 and drv.errors["retries"] == 0
    # the link still works afterwards (script exhausted)
    assert drv.echo(b"ok") == b"ok"


def test_busy_ack_is_retried_then_succeeds(rig: tuple[Dp5Driver, Dp5Emulator]) -> None:
    drv, emu = rig
    emu.script([Fault.BUSY, Fault.BUSY])
    assert drv.status().configured
    assert drv.errors["ack_busy"] == 2 and drv.errors["retries"] == 2


def test_silence_times_out_with_retries(rig: tuple[Dp5Driver, Dp5Emulator]) -> None:
    drv, emu = rig
    emu.script([Fault.SILENCE] * (RETRIES + 1))
    with pytest.raises(Dp5TimeoutError, match="gave up after 3 attempts"):
        drv.status()
    assert drv.errors["timeout"] == RETRIES + 1 and drv.errors["retries"] == RETRIES
    emu.script([Fault.SILENCE])
    assert drv.echo(b"x") == b"x" and drv.errors["timeout"] == RETRIES + 2


def test_truncated_and_corrupt_replies_are_retried(rig: tuple[Dp5Driver, Dp5Emulator]) -> None:
    drv, emu = rig
    emu.script([Fault.TRUNCATE, Fault.BAD_CHECKSUM])
    st = drv.status()
    assert st.serial_number == emu.serial_number
    assert drv.errors["checksum"] == 1
    # a cut inside the 6-byte header is indistinguishable from silence + a few stray bytes
    assert drv.errors["truncated"] + drv.errors["timeout"] == 1
    assert drv.errors["retries"] == 2
    emu.script([Fault.TRUNCATE] * (RETRIES + 1))
    with pytest.raises(Dp5TimeoutError):
        drv.echo(b"abc")


def test_garbage_before_replies_is_skipped_without_retry(
    rig: tuple[Dp5Driver, Dp5Emulator],
) -> None:
    drv, emu = rig
    emu.script([Fault.GARBAGE] * 8)
    for i in range(8):
        assert drv.echo(bytes([i]) * 5) == bytes([i]) * 5
    assert drv.errors["sync_bytes"] > 0 and drv.errors["retries"] == 0


def test_random_faults_acquisitions_complete_and_errors_are_counted() -> None:
    faults = FaultConfig(bad_checksum=0.04, truncate=0.04, busy=0.04, silence=0.04, garbage=0.1)
    emu = Dp5Emulator(rng=np.random.default_rng(21), faults=faults)
    drv = Dp5Driver(serial.serial_for_url("dp5sim://", emulator=emu, timeout=0.01),
                    timeout_s=0.01, retries=8, sleep=_no_sleep)
    for _ in range(15):
        acq = drv.acquire(0.1, 1024)
        np.testing.assert_array_equal(acq.counts, emu.counts)
    injected = sum(v for k, v in emu.stats.items() if k.startswith("fault:"))
    assert injected > 0 and drv.errors["retries"] > 0
    # every injected fault that breaks a reply was seen by the driver as some error
    broken = injected - emu.stats["fault:GARBAGE"]
    assert drv.errors["retries"] == broken


class _GarbagePort:
    """A port that answers anything with random bytes (a wrong device, a noisy line)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.timeout: float | None = 0.01
        self._buf = b""

    def write(self, data: bytes) -> int:
        n = int(self.rng.integers(0, 3000))
        self._buf = self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        if self.rng.random() < 0.5:  # sprinkle sync words to provoke fake headers
            self._buf = self._buf.replace(b"\x00", b"\xf5\xfa")
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    @property
    def in_waiting(self) -> int:
        return len(self._buf)

    def reset_input_buffer(self) -> None:
        self._buf = b""

    def close(self) -> None:
        pass


@pytest.mark.parametrize("seed", range(6))
def test_driver_never_crashes_on_garbage(seed: int) -> None:
    drv = Dp5Driver(_GarbagePort(seed), retries=2, sleep=_no_sleep)
    for call in (drv.status, drv.echo, lambda: drv.read_config("MCAC"), drv.spectrum):
        with pytest.raises(Dp5Error):  # only typed errors, after retries
            call()
    assert drv.errors["retries"] >= 2 * 4 - 1


def test_bad_arguments_are_typed_errors() -> None:
    drv = Dp5Driver.open_url("dp5sim://?seed=3&channels=256", sleep=_no_sleep)
    with pytest.raises(Dp5AckError, match="MCAC=1000") as err:
        drv.configure(MCAC=1000)
    assert err.value.code == AckCode.BAD_PARAMETER
    with pytest.raises(Dp5AckError, match="BAD_PARAMETER"):
        drv.configure(ZZZZ=1)
    with pytest.raises(Dp5ConfigError):
        drv.configure(TOOLONG=1)
    with pytest.raises(Dp5ConfigError):
        drv.acquire(-1.0)
    with pytest.raises(Dp5ConfigError):
        drv.acquire(1.0, channels=1000)
    with pytest.raises(Dp5Error, match="cannot open"):
        Dp5Driver.open_url("dp5sim://?bogus=1")
    assert drv.read_config("MCAC") == {"MCAC": "256"}  # refused settings left no trace

"""DP5 emulator state machine, fault settings, URL handler and pty bridge, at the byte level."""

from __future__ import annotations

import numpy as np
import pytest
import serial

import perception.sensors.xrf  # noqa: F401  (registers dp5sim://)
from perception.sensors.xrf.emulator import Dp5Emulator
from perception.sensors.xrf.errors import XrfDeviceError
from perception.sensors.xrf.faults import Fault, FaultConfig
from perception.sensors.xrf.packets import AckCode, Dp5Status, Request, decode_spectrum
from perception.sensors.xrf.protocol import Frame, FrameParser, build_frame
from perception.sensors.xrf.pty_bridge import PtyBridge
from perception.sensors.xrf.synthetic import SyntheticSource
from perception.sensors.xrf.url_handler import (
    emulator_from_url,
    register_source,
    unregister_source,
)


def _ask(emu: Dp5Emulator, raw: bytes) -> list[Frame]:
    emu.write(raw)
    events = FrameParser().feed(emu.read())
    assert all(isinstance(e, Frame) for e in events), events
    return [e for e in events if isinstance(e, Frame)]


def _req(emu: Dp5Emulator, req: Request, data: bytes = b"") -> Frame:
    (reply,) = _ask(emu, build_frame(*req.pids, data))
    return reply


def _ack(code: AckCode) -> tuple[int, int]:
    return (0xFF, int(code))


def test_malformed_requests_get_the_matching_ack() -> None:
    emu = Dp5Emulator()
    assert _ask(emu, build_frame(0x55, 0x01))[0].pids == _ack(AckCode.PID_ERROR)
    assert _ask(emu, build_frame(0x01, 0x09))[0].pids == _ack(AckCode.UNRECOGNIZED_COMMAND)
    assert _ask(emu, build_frame(0x01, 0x01, b"x"))[0].pids == _ack(AckCode.LEN_ERROR)
    bad = bytearray(build_frame(0x01, 0x01))
    bad[-1] ^= 1
    assert _ask(emu, bytes(bad))[0].pids == _ack(AckCode.CHECKSUM_ERROR)
    assert _ask(emu, b"\xf5\xfa\x20\x02\x10\x00")[0].pids == _ack(AckCode.LEN_ERROR)  # > 512 B
    replies = _ask(emu, b"junk" + build_frame(0x01, 0x01))
    assert [r.pids for r in replies] == [_ack(AckCode.SYNC_ERROR), (0x80, 0x01)]


def test_config_set_readback_and_validation() -> None:
    emu = Dp5Emulator(channels=256)
    assert _req(emu, Request.CONFIG_SET, b"MCAC=4096;PRET=2.5;PRER=OFF;").pids == (0xFF, 0)
    back = _req(emu, Request.CONFIG_READ, b"MCAC=?;PRET;PRER=?;")
    assert back.pids == (0x82, 0x07) and back.data == b"MCAC=4096;PRET=2.5;PRER=OFF;"
    assert emu.counts.shape == (4096,)  # MCAC re-sizes (and clears) the spectrum
    for bad in (b"MCAC=100;", b"PRET=-1;", b"TPEA=0;", b"XXXX=1;", b"MCAC", b"\xff\xfe"):
        reply = _req(emu, Request.CONFIG_SET, bad)
        assert reply.pids == _ack(AckCode.BAD_PARAMETER), bad
    assert _req(emu, Request.CONFIG_SET, b"MCAC=512;XXXX=1;").data == b"XXXX=1;"
    assert emu.config["MCAC"] == "4096"  # a refused set changes nothing
    assert _req(emu, Request.CONFIG_READ, b"NOPE;").pids == _ack(AckCode.BAD_PARAMETER)


def test_mca_state_machine_and_dead_time() -> None:
    src = SyntheticSource(rate_cps=100_000.0, rng=np.random.default_rng(1))
    emu = Dp5Emulator(src, np.random.default_rng(2), channels=1024)
    emu.advance(1.0)
    assert emu.counts.sum() == 0  # disabled: nothing counts
    _req(emu, Request.MCA_ENABLE)
    emu.advance(0.5)  # no preset: counts as long as time passes
    st = Dp5Status.decode(_req(emu, Request.STATUS).data)
    assert st.mca_enabled and not st.preset_time_done
    assert st.real_time_s == pytest.approx(0.5, rel=0.02)  # rate estimate starts at 0
    emu.advance(0.5)
    st = Dp5Status.decode(_req(emu, Request.STATUS).data)
    assert st.real_time_s == pytest.approx(1.0, rel=0.02)
    # 1e5 cps × 2 µs = 20 % dead: live/real = 1/(1 + rτ)
    assert st.live_time_s / st.real_time_s == pytest.approx(1 / 1.2, rel=0.02)
    assert st.dead_time_fraction == pytest.approx(1 - 1 / 1.2, abs=0.01)
    _req(emu, Request.MCA_DISABLE)
    before = emu.counts.sum()
    emu.advance(1.0)
    assert emu.counts.sum() == before
    _req(emu, Request.MCA_CLEAR)
    assert emu.counts.sum() == 0 and emu.status().real_time_s == 0.0


def test_preset_real_time_is_honoured() -> None:
    emu = Dp5Emulator(SyntheticSource(rate_cps=100_000.0), np.random.default_rng(0))
    _req(emu, Request.CONFIG_SET, b"PRER=2;")
    _req(emu, Request.MCA_ENABLE)
    st = Dp5Status.decode(_req(emu, Request.STATUS).data)
    assert st.preset_time_done and st.real_time_s == pytest.approx(2.0, abs=0.01)


def test_spectrum_reply_and_scripted_faults() -> None:
    emu = Dp5Emulator(rng=np.random.default_rng(4), channels=512,
                      faults=FaultConfig(script=(Fault.NONE, Fault.SILENCE, Fault.BUSY,
                                                 Fault.BAD_CHECKSUM, AckCode.FPGA_ERROR)))
    _req(emu, Request.MCA_ENABLE)  # NONE
    emu.write(build_frame(*Request.STATUS.pids))  # SILENCE
    assert emu.in_waiting == 0
    assert _req(emu, Request.STATUS).pids == _ack(AckCode.BUSY)
    emu.write(build_frame(*Request.STATUS.pids))  # BAD_CHECKSUM
    assert any(type(e).__name__ == "ChecksumError" for e in FrameParser().feed(emu.read()))
    assert _req(emu, Request.ECHO, b"x").pids == _ack(AckCode.FPGA_ERROR)
    emu.advance(0.2)
    reply = _req(emu, Request.SPECTRUM_STATUS)
    assert reply.pids == (0x81, 0x04) and len(reply.data) == 3 * 512 + 64
    np.testing.assert_array_equal(decode_spectrum(reply.data[:1536], 512), emu.counts)


def test_fault_spec_parsing() -> None:
    f = FaultConfig.from_spec("checksum:0.1,busy:0.2", "busy,none,ack:0x05,silence")
    assert (f.bad_checksum, f.busy) == (0.1, 0.2)
    assert f.script == (Fault.BUSY, Fault.NONE, AckCode.BAD_PARAMETER, Fault.SILENCE)
    for faults, script in (("nope:0.1", ""), ("busy:x", ""), ("", "ack:99"), ("", "boom"),
                           ("busy:0.7,silence:0.7", "")):
        with pytest.raises(XrfDeviceError):
            FaultConfig.from_spec(faults, script)


def test_fault_probabilities_are_honoured() -> None:
    emu = Dp5Emulator(rng=np.random.default_rng(9), faults=FaultConfig(busy=0.3))
    busy = sum(_req(emu, Request.ECHO, b"e").pids == _ack(AckCode.BUSY) for _ in range(400))
    # binomial(400, 0.3): mean 120, σ ≈ 9.2; 5σ band
    assert abs(busy - 120) < 46


def test_same_seed_same_bytes() -> None:
    def run() -> bytes:
        emu = emulator_from_url("dp5sim://?seed=7&channels=256&faults=garbage:0.5,checksum:0.2")
        out = b""
        for req in (Request.MCA_ENABLE, Request.CONFIG_SET, Request.STATUS,
                    Request.SPECTRUM_STATUS):
            emu.write(build_frame(*req.pids, b"PRER=1;" if req is Request.CONFIG_SET else b""))
            emu.advance(0.3)
            out += emu.read()
        return out

    assert run() == run()


def test_url_handler_options_and_registered_sources() -> None:
    port = serial.serial_for_url("dp5sim://?seed=1&channels=8192&faults=busy:0.1&rate=1000")
    assert port.emulator.channels == 8192 and port.emulator.faults.busy == 0.1
    port.write(build_frame(*Request.ECHO.pids, b"hi"))
    assert FrameParser().feed(port.read(port.in_waiting)) in (
        [Frame(0x8F, 0x7F, b"hi")], [Frame(0xFF, int(AckCode.BUSY))])
    port.close()

    def flat(live_time_s: float, channels: int) -> np.ndarray:
        return np.full(channels, 3, dtype=np.int64)

    register_source("belt-spot", flat)
    try:
        emu = emulator_from_url("dp5sim://belt-spot?channels=256")
        _req(emu, Request.CONFIG_SET, b"PRET=1;")
        _req(emu, Request.MCA_ENABLE)
        _req(emu, Request.STATUS)  # the live-time preset completes: every count is binned
        assert emu.counts.sum() == 3 * 256
    finally:
        unregister_source("belt-spot")
    for bad in ("dp5sim://?wat=1", "dp5sim://?channels=100", "dp5sim://missing",
                "dp5sim://?seed=x"):
        with pytest.raises(serial.SerialException):
            serial.serial_for_url(bad)


def test_bad_source_output_is_a_typed_error() -> None:
    emu = Dp5Emulator(lambda t, n: np.zeros(n + 1, dtype=np.int64), channels=256)
    _req(emu, Request.MCA_ENABLE)
    with pytest.raises(XrfDeviceError, match="shape"):
        emu.advance(1.0)


def test_pty_bridge_serves_raw_bytes() -> None:
    emu = Dp5Emulator(channels=256)
    bridge = PtyBridge(emu, poll_s=0.005)
    with bridge as path:
        port = serial.Serial(path, timeout=0.5)
        port.write(build_frame(*Request.ECHO.pids, b"\r\n\x03\x11\x13"))  # control chars pass
        want = build_frame(0x8F, 0x7F, b"\r\n\x03\x11\x13")
        assert port.read(len(want)) == want
        port.close()
    assert bridge.error is None


def test_synthetic_source_is_normalized() -> None:
    src = SyntheticSource(rate_cps=1000.0, rng=np.random.default_rng(0))
    for n in (256, 8192):
        assert src.expected(2.0, n).sum() == pytest.approx(2000.0, rel=1e-6)
    e = src.expected(1.0, 2048)
    fe_ka = int(6.404 / src.gain_kev(2048))
    assert e.argmax() in range(fe_ka - 1, fe_ka + 2)  # strongest default peak: Fe Kα
    with pytest.raises(XrfDeviceError):
        SyntheticSource(fwhm_kev=0.0)

"""DP5 framing and packet codecs: checksum property, streaming parser robustness, codecs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perception.sensors.xrf.errors import (
    ChecksumError,
    Dp5ConfigError,
    Dp5ProtocolError,
    FrameError,
    HeaderError,
    SyncError,
    TruncatedFrameError,
)
from perception.sensors.xrf.packets import (
    CHANNEL_COUNTS,
    MAX_RESPONSE_LEN,
    RESPONSE_RULES,
    STATUS_LEN,
    AckCode,
    Dp5Status,
    decode_spectrum,
    encode_spectrum,
    format_config,
    parse_config,
    spectrum_layout,
    spectrum_pid2,
)
from perception.sensors.xrf.protocol import Frame, FrameParser, build_frame, checksum

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

pids = st.integers(0, 255)
payloads = st.binary(max_size=300)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _feed_all(parser: FrameParser, chunks: list[bytes]) -> list[Frame | FrameError]:
    events: list[Frame | FrameError] = []
    for c in chunks:
        events += parser.feed(c)
    return events + parser.flush()


def test_known_status_request_bytes() -> None:
    # F5+FA+01+01+00+00 = 0x01F1, two's complement 0xFE0F (DP5 programmer's guide example)
    assert build_frame(0x01, 0x01) == bytes.fromhex("F5FA01010000FE0F")


@FAST
@given(pids, pids, payloads)
def test_checksum_makes_16bit_sum_zero(pid1: int, pid2: int, data: bytes) -> None:
    raw = build_frame(pid1, pid2, data)
    assert raw[:2] == b"\xf5\xfa" and int.from_bytes(raw[4:6], "big") == len(data)
    word = int.from_bytes(raw[-2:], "big")
    assert (sum(raw[:-2]) + word) % 65536 == 0
    assert word == checksum(raw[:-2])
    assert FrameParser().feed(raw) == [Frame(pid1, pid2, data)]


@FAST
@given(st.lists(st.tuples(pids, pids, payloads), min_size=1, max_size=6),
       st.lists(st.integers(0, 10_000), max_size=12))
def test_frames_survive_any_chunking(frames: list[tuple[int, int, bytes]], cuts: list[int]) -> None:
    stream = b"".join(build_frame(*f) for f in frames)
    events = _feed_all(FrameParser(), _chunks(stream, cuts))
    assert events == [Frame(*f) for f in frames]


@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 10_000), max_size=8),
       st.sampled_from([None, "response"]))
def test_random_bytes_give_only_frames_or_typed_errors(
    data: bytes, cuts: list[int], rules: str | None
) -> None:
    parser = FrameParser(RESPONSE_RULES if rules else None,
                         MAX_RESPONSE_LEN if rules else 0xFFFF)
    events = _feed_all(parser, _chunks(data, cuts))  # any other exception fails the test
    assert all(isinstance(e, Frame | FrameError) for e in events)
    assert parser.pending == 0  # flush always drains: nothing waits forever
    # every input byte is accounted for: skipped, part of a frame, or in a truncated tail
    assert parser.offset == len(data)


def _response_frame() -> st.SearchStrategy[bytes]:
    small = [k for k, n in RESPONSE_RULES.items() if n is None or n <= 3 * 512 + STATUS_LEN]
    return st.sampled_from(small).flatmap(
        lambda k: (st.binary(min_size=RESPONSE_RULES[k] or 0, max_size=RESPONSE_RULES[k] or 40)
                   .map(lambda d: build_frame(k[0], k[1], d))))


@FAST
@given(st.lists(st.tuples(st.binary(max_size=80), _response_frame()), min_size=1, max_size=5),
       st.binary(max_size=80), st.lists(st.integers(0, 100_000), max_size=10),
       st.booleans())
def test_valid_frames_inside_garbage_are_all_found_in_order(
    parts: list[tuple[bytes, bytes]], tail: bytes, cuts: list[int], strict_rules: bool
) -> None:
    stream = b"".join(g + f for g, f in parts) + tail
    parser = FrameParser(RESPONSE_RULES, MAX_RESPONSE_LEN) if strict_rules else FrameParser()
    found = [e for e in _feed_all(parser, _chunks(stream, cuts)) if isinstance(e, Frame)]
    want = [FrameParser().feed(f)[0] for _, f in parts]
    it = iter(found)
    # the embedded frames are a subsequence of what was found (garbage may hold frames too)
    assert all(any(w == got for got in it) for w in want)


@FAST
@given(st.lists(st.tuples(pids, pids, st.binary(min_size=1, max_size=50)), min_size=1,
                max_size=5), st.integers(1, 10_000))
def test_truncated_stream_reports_truncation_and_keeps_complete_frames(
    frames: list[tuple[int, int, bytes]], cut: int
) -> None:
    raws = [build_frame(*f) for f in frames]
    stream = b"".join(raws)
    cut = 1 + cut % (len(stream) - 1)  # strictly inside the stream
    events = _feed_all(FrameParser(), [stream[:cut]])
    complete, end = [], 0
    for f, raw in zip(frames, raws, strict=True):
        end += len(raw)
        if end <= cut:
            complete.append(Frame(*f))
    found = [e for e in events if isinstance(e, Frame)]
    assert found[: len(complete)] == complete
    if sum(len(r) for r in raws[: len(complete)]) < cut:  # cut inside a frame
        assert any(isinstance(e, TruncatedFrameError | SyncError) for e in events)


def test_checksum_error_then_resync_finds_next_frame() -> None:
    good = build_frame(0x80, 0x01, bytes(64))
    bad = bytearray(good)
    bad[10] ^= 0xFF
    events = FrameParser(RESPONSE_RULES).feed(bytes(bad) + good)
    assert isinstance(events[0], ChecksumError)
    assert events[-1] == Frame(0x80, 0x01, bytes(64))


def test_header_rules_reject_unknown_pid_and_wrong_length() -> None:
    p = FrameParser(RESPONSE_RULES)
    ev = p.feed(build_frame(0x42, 0x42, b"x") + build_frame(0x80, 0x01, bytes(10)))
    assert sum(isinstance(e, HeaderError) for e in ev) == 2
    assert not any(isinstance(e, Frame) for e in ev)
    assert "unexpected PID 42/42" in str(ev[0]) and "expected 64" in str(ev[-2])
    big = FrameParser(max_data_len=100).feed(b"\xf5\xfa\x01\x01\x01\x00")
    assert isinstance(big[0], HeaderError) and "exceeds" in str(big[0])


def test_spectrum_pid2_table_and_inverse() -> None:
    # DP5 guide: 256→1, 512→3, 1024→5, 2048→7, 4096→9, 8192→0x0B; +1 = with status
    assert [spectrum_pid2(n, False) for n in CHANNEL_COUNTS] == [1, 3, 5, 7, 9, 11]
    assert [spectrum_pid2(n, True) for n in CHANNEL_COUNTS] == [2, 4, 6, 8, 10, 12]
    for n in CHANNEL_COUNTS:
        assert spectrum_layout(spectrum_pid2(n, True)) == (n, True)
        assert RESPONSE_RULES[(0x81, spectrum_pid2(n, True))] == 3 * n + 64
    with pytest.raises(Dp5ProtocolError):
        spectrum_pid2(1000, False)
    with pytest.raises(Dp5ProtocolError):
        spectrum_layout(0x0D)


@pytest.mark.parametrize("channels", CHANNEL_COUNTS)
def test_spectrum_codec_round_trip_is_3_byte_little_endian(channels: int) -> None:
    rng = np.random.default_rng(channels)
    counts = rng.integers(0, 2**24, channels).astype(np.int64)
    raw = encode_spectrum(counts)
    assert len(raw) == 3 * channels
    assert raw[:3] == int(counts[0]).to_bytes(3, "little")
    np.testing.assert_array_equal(decode_spectrum(raw, channels), counts)


def test_spectrum_codec_rejects_bad_input_and_saturates() -> None:
    sat = encode_spectrum(np.full(256, 2**30, dtype=np.int64))
    assert decode_spectrum(sat, 256).max() == 2**24 - 1
    with pytest.raises(Dp5ProtocolError, match="shape"):
        encode_spectrum(np.zeros(300, dtype=np.int64))
    with pytest.raises(Dp5ProtocolError, match="negative"):
        encode_spectrum(-np.ones(256, dtype=np.int64))
    with pytest.raises(Dp5ProtocolError, match="768"):
        decode_spectrum(b"\x00" * 10, 256)


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 10**9),
       st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(-20000, 20000),
       st.integers(0, 4095), st.integers(-128, 127), st.booleans(), st.booleans())
def test_status_round_trip(fast: int, slow: int, acc_ms: int, live_ms: int, real_ms: int,
                           hv_half_v: int, det_dk: int, board: int, done: bool, en: bool) -> None:
    s = Dp5Status(fast_count=fast, slow_count=slow, accumulation_time_s=acc_ms / 1000,
                  live_time_s=live_ms / 1000, real_time_s=real_ms / 1000, hv_v=hv_half_v * 0.5,
                  detector_temp_k=det_dk / 10, board_temp_c=board, preset_time_done=done,
                  mca_enabled=en, serial_number=4242, device_id=1)
    raw = s.encode()
    assert len(raw) == 64
    d = Dp5Status.decode(raw)
    assert (d.fast_count, d.slow_count, d.serial_number, d.board_temp_c, d.device_id) == (
        fast, slow, 4242, board, 1)
    assert d.accumulation_time_s == pytest.approx(acc_ms / 1000, abs=1e-9)
    assert d.live_time_s == pytest.approx(live_ms / 1000, abs=1e-9)
    assert d.real_time_s == pytest.approx(real_ms / 1000, abs=1e-9)
    assert d.hv_v == hv_half_v * 0.5 and d.detector_temp_k == pytest.approx(det_dk / 10)
    assert (d.preset_time_done, d.mca_enabled) == (done, en)


def test_status_byte_layout_matches_dp5_guide() -> None:
    raw = Dp5Status(fast_count=0x01020304, accumulation_time_s=12.345, real_time_s=2.5,
                    hv_v=-100.0, mca_enabled=True).encode()
    assert raw[0:4] == bytes((4, 3, 2, 1))  # little-endian counter
    assert raw[12] == 45 and int.from_bytes(raw[13:16], "little") == 123  # 1 ms + 100 ms units
    assert int.from_bytes(raw[20:24], "little") == 2500  # real time, ms
    assert int.from_bytes(raw[30:32], "big", signed=True) == -200  # 0.5 V units, big-endian
    assert raw[35] & 0x20  # MCA enabled flag
    with pytest.raises(Dp5ProtocolError, match="64"):
        Dp5Status.decode(raw[:63])


def test_text_config_parse_and_format() -> None:
    assert parse_config("MCAC=2048;PRET=1;") == {"MCAC": "2048", "PRET": "1"}
    assert parse_config("mcac=?;PRET;") == {"MCAC": "", "PRET": ""}
    assert format_config({"MCAC": "2048", "PRET": ""}) == "MCAC=2048;PRET=?;"
    with pytest.raises(Dp5ConfigError, match="item 0"):
        parse_config("MCACX=1;")
    with pytest.raises(Dp5ConfigError, match="non-printable"):
        parse_config("MCAC=\x01;")


def test_ack_codes_match_programmers_guide() -> None:
    assert (AckCode.OK, AckCode.CHECKSUM_ERROR, AckCode.BAD_PARAMETER,
            AckCode.UNRECOGNIZED_COMMAND, AckCode.BUSY) == (0, 4, 5, 7, 0x0D)
    assert all((0xFF, int(c)) in RESPONSE_RULES for c in AckCode)

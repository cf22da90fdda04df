"""Tests of the in-process runtime: order, QoS drops, names, parameters, clocks, taps, replay."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from sorting.errors import (
    CallbackError,
    InvalidNameError,
    ParameterError,
    ReplayError,
    RuntimeGraphError,
    UnknownTopicError,
    UnknownTypeError,
)
from sorting.msgs import new, serialize
from sorting.runtime import (
    InProcessExecutor,
    Node,
    NodeContext,
    QoSProfile,
    SimClock,
    WallClock,
    clock_for_speed,
    replay,
    resolve_topic,
)

INT = "std_msgs/msg/Int32"
STR = "std_msgs/msg/String"
S = 1_000_000_000  # ns per second


class Built(Node):
    """A node whose constructor runs ``build(ctx)`` and keeps what it returns in ``state``."""

    build: Callable[[NodeContext], Any]

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.state = type(self).build(ctx)


def node_factory(build: Callable[[NodeContext], Any]) -> type[Built]:
    """A node class whose constructor runs ``build(ctx)`` (keeps tests short)."""
    return type("BuiltNode", (Built,), {"build": staticmethod(build)})


class Ticker(Node):
    """Publishes 1, 2, 3, ... on ``~/out`` every ``period`` s."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.period = ctx.declare_parameter("period", 0.1).value
        self.pub = ctx.create_publisher(INT, "~/out", 10)
        self.n = 0
        ctx.create_timer(self.period, self.tick)

    def tick(self) -> None:
        self.n += 1
        self.pub.publish(new(INT, data=self.n))


class Relay(Node):
    """Republishes every message of ``in`` on ``out`` (data + 1000)."""

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.pub = ctx.create_publisher(INT, "relay/out", 10)
        ctx.create_subscription(INT, "ticker_a/out", self.on_msg, 10)

    def on_msg(self, msg: Any) -> None:
        self.pub.publish(new(INT, data=msg.data + 1000))


class Recorder(Node):
    """Logs (topic, data, clock ns) for each subscribed topic, in delivery order."""

    topics: tuple[str, ...] = ()
    depth = 10

    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.log: list[tuple[str, int, int]] = []
        self.clock = ctx.get_clock()
        for topic in self.topics:
            ctx.create_subscription(INT, topic, self._cb(topic), self.depth)

    def _cb(self, topic: str) -> Callable[[Any], None]:
        return lambda msg: self.log.append((topic, msg.data, self.clock.now().nanoseconds))


# ------------------------------------------------------------------- ordering


def test_two_timers_and_a_relay_give_exact_interleaving() -> None:
    ex = InProcessExecutor(SimClock())
    ex.add_node(Ticker, "ticker_a", parameters={"period": 0.1})
    ex.add_node(Ticker, "ticker_b", parameters={"period": 0.25})
    ex.add_node(Relay, "relay")
    rec_cls = type("Rec", (Recorder,), {"topics": ("ticker_a/out", "relay/out", "ticker_b/out")})
    rec = ex.add_node(rec_cls, "rec")
    assert ex.spin_until(S // 2)
    a, r, b = "ticker_a/out", "relay/out", "ticker_b/out"
    ms = S // 1000
    # Relay subscribed to ticker_a before rec, so it runs first; its publish is queued after
    # rec's copy of the same tick. At 0.5 s both timers are due: ticker_a was created first.
    assert rec.log == [
        (a, 1, 100 * ms), (r, 1001, 100 * ms),
        (a, 2, 200 * ms), (r, 1002, 200 * ms),
        (b, 1, 250 * ms),
        (a, 3, 300 * ms), (r, 1003, 300 * ms),
        (a, 4, 400 * ms), (r, 1004, 400 * ms),
        (a, 5, 500 * ms), (r, 1005, 500 * ms),
        (b, 2, 500 * ms),
    ]
    assert ex.now_ns() == S // 2


def test_same_graph_twice_gives_identical_tap_streams() -> None:
    def run() -> list[tuple[str, int, int]]:
        ex = InProcessExecutor()
        seen: list[tuple[str, int, int]] = []
        ex.add_tap(lambda topic, _t, t_ns, msg: seen.append((topic, msg.data, t_ns)))
        ex.add_node(Ticker, "ticker_a", parameters={"period": 0.03})
        ex.add_node(Ticker, "ticker_b", parameters={"period": 0.07})
        ex.add_node(Relay, "relay")
        ex.spin_for(2.0)
        return seen

    first = run()
    assert len(first) == 66 + 28 + 66  # 2.0/0.03 = 66 ticks, 2.0/0.07 = 28, relay = 66
    assert first == run()


def test_spin_once_processes_one_event_at_a_time() -> None:
    ex = InProcessExecutor()
    ticker = ex.add_node(Ticker, "ticker_a")
    got: list[int] = []
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(
        INT, "/x", lambda m: got.append(m.data), 10)), "sink")
    assert ex.spin_once()  # first timer event at 0.1 s
    assert (ticker.n, ex.now_ns()) == (1, S // 10)
    ex.inject("/x", INT, new(INT, data=7))
    assert ex.spin_once()  # the queued message only: the clock does not move
    assert (ticker.n, ex.now_ns(), got) == (1, S // 10, [7])
    assert InProcessExecutor().spin_once() is False  # nothing to do


# ------------------------------------------------------------------------ QoS


def test_qos_depth_drops_oldest_and_counts() -> None:
    ex = InProcessExecutor()

    def burst(ctx: NodeContext) -> Any:
        pub = ctx.create_publisher(INT, "burst", 10)

        def tick() -> None:
            for i in range(15):
                pub.publish(new(INT, data=i))

        ctx.create_timer(1.0, tick)

    ex.add_node(node_factory(burst), "src")
    rec_cls = type("Rec", (Recorder,), {"topics": ("burst",), "depth": 10})
    rec = ex.add_node(rec_cls, "rec")
    ex.spin_until(S)
    assert [d for _, d, _ in rec.log] == list(range(5, 15))  # the 5 oldest were dropped
    stats = ex.topic_stats("/line1/burst")
    assert (stats.published, stats.delivered, stats.dropped) == (15, 10, 5)
    assert ex.drop_counts() == {"/line1/burst": 5}
    (sub,) = stats.subscriptions
    assert (sub.node, sub.depth, sub.received, sub.dropped, sub.queued) == (
        "/line1/rec", 10, 15, 5, 0)


def test_qos_profile_depth_and_inject_burst() -> None:
    ex = InProcessExecutor()
    got: list[int] = []

    def build(ctx: NodeContext) -> Any:
        return ctx.create_subscription(INT, "/t", lambda m: got.append(m.data), QoSProfile(depth=3))

    sub = ex.add_node(node_factory(build), "n").state
    for i in range(7):
        ex.inject("/t", INT, new(INT, data=i))
    assert ex.pending == 3
    assert ex.drain() == 3
    assert got == [4, 5, 6]
    assert sub.dropped == 4


def test_transient_local_late_subscriber_gets_history() -> None:
    ex = InProcessExecutor()
    latched = QoSProfile(depth=2, transient_local=True)

    def pub_build(ctx: NodeContext) -> Any:
        pub = ctx.create_publisher(STR, "/info", latched)
        for text in ("a", "b", "c"):
            pub.publish(new(STR, data=text))

    ex.add_node(node_factory(pub_build), "pub")
    late: list[str] = []
    volatile: list[str] = []
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(
        STR, "/info", lambda m: late.append(m.data), latched)), "late")
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(
        STR, "/info", lambda m: volatile.append(m.data), 5)), "vol")
    ex.drain()
    assert late == ["b", "c"]  # depth 2 history
    assert volatile == []


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("name", "ns", "expected"),
    [
        ("camera/image_raw", "/line1", "/line1/camera/image_raw"),
        ("/sim/ground_truth", "/line1", "/sim/ground_truth"),
        ("~/debug", "/line1", "/line1/cam/debug"),
        ("~", "/line1", "/line1/cam"),
        ("status", "/", "/status"),
        ("x", "/a/b", "/a/b/x"),
    ],
)
def test_topic_resolution(name: str, ns: str, expected: str) -> None:
    assert resolve_topic(name, ns, "cam") == expected


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("a//b", "'//'"),
        ("a/", "end with"),
        ("cam era", "invalid character"),
        ("cam-1", "invalid character"),
        ("1cam", "starts with a digit"),
        ("~x", "'~'"),
        ("a/~/b", "'~'"),
    ],
)
def test_bad_topic_names_are_rejected(name: str, fragment: str) -> None:
    with pytest.raises(InvalidNameError, match=fragment):
        resolve_topic(name, "/line1", "cam")


def test_node_topics_resolve_against_namespace() -> None:
    ex = InProcessExecutor()

    def build(ctx: NodeContext) -> Any:
        ctx.create_publisher(INT, "camera/count", 1)
        ctx.create_publisher(INT, "/abs", 1)
        ctx.create_publisher(INT, "~/private", 1)

    ex.add_node(node_factory(build), "cam", namespace="line2")  # relative ns → /line2
    assert [t.topic for t in ex.topics()] == ["/abs", "/line2/cam/private", "/line2/camera/count"]
    assert [n.name for n in ex.nodes()] == ["/line2/cam"]
    with pytest.raises(InvalidNameError, match="node name"):
        ex.add_node(Ticker, "bad/name")
    with pytest.raises(InvalidNameError, match="namespace"):
        ex.add_node(Ticker, "ok", namespace="/line1/")
    with pytest.raises(InvalidNameError, match="absolute"):
        ex.inject("relative", INT, new(INT))


# ---------------------------------------------------------------- graph errors


def test_type_clash_names_both_types_and_rolls_back() -> None:
    ex = InProcessExecutor()
    ex.add_node(node_factory(lambda ctx: ctx.create_publisher(INT, "/x", 1)), "a")
    with pytest.raises(RuntimeGraphError, match=r"/x.*std_msgs/msg/Int32.*std_msgs/msg/String"):
        ex.add_node(node_factory(
            lambda ctx: ctx.create_subscription(STR, "/x", print, 1)), "b")
    assert [n.name for n in ex.nodes()] == ["/line1/a"]  # the failed node left nothing behind
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(INT, "/x", print, 1)), "b")
    with pytest.raises(RuntimeGraphError, match="two types"):
        ex.inject("/x", STR, new(STR))


def test_publishing_a_wrong_message_type_is_an_error() -> None:
    ex = InProcessExecutor()
    pub = ex.add_node(node_factory(lambda ctx: ctx.create_publisher(INT, "/x", 1)), "a").state
    with pytest.raises(RuntimeGraphError, match="published a std_msgs/msg/String"):
        pub.publish(new(STR, data="no"))


def test_unknown_type_and_unknown_topic() -> None:
    ex = InProcessExecutor()
    with pytest.raises(UnknownTypeError, match=r"nope_msgs/msg/X.*'/line1/y'"):
        ex.add_node(node_factory(lambda ctx: ctx.create_publisher("nope_msgs/msg/X", "y", 1)), "a")
    with pytest.raises(UnknownTopicError, match="/missing"):
        ex.topic_stats("/missing")


def test_duplicate_node_name() -> None:
    ex = InProcessExecutor()
    ex.add_node(Ticker, "t")
    ex.add_node(Ticker, "t", namespace="/line2")  # same name, other namespace: fine
    with pytest.raises(RuntimeGraphError, match="duplicate node name '/line1/t'"):
        ex.add_node(Relay, "t")


# ------------------------------------------------------------------ parameters


def test_parameter_override_default_and_errors() -> None:
    ex = InProcessExecutor()

    def build(ctx: NodeContext) -> Any:
        ctx.declare_parameter("speed_mps", 0.5)
        ctx.declare_parameter("name", "belt")

    n = ex.add_node(node_factory(build), "belt", parameters={"speed_mps": 2})
    assert n.ctx.get_parameter("speed_mps").value == 2.0
    assert isinstance(n.ctx.get_parameter("speed_mps").value, float)
    assert n.ctx.get_parameter("name").value == "belt"
    with pytest.raises(ParameterError, match=r"'/line1/belt'.*'length_m' is not declared"):
        n.ctx.get_parameter("length_m")
    with pytest.raises(ParameterError, match="already declared"):
        n.ctx.declare_parameter("name", "x")
    with pytest.raises(ParameterError, match=r"'/line1/belt2'.*undeclared.*\['sped_mps'\]"):
        ex.add_node(node_factory(build), "belt2", parameters={"sped_mps": 1.0})
    assert "/line1/belt2" not in [i.name for i in ex.nodes()]
    with pytest.raises(ParameterError, match="'speed_mps' is declared as float"):
        ex.add_node(node_factory(build), "belt3", parameters={"speed_mps": "fast"})


# ------------------------------------------------------------------------ taps


def test_tap_sees_every_publish_in_order_with_times() -> None:
    ex = InProcessExecutor(SimClock(start_ns=5 * S))
    seen: list[tuple[str, str, int, int]] = []
    ex.add_tap(lambda topic, mt, t_ns, msg: seen.append((topic, mt, t_ns, msg.data)))
    ex.add_node(Ticker, "ticker_a", parameters={"period": 0.5})
    ex.add_node(Relay, "relay")
    ex.inject("/ext", INT, new(INT, data=-1))
    ex.spin_until(6 * S)
    a, r = "/line1/ticker_a/out", "/line1/relay/out"
    assert seen == [
        ("/ext", INT, 5 * S, -1),
        (a, INT, 5 * S + S // 2, 1), (r, INT, 5 * S + S // 2, 1001),
        (a, INT, 6 * S, 2), (r, INT, 6 * S, 1002),
    ]
    assert [(t.topic, t.published) for t in ex.topics()] == [("/ext", 1), (r, 2), (a, 2)]


# ---------------------------------------------------------------------- clocks


def test_simclock_spin_until_is_exact() -> None:
    ex = InProcessExecutor(SimClock(start_ns=7))
    t = ex.add_node(Ticker, "t", parameters={"period": 0.001})
    assert ex.now_ns() == 7
    assert ex.spin_until(1_234_567_891)
    assert ex.now_ns() == 1_234_567_891
    assert t.n == (1_234_567_891 - 7) // 1_000_000  # 1234 ticks at 1 ms
    assert ex.spin_for(0.5)
    assert ex.now_ns() == 1_734_567_891
    assert ex.now().nanoseconds == ex.now_ns()


def test_wallclock_rate_sleeps_a_fraction_of_sim_time() -> None:
    clock = WallClock(rate=10.0, start_ns=0)
    ex = InProcessExecutor(clock)
    t = ex.add_node(Ticker, "t", parameters={"period": 0.05})
    wall0 = time.perf_counter()
    assert ex.spin_for(1.0)  # 1 s of clock time = 0.1 s of wall time at rate 10
    elapsed = time.perf_counter() - wall0
    assert elapsed >= 0.8 * 0.1  # loose lower bound only: sleeps may overshoot, never undershoot
    assert t.n >= 19  # 20 due times in (0, 1] s; the first spin starts a few µs after t=0
    assert clock.now_ns() >= 1 * S


def test_stop_from_a_callback_ends_the_spin() -> None:
    ex = InProcessExecutor()
    t = ex.add_node(Ticker, "t", parameters={"period": 0.1})
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(
        INT, "t/out", lambda m: ex.stop() if m.data == 3 else None, 10)), "stopper")
    assert ex.spin_until(10 * S) is False
    assert (t.n, ex.now_ns()) == (3, 3 * S // 10)
    assert ex.spin_until(S)  # the stop request was consumed: the next spin runs
    assert t.n == 10


def test_timer_cancel() -> None:
    ex = InProcessExecutor()
    fired: list[int] = []
    timer = ex.add_node(node_factory(lambda ctx: ctx.create_timer(
        0.1, lambda: fired.append(ex.now_ns()))), "n").state
    ex.spin_until(S // 4)
    timer.cancel()
    ex.spin_until(S)
    assert fired == [S // 10, S // 5]
    assert ex.nodes()[0].timers == 0


# ---------------------------------------------------------------- errors, log


class Boom(Node):
    def __init__(self, ctx: NodeContext) -> None:
        super().__init__(ctx)
        self.got: list[int] = []
        ctx.create_subscription(INT, "/in", self.cb, 10)

    def cb(self, msg: Any) -> None:
        self.got.append(msg.data)
        if msg.data == 1:
            raise ValueError("bad data")


def test_callback_exception_names_node_and_topic() -> None:
    ex = InProcessExecutor()
    ex.add_node(Boom, "boom")
    ex.inject("/in", INT, new(INT, data=1))
    with pytest.raises(CallbackError, match=r"'/line1/boom'.*'/in'.*ValueError: bad data") as info:
        ex.spin_until(S)
    assert isinstance(info.value.__cause__, ValueError)
    assert (info.value.node, info.value.topic) == ("/line1/boom", "/in")


def test_on_error_log_counts_logs_and_continues(caplog: pytest.LogCaptureFixture) -> None:
    ex = InProcessExecutor(SimClock(start_ns=2 * S), on_error="log")
    boom = ex.add_node(Boom, "boom")
    for i in (0, 1, 2):
        ex.inject("/in", INT, new(INT, data=i))
    with caplog.at_level(logging.ERROR):
        ex.drain()
    assert boom.got == [0, 1, 2]
    assert ex.error_count == 1
    (record,) = caplog.records
    assert record.name == "crmsort.line1.boom"
    assert "ValueError: bad data" in record.getMessage()
    assert record.sim_time_ns == 2 * S  # type: ignore[attr-defined]


def test_logger_name_and_sim_time(caplog: pytest.LogCaptureFixture) -> None:
    ex = InProcessExecutor(SimClock(start_ns=3 * S))
    n = ex.add_node(Ticker, "cam", namespace="/line1/sub")
    with caplog.at_level(logging.INFO, logger="crmsort"):
        n.ctx.get_logger().info("hello")
    (record,) = caplog.records
    assert record.name == "crmsort.line1.sub.cam"
    assert (record.sim_time_ns, record.node) == (3 * S, "/line1/sub/cam")  # type: ignore[attr-defined]


def test_shutdown_once_and_closed_afterwards() -> None:
    calls: list[str] = []

    class Closing(Node):
        def shutdown(self) -> None:
            calls.append(self.ctx.get_name())

    ex = InProcessExecutor()
    ex.add_node(Closing, "a")
    ex.add_node(Closing, "b")
    ex.shutdown()
    ex.shutdown()
    assert calls == ["a", "b"]
    with pytest.raises(RuntimeGraphError, match="after shutdown"):
        ex.spin_once()


# ---------------------------------------------------------------------- replay


def synthetic_stream(t0: int, n: int) -> list[tuple[str, str, int, bytes]]:
    """n messages every 50 ms, alternating /cam (Int32 i) and /txt (String 'm<i>')."""
    out = []
    for i in range(n):
        t_ns = t0 + i * S // 20
        if i % 2:
            out.append(("/txt", STR, t_ns, serialize(new(STR, data=f"m{i}"))))
        else:
            out.append(("/cam", INT, t_ns, serialize(new(INT, data=i))))
    return out


def test_replay_reproduces_every_message_in_order_with_timers() -> None:
    t0 = 1_700_000_000 * S  # a Unix-time bag replayed on an executor that starts at 0
    ex = InProcessExecutor(clock_for_speed(None))
    got: list[tuple[str, Any, int]] = []

    def build(ctx: NodeContext) -> Any:
        clock = ctx.get_clock()

        def log(topic: str) -> Callable[[Any], None]:
            return lambda m: got.append((topic, m.data, clock.now().nanoseconds))

        ctx.create_subscription(INT, "/cam", log("/cam"), 10)
        ctx.create_subscription(STR, "/txt", log("/txt"), 10)
        ctx.create_timer(0.12, lambda: got.append(("timer", None, clock.now().nanoseconds)))

    ex.add_node(node_factory(build), "sink")
    stream = synthetic_stream(t0, 10)
    stats = replay(ex, stream, None)
    expected_msgs = [
        (t, i if t == "/cam" else f"m{i}", t_ns) for i, (t, _, t_ns, _) in enumerate(stream)
    ]
    assert [g for g in got if g[0] != "timer"] == expected_msgs
    # timer phase kept across the jump to t0: due at t0 + 0.12 s and t0 + 0.24 s, and it
    # fires before the message stamped at the same or a later time
    timer_ts = [g[2] for g in got if g[0] == "timer"]
    assert timer_ts == [t0 + 120_000_000, t0 + 240_000_000, t0 + 360_000_000]
    assert got.index(("timer", None, t0 + 120_000_000)) == 3  # after 0, 50, 100 ms messages
    assert (stats.messages, stats.skipped, stats.first_t_ns, stats.last_t_ns) == (
        10, 0, t0, t0 + 9 * S // 20)
    assert stats.duration_s == pytest.approx(0.45)
    assert not stats.stopped


def test_replay_filter_and_remap() -> None:
    ex = InProcessExecutor()
    seen: list[tuple[str, int]] = []
    ex.add_tap(lambda topic, _mt, t_ns, _m: seen.append((topic, t_ns)))
    stats = replay(ex, synthetic_stream(0, 6), None, topics={"/cam"}, remap={"/cam": "/line1/cam"})
    assert seen == [("/line1/cam", 0), ("/line1/cam", S // 10), ("/line1/cam", S // 5)]
    assert (stats.messages, stats.skipped) == (3, 3)
    with pytest.raises(ReplayError, match="remap"):
        replay(InProcessExecutor(), [], None, remap={"/cam": "cam"})


def test_replay_errors() -> None:
    bad_type = [("/x", "nope_msgs/msg/X", 0, b"")]
    with pytest.raises(UnknownTypeError, match=r"topic '/x'.*nope_msgs/msg/X"):
        replay(InProcessExecutor(), bad_type, None)
    backwards = synthetic_stream(0, 2)[::-1]
    with pytest.raises(ReplayError, match="time order"):
        replay(InProcessExecutor(), backwards, None)
    truncated = [("/cam", INT, 0, serialize(new(INT, data=1))[:5])]
    with pytest.raises(ReplayError, match=r"message 0 on topic '/cam'.*cannot be decoded"):
        replay(InProcessExecutor(), truncated, None)
    with pytest.raises(ReplayError, match="WallClock"):
        replay(InProcessExecutor(), [], 2.0)
    with pytest.raises(ReplayError, match="SimClock"):
        replay(InProcessExecutor(WallClock()), [], None)


def test_replay_at_scaled_wall_speed() -> None:
    ex = InProcessExecutor(clock_for_speed(20.0))
    got: list[int] = []
    ex.add_node(node_factory(lambda ctx: ctx.create_subscription(
        INT, "/cam", lambda m: got.append(m.data), 10)), "sink")
    stats = replay(ex, synthetic_stream(5 * S, 9), 20.0)  # 0.4 s of stream = 0.02 s at 20x
    assert got == [0, 2, 4, 6, 8]
    assert stats.wall_s >= 0.8 * 0.4 / 20  # loose lower bound only


def test_timer_tap_and_shutdown_failures_name_their_source() -> None:
    def bad_timer(ctx: NodeContext) -> Any:
        def tick() -> None:
            raise ZeroDivisionError("no belt speed")

        ctx.create_timer(0.1, tick)

    ex = InProcessExecutor()
    ex.add_node(node_factory(bad_timer), "tim")
    with pytest.raises(CallbackError, match=r"'/line1/tim': timer \(period 0.1 s\).*Zero") as info:
        ex.spin_until(S)
    assert (info.value.node, info.value.topic) == ("/line1/tim", None)

    def bad_tap(topic: str, msg_type: str, t_ns: int, msg: Any) -> None:
        raise OSError("disk full")

    ex = InProcessExecutor()
    ex.add_tap(bad_tap)
    with pytest.raises(CallbackError, match=r"tap '.*bad_tap': on topic '/t' raised OSError"):
        ex.inject("/t", INT, new(INT))

    closed: list[str] = []

    class FailsOnShutdown(Node):
        def shutdown(self) -> None:
            closed.append(self.ctx.get_name())
            raise RuntimeError("port stuck")

    ex = InProcessExecutor()
    ex.add_node(FailsOnShutdown, "a")
    ex.add_node(FailsOnShutdown, "b")
    with pytest.raises(CallbackError, match=r"'/line1/a': shutdown\(\) raised RuntimeError"):
        ex.shutdown()
    assert closed == ["a", "b"]  # every node got its shutdown() despite the first failure


def test_stop_from_another_thread_interrupts_a_wall_clock_sleep() -> None:
    import threading

    ex = InProcessExecutor(WallClock(rate=1.0))
    stopper = threading.Timer(0.05, ex.stop)  # as a signal handler would, from outside the spin
    stopper.start()
    try:
        assert ex.spin_for(60.0) is False  # returns early instead of sleeping a minute
    finally:
        stopper.cancel()

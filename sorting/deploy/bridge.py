"""Connect one process's in-process executor to DDS: local publishes go out, remote ones come in.

After the process's nodes are added, :meth:`DdsBridge.attach` creates a DDS writer
for every topic a local node publishes and a reader for every topic a local node
subscribes to. A tap sends each local publish out as CDR (the executor's clock
time becomes the DDS source timestamp); :meth:`DdsBridge.poll` takes what other
processes sent and :meth:`DdsBridge.deliver` injects it into the executor in a
deterministic order (source time, topic, arrival) — never re-exporting it.

The bridge also watches DDS discovery: a remote publication on a topic this
process uses, but with another type (another crmsort process with a clashing
node, or a foreign publisher of the wrong type) can never match; it is reported
once per (topic, type) as an error on the log and in :meth:`diagnostics`, and the
process keeps running.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sorting.deploy.dds import DdsParticipant, RawReader, RawWriter
from sorting.deploy.health import ERROR, OK, status_msg
from sorting.errors import SortingError
from sorting.msgs import deserialize, serialize
from sorting.runtime.context import QoSProfile
from sorting.runtime.inprocess import InProcessExecutor

_log = logging.getLogger("crmsort.deploy.bridge")

#: Topics the bridge never carries (the lockstep clock and process control travel apart).
CONTROL_PREFIX = "/crmsort/deploy/"
CLOCK_TOPIC = "/clock"


@dataclass(order=True)
class _Sample:
    t_ns: int
    topic: str
    seq: int
    msg_type: str = field(compare=False)
    raw: bytes = field(compare=False, repr=False)


class DdsBridge:
    """Bridges ``executor`` to DDS through ``participant`` (see the module docstring).

    ``topics`` limits what is bridged (None: every topic of the executor). ``name``
    labels the bridge's diagnostics (``/<ns>/<name>``); ``reader_depth`` is the
    DDS history kept per imported topic between polls (the executor then applies each
    subscription's own depth).
    """

    def __init__(self, executor: InProcessExecutor, participant: DdsParticipant, *,
                 name: str = "/dds_bridge", hardware_id: str = "",
                 reader_depth: int = 1000, topics: set[str] | None = None) -> None:
        self.topics = topics
        self.executor = executor
        self.participant = participant
        self.name = name
        self.hardware_id = hardware_id
        self.reader_depth = reader_depth
        self.writers: dict[str, RawWriter] = {}
        self.readers: dict[str, RawReader] = {}
        self.problems: dict[tuple[str, str], str] = {}
        self.exported = 0
        self.imported = 0
        self.decode_errors = 0
        self._pending: list[_Sample] = []
        self._seq = 0
        self._injecting = False
        self._tapped = False

    # ---------------------------------------------------------------------- set-up
    def attach(self) -> None:
        """Create writers/readers for the executor's current topics (idempotent; call again
        after adding nodes) and start exporting local publishes."""
        ex = self.executor
        types = {t.topic: t.msg_type for t in ex.topics()}
        published = {p for n in ex.nodes() for p in n.publishes}
        subs = ex.subscriptions()
        for topic in sorted(published):
            if topic in self.writers or self._skip(topic):
                continue
            qos = self._pub_qos(topic)
            self.writers[topic] = self.participant.writer(topic, types[topic], qos)
        for s in subs:
            if s.topic in self.readers or self._skip(s.topic):
                continue
            sub_qos = self._sub_qos(s.topic)
            self.readers[s.topic] = self.participant.reader(
                s.topic, s.msg_type, sub_qos, depth=max(self.reader_depth, s.depth))
        if not self._tapped:
            ex.add_tap(self._export)
            self._tapped = True

    def _skip(self, topic: str) -> bool:
        if self.topics is not None and topic not in self.topics:
            return True
        return topic == CLOCK_TOPIC or topic.startswith(CONTROL_PREFIX)

    def _pub_qos(self, topic: str) -> QoSProfile:
        for rec in self.executor._nodes.values():  # the publishers' declared QoS
            for p in rec.pubs:
                if p.topic == topic:
                    return p.qos
        return QoSProfile()

    def _sub_qos(self, topic: str) -> QoSProfile:
        # durability of the reader: transient local only where a local subscriber asks
        # for it (a transient-local reader cannot match a volatile writer)
        tl = any(s.qos.transient_local for rec in self.executor._nodes.values()
                 for s in rec.subs if s.topic == topic)
        return QoSProfile(depth=self.reader_depth, reliable=True, transient_local=tl)

    # ------------------------------------------------------------------------- out
    def _export(self, topic: str, msg_type: str, t_ns: int, msg: Any) -> None:
        if self._injecting:
            return
        w = self.writers.get(topic)
        if w is not None:
            w.write(serialize(msg, msg_type), t_ns)
            self.exported += 1

    def wait_for_acks(self, timeout_s: float = 2.0) -> bool:
        """Block until every reliable reader acknowledged what this process wrote."""
        ok = True
        for w in self.writers.values():
            if w.written:
                ok = w.wait_for_acks(timeout_s) and ok
        return ok

    # -------------------------------------------------------------------------- in
    def poll(self) -> int:
        """Take every sample DDS holds for the imported topics into the pending buffer."""
        n = 0
        for topic, r in self.readers.items():
            for raw, t_ns in r.take(self.reader_depth):
                self._seq += 1
                self._pending.append(_Sample(t_ns, topic, self._seq, r.msg_type, raw))
                n += 1
        return n

    def deliver(self, upto_ns: int | None = None) -> int:
        """Inject pending samples stamped at or before ``upto_ns`` (all if None), ordered by
        (source time, topic, arrival), at the executor's current time; return how many."""
        if not self._pending:
            return 0
        self._pending.sort()
        if upto_ns is None:
            ready, self._pending = self._pending, []
        else:
            k = 0
            while k < len(self._pending) and self._pending[k].t_ns <= upto_ns:
                k += 1
            ready, self._pending = self._pending[:k], self._pending[k:]
        self._injecting = True
        try:
            for s in ready:
                try:
                    msg = deserialize(s.raw, s.msg_type)
                except Exception as e:  # a foreign writer of a same-named type: count, go on
                    self.decode_errors += 1
                    self._problem(s.topic, s.msg_type,
                                  f"topic {s.topic!r}: cannot decode a {s.msg_type} sample "
                                  f"({len(s.raw)} bytes): {type(e).__name__}: {e}")
                    continue
                self.executor.inject(s.topic, s.msg_type, msg)
                self.imported += 1
        finally:
            self._injecting = False
        return len(ready)

    # ------------------------------------------------------------------- discovery
    def check_types(self) -> list[str]:
        """Compare discovered remote publications with the local topic types; return (and
        log, once each) a message per remote publication whose type cannot match."""
        local = {t.topic: t.msg_type for t in self.executor.topics()}
        new: list[str] = []
        for ep in self.participant.publications():
            if ep.topic is None or ep.topic not in local:
                continue
            want = local[ep.topic]
            if ep.msg_type == want:
                continue
            got = ep.msg_type or f"foreign DDS type {ep.dds_type!r}"
            text = (
                f"topic {ep.topic!r}: a remote publisher (participant {ep.participant}) sends "
                f"{got}, but this process uses {want}; its samples cannot be received"
            )
            if self._problem(ep.topic, got, text):
                new.append(text)
        return new

    def _problem(self, topic: str, what: str, text: str) -> bool:
        key = (topic, what)
        if key in self.problems:
            return False
        self.problems[key] = text
        _log.error("%s", text)
        return True

    def diagnostics(self, now_ns: int) -> Iterable[Any]:
        """The bridge's own DiagnosticStatus (ERROR while a type problem is known)."""
        values = {
            "exported": self.exported, "imported": self.imported,
            "writers": len(self.writers), "readers": len(self.readers),
            "decode_errors": self.decode_errors, "pending": len(self._pending),
        }
        if self.problems:
            return [status_msg(ERROR, self.name, "; ".join(sorted(self.problems.values())),
                               self.hardware_id, values)]
        return [status_msg(OK, self.name, "ok", self.hardware_id, values)]


def deliver_all(bridge: DdsBridge) -> None:
    """Poll and inject everything at once (free-running processes without a lockstep clock)."""
    bridge.poll()
    try:
        bridge.deliver(None)
    except SortingError as e:
        _log.error("%s", e)

"""Feed an :class:`~sorting.hmi.state.HmiState` from DDS: any line on the domain, any process."""

from __future__ import annotations

import threading
from typing import Any

from sorting.hmi.state import HmiState


class DdsSource:
    """Reads the state's topics (``/<ns>/status``, ``/<ns>/sorting/balance``,
    ``/diagnostics``) on ``deploy``'s DDS domain and network from a daemon thread between
    :meth:`start` and :meth:`stop`; a sample that does not decode is counted
    (:attr:`decode_errors`) and skipped."""

    def __init__(self, state: HmiState, deploy: Any) -> None:
        # DDS (cyclonedds) is imported only by those who join a domain
        from sorting.deploy.group import participant_for
        from sorting.runtime import QoSProfile

        self.state = state
        self.participant = participant_for(deploy)
        self.readers = [self.participant.reader(topic, typ, QoSProfile(depth=20))
                        for topic, typ in state.topics.items()]
        self.decode_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        from sorting.deploy.dds import DataWait
        from sorting.msgs import deserialize

        wait = DataWait(self.participant, self.readers)
        while not self._stop.is_set():
            if not wait.wait(0.2):
                continue
            for r in self.readers:
                for raw, _ts in r.take():
                    try:
                        msg = deserialize(raw, r.msg_type)
                    except Exception:  # a foreign or broken sample: counted, not fatal
                        self.decode_errors += 1
                        continue
                    self.state.update(r.topic, msg)

    def start(self) -> DdsSource:
        self._thread = threading.Thread(target=self._run, name="crmsort-hmi-dds", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.participant.close()

"""Fault injection settings for the DP5 emulator: probabilities or a scripted sequence."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from perception.sensors.xrf.errors import XrfDeviceError
from perception.sensors.xrf.packets import AckCode


class Fault(enum.Enum):
    """What the emulator does to one reply.

    ``BAD_CHECKSUM``, ``TRUNCATE`` and ``GARBAGE`` corrupt the reply of a request that *was*
    carried out (a noisy link); ``BUSY`` and ``SILENCE`` leave the request undone and answer
    with a busy ACK or nothing at all.
    """

    NONE = "none"
    BAD_CHECKSUM = "checksum"
    TRUNCATE = "truncate"
    BUSY = "busy"
    SILENCE = "silence"
    GARBAGE = "garbage"


ScriptItem = Fault | AckCode
"""One scripted reply: a :class:`Fault`, or an :class:`AckCode` to answer instead of executing."""


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Per-reply fault probabilities (each 0–1, sum ≤ 1) and a script consumed first.

    Each reply consumes the next script item if any is left; otherwise one uniform draw picks
    at most one fault by the probabilities.  ``garbage_max_bytes`` bounds the random bytes
    put before a reply by ``GARBAGE``.
    """

    bad_checksum: float = 0.0
    truncate: float = 0.0
    busy: float = 0.0
    silence: float = 0.0
    garbage: float = 0.0
    garbage_max_bytes: int = 64
    script: tuple[ScriptItem, ...] = ()

    def __post_init__(self) -> None:
        probs = self.probabilities()
        if any(not 0.0 <= p <= 1.0 for _, p in probs) or sum(p for _, p in probs) > 1.0 + 1e-12:
            raise XrfDeviceError(f"fault probabilities must be in 0..1 and sum ≤ 1, got {probs}")
        if self.garbage_max_bytes < 1:
            raise XrfDeviceError(f"garbage_max_bytes must be ≥ 1, got {self.garbage_max_bytes}")

    def probabilities(self) -> list[tuple[Fault, float]]:
        """``(fault, probability)`` pairs in draw order."""
        return [(Fault.BAD_CHECKSUM, self.bad_checksum), (Fault.TRUNCATE, self.truncate),
                (Fault.BUSY, self.busy), (Fault.SILENCE, self.silence),
                (Fault.GARBAGE, self.garbage)]

    @classmethod
    def from_spec(cls, faults: str = "", script: str = "") -> FaultConfig:
        """Parse URL-style text: ``faults="checksum:0.05,busy:0.1"``, ``script="busy,none,ack:5"``.

        Fault names are the :class:`Fault` values; ``ack:N`` (N decimal or 0x hex) scripts an
        ACK code.  Raises ``XrfDeviceError`` naming the bad item.
        """
        names = {"checksum": "bad_checksum", "truncate": "truncate", "busy": "busy",
                 "silence": "silence", "garbage": "garbage"}
        kwargs: dict[str, float] = {}
        for item in filter(None, (s.strip() for s in faults.split(","))):
            name, _, value = item.partition(":")
            if name not in names:
                raise XrfDeviceError(f"faults item {item!r}: unknown fault {name!r}; expected "
                                     f"one of {sorted(names)}")
            try:
                kwargs[names[name]] = float(value)
            except ValueError as exc:
                raise XrfDeviceError(f"faults item {item!r}: probability must be a number") from exc
        return cls(
            bad_checksum=kwargs.get("bad_checksum", 0.0), truncate=kwargs.get("truncate", 0.0),
            busy=kwargs.get("busy", 0.0), silence=kwargs.get("silence", 0.0),
            garbage=kwargs.get("garbage", 0.0),
            script=parse_script(script.split(",") if script else ()),
        )


def parse_script(items: Sequence[str]) -> tuple[ScriptItem, ...]:
    """Script words (``"busy"``, ``"none"``, ``"ack:0x05"``, …) → script items."""
    out: list[ScriptItem] = []
    by_value = {f.value: f for f in Fault}
    for word in (w.strip().lower() for w in items):
        if not word:
            continue
        if word.startswith("ack:"):
            try:
                out.append(AckCode(int(word[4:], 0)))
            except ValueError as exc:
                raise XrfDeviceError(f"script item {word!r}: not a known ACK code") from exc
        elif word in by_value:
            out.append(by_value[word])
        else:
            raise XrfDeviceError(f"script item {word!r}: expected one of {sorted(by_value)} "
                                 "or ack:N")
    return tuple(out)

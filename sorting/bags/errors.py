"""Errors of ``sorting.bags``: every one is a :class:`sorting.errors.BagError`.

A broken file gives a :class:`BrokenBagError` subclass that says which file, at
which byte offset it broke, and how many messages were read before that, so a
user can tell a recorder that was killed (truncated) from a file that was damaged
(corrupt) and knows how much of the recording survived.
"""

from __future__ import annotations

from pathlib import Path

from sorting.errors import BagError

__all__ = [
    "BagError",
    "BagExistsError",
    "BrokenBagError",
    "CorruptBagError",
    "TruncatedBagError",
]


class BagExistsError(BagError):
    """The output path of a writer exists already; bags are never overwritten."""


class BrokenBagError(BagError):
    """A bag file is damaged at ``offset``; ``messages_read`` messages were readable before.

    Attributes:
        path: the storage file (``.mcap``/``.db3``) that is broken.
        offset: byte offset in ``path`` of the record where reading broke (None where the
            storage cannot tell, as for sqlite3 errors).
        messages_read: number of messages yielded (or counted) before the error was raised.
        detail: what was expected and what was found.
    """

    kind = "broken"

    def __init__(
        self, path: Path | str, offset: int | None, detail: str, messages_read: int = 0
    ) -> None:
        self.path = Path(path)
        self.offset = None if offset is None else int(offset)
        self.detail = detail
        self.messages_read = int(messages_read)
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.path}: {self.summary}"

    def with_count(self, messages_read: int) -> BrokenBagError:
        """Return a copy of this error with ``messages_read`` set (same class, path, offset)."""
        return type(self)(self.path, self.offset, self.detail, messages_read)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.offset, self.detail, self.messages_read))

    @property
    def summary(self) -> str:
        """One line for reports: ``truncated at byte 123 after 45 messages: ...``."""
        where = "" if self.offset is None else f" at byte {self.offset}"
        return f"{self.kind}{where} after {self.messages_read} messages: {self.detail}"


class TruncatedBagError(BrokenBagError):
    """The file ends inside a record or has no footer (a recorder that was killed)."""

    kind = "truncated"


class CorruptBagError(BrokenBagError):
    """The file holds bytes that are not valid MCAP/rosbag2 (bad CRC, bad length, bad opcode)."""

    kind = "corrupt"

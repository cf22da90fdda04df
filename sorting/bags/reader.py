"""Read rosbag2 bags (MCAP or sqlite3) in log-time order, complete or broken.

MCAP files are read by :mod:`sorting.bags.mcap_reader` (tolerant of truncation
and corruption); sqlite3 (``.db3``) bags by ``rosbags.rosbag2.Reader``. A bag is
a directory with ``metadata.yaml``, a directory holding ``.mcap`` files without
it (a recorder killed before writing one), or a single ``.mcap`` file.

On a broken file the reader yields every readable message first, then, with
``strict=True`` (default), raises :class:`TruncatedBagError` or
:class:`CorruptBagError` naming the file, the byte offset and the number of
messages read; with ``strict=False`` it skips what it cannot read, goes on, and
lists the problems in :attr:`BagReader.problems` / :attr:`BagReader.errors`.

Example::

    >>> for topic, typename, t_ns, raw in read_messages("runs/demo/bag", ["/line1/status"]):
    ...     ...
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.rosbag2 import Reader as RosbagsReader
from rosbags.rosbag2.errors import ReaderError as RosbagsReaderError

from sorting.bags.errors import BagError, BrokenBagError, CorruptBagError
from sorting.bags.mcap_reader import McapFile
from sorting.bags.metadata import METADATA_FILE, BagMetadata, load_metadata
from sorting.errors import UnknownTopicError
from sorting.msgs import deserialize

Message = tuple[str, str, int, bytes]


@dataclass(frozen=True)
class TopicDecl:
    """A topic as the bag declares it: name, type and serialization format."""

    name: str
    typename: str
    serialization_format: str = "cdr"


class BagReader:
    """Open a bag (see module docstring) for reading; the files are scanned, not loaded.

    Args:
        path: bag directory, its ``metadata.yaml``, or one ``.mcap`` file.
        strict: raise on the first broken file (after yielding what precedes it)
            instead of recording the problem and going on.

    Raises:
        BagError: ``path`` does not exist or is not a bag (the message names it), or
            ``metadata.yaml`` is invalid or lists a file that is missing.
    """

    def __init__(self, path: Path | str, *, strict: bool = True) -> None:
        self.path = Path(path)
        self.strict = strict
        self.metadata: BagMetadata | None = None
        self.storage, self.files = self._resolve()
        #: problems met so far, one line each (``<file>: truncated at byte N after M messages``)
        self.problems: list[str] = []
        #: the same problems as error objects
        self.errors: list[BrokenBagError] = []
        #: messages yielded by the current/last iteration
        self.messages_read = 0
        self._stop: list[BrokenBagError] = []
        self._mcaps: dict[Path, McapFile] = {}
        if self.storage == "mcap":
            for f in self.files:
                self._mcaps[f] = McapFile.open(f)

    # -- what is in the bag -------------------------------------------------------------------

    def _resolve(self) -> tuple[str, list[Path]]:
        p = self.path
        if not p.exists():
            raise BagError(f"{p}: no such bag (the path does not exist)")
        if p.is_file():
            if p.name == METADATA_FILE:
                self.path = p = p.parent
            elif p.suffix == ".mcap":
                return "mcap", [p]
            else:
                raise BagError(
                    f"{p}: not a rosbag2 bag: expected a bag directory, its metadata.yaml "
                    f"or an .mcap file"
                )
        meta_path = p / METADATA_FILE
        if meta_path.is_file():
            meta = self.metadata = load_metadata(meta_path)
            storage = meta.storage_identifier
            if storage not in ("mcap", "sqlite3"):
                raise BagError(
                    f"{meta_path}: storage_identifier {storage!r} is not mcap or sqlite3"
                )
            if meta.compression_mode:
                raise BagError(
                    f"{meta_path}: rosbag2 {meta.compression_mode}-level "
                    f"{meta.compression_format} compression is not supported; decompress with "
                    f"'ros2 bag convert' first"
                )
            files = [p / name for name in meta.files]
            missing = [str(f) for f in files if not f.is_file()]
            if missing:
                raise BagError(f"{meta_path}: lists storage files that are missing: {missing}")
            if not files:
                raise BagError(
                    f"{meta_path}: lists no storage files (relative_file_paths is empty)"
                )
            return storage, files
        mcaps = sorted(p.glob("*.mcap"))
        if mcaps:
            return "mcap", mcaps
        raise BagError(
            f"{p}: not a rosbag2 bag: no metadata.yaml and no .mcap file in the directory"
        )

    @property
    def topics(self) -> dict[str, TopicDecl]:
        """Topics of the bag by name, from the storage files and ``metadata.yaml``."""
        out: dict[str, TopicDecl] = {}
        for mcap in self._mcaps.values():
            for ch in mcap.channels.values():
                out.setdefault(ch.topic, TopicDecl(ch.topic, mcap.typename(ch.id), ch.encoding))
        if self.metadata is not None:
            for t in self.metadata.topics:
                out.setdefault(t.name, TopicDecl(t.name, t.typename, t.serialization_format))
        if self.storage == "sqlite3" and self.metadata is None:  # pragma: no cover (resolve guards)
            raise BagError(f"{self.path}: sqlite3 bag without metadata.yaml")
        return out

    @property
    def complete(self) -> bool:
        """True when every MCAP file was closed properly (footer present, scan clean)."""
        return all(m.complete and m.problem is None for m in self._mcaps.values())

    def mcap_files(self) -> list[McapFile]:
        """The scanned MCAP files (empty for sqlite3 bags)."""
        return list(self._mcaps.values())

    def _check_topics(self, topics: Iterable[str] | None) -> set[str] | None:
        if topics is None:
            return None
        wanted = {topics} if isinstance(topics, str) else set(topics)
        known = self.topics
        if wanted - known.keys() and any(m.unknown_channel_ids() for m in self._mcaps.values()):
            for m in self._mcaps.values():
                m.discover_channels()
            known = self.topics
        unknown = sorted(wanted - known.keys())
        if unknown:
            raise UnknownTopicError(
                f"{self.path}: no topic(s) {unknown} in this bag; its topics are {sorted(known)}"
            )
        return wanted

    # -- messages -----------------------------------------------------------------------------

    def _report(self, exc: BrokenBagError, count: int) -> BrokenBagError:
        err = exc.with_count(count)
        self.errors.append(err)
        self.problems.append(f"{err.path}: {err.summary}")
        return err

    def raw_messages(
        self, topics: Iterable[str] | None = None
    ) -> Iterator[tuple[str, str, int, memoryview | bytes]]:
        """Like :meth:`messages` but payloads may be ``memoryview`` slices (no copy).

        The topic check happens at the call, not at the first ``next()``.
        """
        wanted = self._check_topics(topics)
        if self.storage == "sqlite3":
            return self._sqlite_messages(wanted)
        return self._mcap_messages(wanted)

    def _on_error(self, exc: BrokenBagError) -> bool:
        """Segment failure callback: stop (strict) or record and skip."""
        if self.strict:
            self._stop.append(exc)
            return True
        self._report(exc, self.messages_read)
        return False

    def _mcap_messages(
        self, wanted: set[str] | None
    ) -> Iterator[tuple[str, str, int, memoryview | bytes]]:
        self.messages_read = 0
        for path, mcap in self._mcaps.items():
            names: dict[int, tuple[str, str] | None] = {}
            want = _channel_filter(mcap, names, wanted)
            self._stop = []
            for t, cid, data in mcap.messages(want, self._on_error):
                entry = names.get(cid)
                if entry is None:
                    if cid not in mcap.channels:
                        err = self._report(
                            CorruptBagError(
                                path, None, f"message on channel {cid}, which has no Channel record"
                            ),
                            self.messages_read,
                        )
                        if self.strict:
                            raise err
                        continue
                    if not want(cid):
                        continue
                    entry = names[cid]
                    assert entry is not None
                self.messages_read += 1
                yield entry[0], entry[1], t, data
            if self._stop:
                raise self._report(self._stop[0], self.messages_read)
            if mcap.problem is not None:
                err = self._report(mcap.problem, self.messages_read)
                if self.strict:
                    raise err

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[Message]:
        """Yield ``(topic, typename, t_ns, rawdata)`` in log-time order.

        Raises:
            UnknownTopicError: a requested topic is not in the bag (lists the bag's topics).
            TruncatedBagError, CorruptBagError: with ``strict=True``, after the readable
                messages (names the file, byte offset and messages read).
        """
        return (
            (topic, typename, t, bytes(data))
            for topic, typename, t, data in self.raw_messages(topics)
        )

    def decoded(self, topics: Iterable[str] | None = None) -> Iterator[tuple[str, str, int, Any]]:
        """Yield ``(topic, typename, t_ns, message)``, decoded with the crmsort typestore.

        Raises what :meth:`messages` raises, and UnknownTypeError for a type the
        crmsort typestore does not know.
        """
        return (
            (topic, typename, t, deserialize(data, typename))
            for topic, typename, t, data in self.raw_messages(topics)
        )

    def _sqlite_messages(
        self, wanted: set[str] | None
    ) -> Iterator[tuple[str, str, int, memoryview | bytes]]:
        db = self.files[0]
        count = 0
        try:
            with RosbagsReader(self.path) as reader:
                conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
                for conn, t, data in reader.messages(connections=conns):
                    count += 1
                    yield conn.topic, conn.msgtype, t, data
        except (RosbagsReaderError, sqlite3.Error) as exc:
            err = self._report(CorruptBagError(db, None, f"sqlite3 storage: {exc}"), count)
            if self.strict:
                raise err from None


def _channel_filter(
    mcap: McapFile, names: dict[int, tuple[str, str] | None], wanted: set[str] | None
) -> Callable[[int], bool]:
    """A channel-id predicate for ``wanted`` topics that fills ``names`` (id -> topic, type).

    A channel whose record was not seen yet passes (it may be defined inside the chunk
    being decoded); the caller checks it again once the chunk is parsed.
    """

    def want(cid: int) -> bool:
        hit = names.get(cid, False)
        if hit is False:
            ch = mcap.channels.get(cid)
            if ch is None:
                return True
            hit = names[cid] = (
                (ch.topic, mcap.typename(cid)) if wanted is None or ch.topic in wanted else None
            )
        return hit is not None

    return want


def read_messages(
    path: Path | str, topics: Iterable[str] | None = None, *, strict: bool = True
) -> Iterator[Message]:
    """Yield ``(topic, typename, t_ns, rawdata)`` of a bag in log-time order.

    See :class:`BagReader` (use it directly to get the problem list with
    ``strict=False``). Raises BagError for a path that is not a bag,
    UnknownTopicError for a topic not in the bag, and, with ``strict=True``,
    TruncatedBagError/CorruptBagError after the readable messages of a broken file.
    """
    return BagReader(path, strict=strict).messages(topics)


def read_decoded(
    path: Path | str, topics: Iterable[str] | None = None, *, strict: bool = True
) -> Iterator[tuple[str, str, int, Any]]:
    """Like :func:`read_messages`, yielding decoded messages instead of CDR bytes."""
    return BagReader(path, strict=strict).decoded(topics)

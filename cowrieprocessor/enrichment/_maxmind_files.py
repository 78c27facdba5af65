"""The database files behind ``MaxMindClient``: open readers and reload on replacement.

A :class:`WatchedDatabase` holds one kind of database (geo or ASN) as a list of
candidate files. At most once per interval it stats them and reopens the first
one present when it was replaced on disk (different inode, mtime or size).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb

from cowrieprocessor.enrichment.addresses import IPAddress
from cowrieprocessor.enrichment.errors import SourceUnavailableError

__all__ = ["SOURCE", "OpenedDatabase", "Record", "WatchedDatabase"]

# Records keep the logger name of the public module, as before this code moved here.
logger = logging.getLogger("cowrieprocessor.enrichment.maxmind_client")

SOURCE = "maxmind"

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpenedDatabase:
    """A database file as last seen: its identity and its reader (or why it failed)."""

    path: Path
    signature: tuple[int, int, int]
    reader: maxminddb.Reader | None
    build_time: datetime | None
    ipv4_only: bool
    failure: str | None


_NOTHING: tuple[None, None] = (None, None)


class WatchedDatabase:
    """One kind of database (geo or ASN): candidate files, open reader, reload."""

    def __init__(
        self, candidates: tuple[Path, ...], clock: Callable[[], float], interval: float
    ) -> None:
        self.candidates = candidates
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._opened: OpenedDatabase | None = None
        self._next_check = float("-inf")

    @property
    def current(self) -> OpenedDatabase | None:
        """The file in use after a reload check if one is due."""
        if self._clock() >= self._next_check:
            self._refresh()
        return self._opened

    def expire(self) -> None:
        """Make the next access look at the files again."""
        if self._next_check != float("inf"):
            self._next_check = float("-inf")

    def close(self) -> None:
        """Close the reader and never look at the files again."""
        with self._lock:
            self._next_check = float("inf")
            opened, self._opened = self._opened, None
        if opened is not None and opened.reader is not None:
            opened.reader.close()

    def lookup(self, address: IPAddress) -> tuple[Record | None, datetime | None]:
        """Return the record for ``address`` and the build time of its database."""
        opened = self.current
        if opened is None:
            return _NOTHING
        reader = opened.reader
        if reader is None:
            raise SourceUnavailableError(opened.failure or "unreadable database", source=SOURCE)
        if opened.ipv4_only and address.version == 6:
            return _NOTHING
        try:
            record = reader.get(address)
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise SourceUnavailableError(
                f"cannot read MaxMind database {opened.path}: {_reason(exc)}", source=SOURCE
            ) from exc
        if record is None:
            return _NOTHING
        if not isinstance(record, dict):
            raise SourceUnavailableError(
                f"unexpected record type in MaxMind database {opened.path}", source=SOURCE
            )
        return record, opened.build_time

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_check:
                return
            self._next_check = now + self._interval
            found = _first_existing(self.candidates)
            opened = self._opened
            if found is None:
                if opened is not None:
                    logger.info("MaxMind database %s is gone", opened.path)
                self._opened = None
            elif opened is None or (opened.path, opened.signature) != found:
                # The previous reader is not closed here: a lookup in another
                # thread may still use it; it is released with its last reference.
                self._opened = _open(*found)


def _first_existing(candidates: tuple[Path, ...]) -> tuple[Path, tuple[int, int, int]] | None:
    for path in candidates:
        try:
            info = path.stat()
        except OSError:
            continue
        return path, (info.st_ino, info.st_mtime_ns, info.st_size)
    return None


def _open(path: Path, signature: tuple[int, int, int]) -> OpenedDatabase:
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        metadata = reader.metadata()
        build = datetime.fromtimestamp(metadata.build_epoch, UTC)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError, OverflowError) as exc:
        failure = f"cannot read MaxMind database {path}: {_reason(exc)}"
        logger.warning("%s", failure)
        return OpenedDatabase(path, signature, None, None, False, failure)
    logger.info("opened MaxMind database %s (%s, built %s)", path, metadata.database_type, build)
    return OpenedDatabase(path, signature, reader, build, metadata.ip_version == 4, None)


def _reason(exc: Exception) -> str:
    if isinstance(exc, maxminddb.InvalidDatabaseError):
        return "not a valid MaxMind DB file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)

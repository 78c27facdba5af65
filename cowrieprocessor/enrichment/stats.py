"""Per-client lookup counters and their immutable snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["ClientStats", "StatsCounter"]


@dataclass(frozen=True, slots=True)
class ClientStats:
    """A snapshot of one client's lookups since it was created."""

    lookups: int = 0
    hits: int = 0
    misses: int = 0
    errors: int = 0


class StatsCounter:
    """Thread-safe counters behind :meth:`snapshot`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lookups = 0
        self._hits = 0
        self._misses = 0
        self._errors = 0

    def hit(self) -> None:
        with self._lock:
            self._lookups += 1
            self._hits += 1

    def miss(self) -> None:
        with self._lock:
            self._lookups += 1
            self._misses += 1

    def error(self) -> None:
        with self._lock:
            self._lookups += 1
            self._errors += 1

    def snapshot(self) -> ClientStats:
        with self._lock:
            return ClientStats(self._lookups, self._hits, self._misses, self._errors)

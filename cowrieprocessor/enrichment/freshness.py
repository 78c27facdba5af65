"""How long each source's answer stays fresh.

Each source keeps its own ``fetched_at`` inside ``ip_inventory.enrichment``, so
refreshing one source never resets another's clock. MaxMind data also goes stale
when a newer database build is installed, whatever its age.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "DEFAULT_POLICIES",
    "SOURCES",
    "SourcePolicy",
    "fetched_at",
    "is_stale",
    "parse_timestamp",
]

SOURCES = ("maxmind", "cymru", "greynoise")


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """Freshness rule of one source."""

    name: str
    ttl: timedelta


DEFAULT_POLICIES: Mapping[str, SourcePolicy] = {
    "maxmind": SourcePolicy("maxmind", timedelta(days=30)),
    "cymru": SourcePolicy("cymru", timedelta(days=90)),
    "greynoise": SourcePolicy("greynoise", timedelta(days=7)),
}


def is_stale(fetched: datetime | None, ttl: timedelta, now: datetime) -> bool:
    """True when data fetched at ``fetched`` must be fetched again at ``now``.

    >>> from datetime import datetime, timedelta, UTC
    >>> now = datetime(2026, 1, 8, tzinfo=UTC)
    >>> is_stale(datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=7), now)
    True
    >>> is_stale(None, timedelta(days=7), now)
    True
    """
    return fetched is None or now - fetched >= ttl


def parse_timestamp(value: Any) -> datetime | None:
    """Read an ISO-8601 timestamp kept in JSON; ``None`` when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def fetched_at(entry: Mapping[str, Any] | None) -> datetime | None:
    """The ``fetched_at`` of one source's sub-object in ``ip_inventory.enrichment``."""
    if not entry:
        return None
    return parse_timestamp(entry.get("fetched_at"))

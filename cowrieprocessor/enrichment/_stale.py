"""Which stored IPs need a source asked again, judged by that source's own timestamps.

Used by :meth:`CascadeEnricher.refresh_stale_data`: a SQL pre-filter selects the
rows whose entry for a source may be stale, and the cascade's own freshness rule
(:meth:`IPWork.plan`) confirms each one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cowrieprocessor.db.models import IPInventory
from cowrieprocessor.enrichment.addresses import parse_ip
from cowrieprocessor.enrichment.freshness import SourcePolicy
from cowrieprocessor.enrichment.merge import IPWork

__all__ = ["find_stale_ips"]


def find_stale_ips(
    session: Session,
    policies: Mapping[str, SourcePolicy],
    sources: Sequence[str],
    *,
    enabled: Mapping[str, bool],
    now: datetime,
    maxmind_build: datetime | None,
    limit: int,
) -> list[str]:
    """Up to ``limit`` IPs, in address order, for which one of ``sources`` is stale."""
    stale: list[str] = []
    rows = session.execute(
        select(IPInventory.ip_address, IPInventory.enrichment)
        .where(or_(*(_maybe_stale(name, policies[name], now, maxmind_build) for name in sources)))
        .order_by(IPInventory.ip_address)
    )
    for ip, enrichment in rows:
        work = IPWork(ip, parse_ip(ip), dict(enrichment or {}))
        work.plan(policies, enabled, now, maxmind_build)
        if work.needs_refresh(sources):
            stale.append(ip)
            if len(stale) >= limit:
                break
    return stale


def _maybe_stale(
    source: str, policy: SourcePolicy, now: datetime, maxmind_build: datetime | None
) -> Any:
    """Rows whose ``source`` entry may be stale.

    Timestamps are kept as ISO-8601 text in UTC, so they compare as strings.
    """
    entry = IPInventory.enrichment[source]
    fetched = entry["fetched_at"].as_string()
    conditions = [fetched.is_(None), fetched <= (now - policy.ttl).isoformat()]
    if source == "maxmind" and maxmind_build is not None:
        built = entry["database_build"].as_string()
        conditions += [built.is_(None), built < maxmind_build.isoformat()]
    return or_(*conditions)

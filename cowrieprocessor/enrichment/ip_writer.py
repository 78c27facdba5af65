"""Batched writes of ``ip_inventory`` rows, with the ASN count deltas they imply.

Lock order, the same in every transaction: new IP rows are inserted in sorted
order (``ON CONFLICT DO NOTHING``), then the existing rows of the batch are
locked in sorted order (``FOR UPDATE`` on PostgreSQL), and only then are ASN
rows touched, in sorted order too. A transaction never waits for an IP row
after it has touched an ASN row, so concurrent workers cannot deadlock.
``current_asn`` is a deferred foreign key, so an IP may name an ASN that the
same transaction creates a moment later.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cowrieprocessor.db.models import ENRICHMENT_VERSION, Base
from cowrieprocessor.enrichment.asn_inventory import CountDelta

__all__ = ["IPWrite", "IPWriteResult", "write_ips"]

IP_TABLE = Base.metadata.tables["ip_inventory"]
_CHUNK = 500
#: Rows per multi-row INSERT ... RETURNING statement on PostgreSQL.
PG_PAGE_ROWS = 25
_T = TypeVar("_T")


@dataclass(slots=True)
class IPWrite:
    """What the cascade wants stored for one IP."""

    ip: str
    asn: int | None
    enrichment: dict[str, Any]
    refreshed: bool
    asn_verified: bool


@dataclass(slots=True)
class IPWriteResult:
    """Count deltas per ASN, ASN moves, the observation window per ASN, and new rows.

    ``inserted`` holds, for each IP whose row this batch inserted, the values of
    every column as written.
    """

    deltas: dict[int, CountDelta] = field(default_factory=lambda: defaultdict(CountDelta))
    moves: list[tuple[str, int, int]] = field(default_factory=list)
    seen: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)
    inserted: dict[str, dict[str, Any]] = field(default_factory=dict)

    def observe(self, asn: int, first: datetime, last: datetime) -> None:
        old = self.seen.get(asn)
        self.seen[asn] = (first, last) if old is None else (min(old[0], first), max(old[1], last))


@dataclass(frozen=True, slots=True)
class _Sessions:
    count: int
    first: datetime
    last: datetime


@dataclass(frozen=True, slots=True)
class _Current:
    asn: int | None
    count: int
    first: datetime
    last: datetime
    verified: datetime | None


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_ips(
    session: Session, writes: Iterable[IPWrite], known: set[str], now: datetime
) -> IPWriteResult:
    """Insert or update the IPs of one batch and compute the ASN count deltas.

    ``known`` holds the IPs the cache query found. Session counts come from
    ``session_summaries`` (distinct sessions), so running the same input twice
    changes no count. Flushes; never commits.
    """
    by_ip = {write.ip: write for write in writes}
    ordered = sorted(by_ip)
    sessions = _session_stats(session, ordered)
    result = IPWriteResult()
    fresh = [by_ip[ip] for ip in ordered if ip not in known]
    result.inserted = _insert_new(session, fresh, sessions, now)
    for ip in sorted(result.inserted):
        write = by_ip[ip]
        stats = sessions.get(ip)
        first, last = (stats.first, stats.last) if stats else (now, now)
        if write.asn is not None:
            delta = result.deltas[write.asn]
            delta.ips += 1
            delta.sessions += stats.count if stats else 0
            result.observe(write.asn, first, last)
    rest = [ip for ip in ordered if ip not in result.inserted]
    current = _lock_existing(session, rest)
    updates = [
        _plan_update(by_ip[ip], current[ip], sessions.get(ip), now, result)
        for ip in rest
        if ip in current
    ]
    _apply_updates(session, updates)
    _record_moves(session, result.moves, now)
    return result


@functools.cache
def _session_stats_query() -> Any:
    c = Base.metadata.tables["session_summaries"].c
    return (
        select(c.src_ip, func.count(), func.min(c.first_event_at), func.max(c.last_event_at))
        .where(c.src_ip.in_(bindparam("ips", expanding=True)))
        .group_by(c.src_ip)
    )


@functools.cache
def _lock_query() -> Any:
    c = IP_TABLE.c
    return (
        select(
            c.ip_address,
            c.current_asn,
            c.session_count,
            c.first_seen,
            c.last_seen,
            c.asn_last_verified,
        )
        .where(c.ip_address.in_(bindparam("ips", expanding=True)))
        .order_by(c.ip_address)
        .with_for_update()
    )


def _session_stats(session: Session, ips: Sequence[str]) -> dict[str, _Sessions]:
    found: dict[str, _Sessions] = {}
    for part in _chunks(ips):
        rows = session.connection().execute(_session_stats_query(), {"ips": list(part)})
        for ip, count, first, last in rows:
            found[ip] = _Sessions(int(count), first, last)
    return found


@functools.cache
def _insert_statement(*, postgres: bool) -> Any:
    insert = postgresql.insert if postgres else sqlite.insert
    stmt: Any = insert(IP_TABLE).on_conflict_do_nothing(index_elements=[IP_TABLE.c.ip_address])
    if not postgres:
        return stmt
    # Short pages of VALUES are parsed and planned much faster by PostgreSQL than one
    # statement with every row of the batch; the rows keep their sorted order.
    return stmt.returning(IP_TABLE.c.ip_address).execution_options(
        insertmanyvalues_page_size=PG_PAGE_ROWS
    )


def _insert_new(
    session: Session, fresh: Sequence[IPWrite], sessions: dict[str, _Sessions], now: datetime
) -> dict[str, dict[str, Any]]:
    if not fresh:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    stmt = _insert_statement(postgres=postgres)
    inserted: dict[str, dict[str, Any]] = {}
    for part in _chunks(fresh):
        rows: list[dict[str, Any]] = []
        for write in part:
            stats = sessions.get(write.ip)
            rows.append(
                {
                    "ip_address": write.ip,
                    "current_asn": write.asn,
                    "asn_last_verified": now if write.asn_verified else None,
                    "first_seen": stats.first if stats else now,
                    "last_seen": stats.last if stats else now,
                    "session_count": stats.count if stats else 0,
                    "enrichment": write.enrichment,
                    "enrichment_updated_at": now if write.refreshed else None,
                    "enrichment_version": ENRICHMENT_VERSION,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if postgres:
            new = set(session.connection().execute(stmt, rows).scalars())
            inserted.update((row["ip_address"], row) for row in rows if row["ip_address"] in new)
        else:
            # One SQLite writer at a time: the cache query of this transaction already
            # saw every row, so nothing can conflict (a concurrent writer makes this
            # transaction fail instead of silently skipping rows).
            session.connection().execute(stmt, rows)
            inserted.update((row["ip_address"], row) for row in rows)
    return inserted


def _lock_existing(session: Session, ips: Sequence[str]) -> dict[str, _Current]:
    found: dict[str, _Current] = {}
    for part in _chunks(ips):
        rows = session.connection().execute(_lock_query(), {"ips": list(part)})
        for ip, asn, count, first, last, verified in rows:
            found[ip] = _Current(asn, int(count), first, last, verified)
    return found


def _plan_update(
    write: IPWrite,
    current: _Current,
    stats: _Sessions | None,
    now: datetime,
    result: IPWriteResult,
) -> dict[str, Any]:
    count = stats.count if stats else 0
    first = min(current.first, stats.first) if stats else current.first
    last = max(current.last, stats.last if stats else now)
    asn = write.asn if write.asn is not None else current.asn
    if asn == current.asn:
        if asn is not None and count != current.count:
            result.deltas[asn].sessions += count - current.count
    else:
        if current.asn is not None:
            old = result.deltas[current.asn]
            old.ips -= 1
            old.sessions -= current.count
            if asn is not None:
                result.moves.append((write.ip, current.asn, asn))
        if asn is not None:
            new = result.deltas[asn]
            new.ips += 1
            new.sessions += count
    if asn is not None:
        result.observe(asn, first, last)
    return {
        "b_ip": write.ip,
        "b_asn": asn,
        "b_count": count,
        "b_first": first,
        "b_last": last,
        "b_verified": now if write.asn_verified else current.verified,
        "b_enrichment": write.enrichment,
        "b_refreshed": write.refreshed,
        "b_now": now,
    }


@functools.cache
def _update_statement(*, refreshed: bool) -> Any:
    c = IP_TABLE.c
    values: dict[str, Any] = {
        "current_asn": bindparam("b_asn", type_=c.current_asn.type),
        "session_count": bindparam("b_count", type_=c.session_count.type),
        "first_seen": bindparam("b_first", type_=c.first_seen.type),
        "last_seen": bindparam("b_last", type_=c.last_seen.type),
        "asn_last_verified": bindparam("b_verified", type_=c.asn_last_verified.type),
        "updated_at": bindparam("b_now", type_=c.updated_at.type),
    }
    if refreshed:
        values["enrichment"] = bindparam("b_enrichment", type_=c.enrichment.type)
        values["enrichment_updated_at"] = bindparam("b_now", type_=c.enrichment_updated_at.type)
        values["enrichment_version"] = ENRICHMENT_VERSION
    return update(IP_TABLE).where(c.ip_address == bindparam("b_ip")).values(**values)


def _apply_updates(session: Session, updates: Sequence[dict[str, Any]]) -> None:
    for refreshed in (True, False):
        rows = [row for row in updates if row["b_refreshed"] is refreshed]
        if not rows:
            continue
        unused = ("b_refreshed",) if refreshed else ("b_enrichment", "b_refreshed")
        params = [{k: v for k, v in row.items() if k not in unused} for row in rows]
        session.connection().execute(_update_statement(refreshed=refreshed), params)


def _record_moves(session: Session, moves: Sequence[tuple[str, int, int]], now: datetime) -> None:
    if not moves:
        return
    session.connection().execute(
        Base.metadata.tables["ip_asn_history"].insert(),
        [
            {"ip_address": ip, "previous_asn": old, "new_asn": new, "observed_at": now}
            for ip, old, new in moves
        ],
    )

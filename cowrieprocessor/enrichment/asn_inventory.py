"""The ASN inventory upsert: one sorted ``INSERT ... ON CONFLICT DO UPDATE`` per chunk.

Created versus updated is classified exactly: on PostgreSQL by ``RETURNING
(xmax = 0)`` (true only for a row this statement inserted), on SQLite, where one
writer holds the database at a time, by the keys present in the same
transaction just before the statement. On update, ``last_seen`` and
``updated_at`` move forward, ``first_seen`` moves back, missing organization,
country and RIR are filled in and existing values are never overwritten; the
exact counts change by the deltas the IP writes computed.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, case, func, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cowrieprocessor.db.models import Base
from cowrieprocessor.telemetry import names
from cowrieprocessor.telemetry.instruments import EnrichmentInstruments

__all__ = [
    "ASNObservation",
    "ASNUpsertResult",
    "CountDelta",
    "CountDrift",
    "inventory_size",
    "rebuild_asn_counts",
    "upsert_asns",
]

ASN_TABLE = Base.metadata.tables["asn_inventory"]
_CHUNK = 1000
# Rows that only carry a count change keep their timestamps through these bounds.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)
_FOREVER = datetime(9999, 12, 31, tzinfo=UTC)
_METADATA = ("organization_name", "organization_country", "rir_registry")
#: Per-ASN span events of a batch statement, at most: with the SDK each event costs a
#: few microseconds and is kept until its span is exported; the span's counts cover
#: the rest (``asn.events_dropped``).
MAX_ASN_EVENTS = 32
#: Rows per multi-row upsert statement on PostgreSQL (short statements plan much faster).
PG_PAGE_ROWS = 25
_COUNT_QUERY = select(func.count()).select_from(ASN_TABLE)


@dataclass(frozen=True, slots=True)
class ASNObservation:
    """An ASN met by the cascade, with what the source said about it."""

    asn: int
    organization_name: str | None
    organization_country: str | None
    rir_registry: str | None
    source: str
    first_seen: datetime
    last_seen: datetime


@dataclass(slots=True)
class CountDelta:
    """Change of ``unique_ip_count`` and ``total_session_count`` of one ASN."""

    ips: int = 0
    sessions: int = 0

    def __bool__(self) -> bool:
        return bool(self.ips or self.sessions)


@dataclass(frozen=True, slots=True)
class ASNUpsertResult:
    """What one call of :func:`upsert_asns` did to the observed ASNs."""

    created: frozenset[int] = frozenset()
    updated: frozenset[int] = frozenset()
    duration_s: float = 0.0
    statements: int = 0


@dataclass(frozen=True, slots=True)
class CountDrift:
    """An ASN whose stored counts differed from the recomputed ones."""

    asn: int
    stored_ips: int
    actual_ips: int
    stored_sessions: int
    actual_sessions: int


@dataclass(slots=True)
class _Chunk:
    rows: list[dict[str, Any]] = field(default_factory=list)
    observed: list[ASNObservation] = field(default_factory=list)


def upsert_asns(
    session: Session,
    observed: Mapping[int, ASNObservation],
    deltas: Mapping[int, CountDelta],
    instruments: EnrichmentInstruments,
    *,
    now: datetime | None = None,
) -> ASNUpsertResult:
    """Create or update the observed ASNs and apply count deltas, keys sorted.

    ASNs that appear only in ``deltas`` (an IP left them) get their counts
    changed without counting as an operation. The session is flushed by the
    statements; nothing is committed.
    """
    now = now or datetime.now(UTC)
    keys = sorted(set(observed) | {asn for asn, delta in deltas.items() if delta})
    if not keys:
        return ASNUpsertResult()
    previous = _previous_metadata(session, sorted(observed))
    created: set[int] = set()
    updated: set[int] = set()
    duration = 0.0
    chunks = [keys[start : start + _CHUNK] for start in range(0, len(keys), _CHUNK)]
    for chunk_keys in chunks:
        chunk = _build_chunk(chunk_keys, observed, deltas, now)
        new, seconds = _execute_chunk(session, chunk, previous, instruments)
        duration += seconds
        for item in chunk.observed:
            (created if item.asn in new else updated).add(item.asn)
    return ASNUpsertResult(frozenset(created), frozenset(updated), duration, len(chunks))


def _build_chunk(
    keys: Sequence[int],
    observed: Mapping[int, ASNObservation],
    deltas: Mapping[int, CountDelta],
    now: datetime,
) -> _Chunk:
    chunk = _Chunk()
    for asn in keys:
        delta = deltas.get(asn) or CountDelta()
        item = observed.get(asn)
        row: dict[str, Any] = {
            "asn_number": asn,
            "unique_ip_count": delta.ips,
            "total_session_count": delta.sessions,
            "created_at": now,
            "updated_at": now,
        }
        if item is None:
            row.update(dict.fromkeys(_METADATA), first_seen=_FOREVER, last_seen=_NEVER)
        else:
            chunk.observed.append(item)
            row.update(
                organization_name=item.organization_name,
                organization_country=item.organization_country,
                rir_registry=item.rir_registry,
                first_seen=item.first_seen,
                last_seen=item.last_seen,
            )
        chunk.rows.append(row)
    return chunk


@functools.cache
def _upsert_statement(dialect: str) -> Any:
    table = ASN_TABLE
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table)
    excluded = stmt.excluded
    c = table.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.asn_number],
        set_={
            "organization_name": func.coalesce(c.organization_name, excluded.organization_name),
            "organization_country": func.coalesce(
                c.organization_country, excluded.organization_country
            ),
            "rir_registry": func.coalesce(c.rir_registry, excluded.rir_registry),
            "first_seen": case(
                (excluded.first_seen < c.first_seen, excluded.first_seen), else_=c.first_seen
            ),
            "last_seen": case(
                (excluded.last_seen > c.last_seen, excluded.last_seen), else_=c.last_seen
            ),
            "updated_at": case(
                (excluded.updated_at > c.updated_at, excluded.updated_at), else_=c.updated_at
            ),
            "unique_ip_count": c.unique_ip_count + excluded.unique_ip_count,
            "total_session_count": c.total_session_count + excluded.total_session_count,
        },
    )
    if dialect == "postgresql":
        return stmt.returning(c.asn_number, literal_column("(xmax = 0)")).execution_options(
            insertmanyvalues_page_size=PG_PAGE_ROWS
        )
    return stmt


def _execute_chunk(
    session: Session,
    chunk: _Chunk,
    previous: Mapping[int, tuple[str | None, ...]],
    instruments: EnrichmentInstruments,
) -> tuple[set[int], float]:
    dialect = session.get_bind().dialect.name
    stmt = _upsert_statement(dialect)
    with instruments.tracer.start_as_current_span(names.ENSURE_ASN_SPAN) as span:
        started = time.perf_counter()
        if dialect == "postgresql":
            result = session.connection().execute(stmt, chunk.rows)
            new = {int(asn) for asn, inserted in result if inserted}
        else:
            session.connection().execute(stmt, chunk.rows)
            new = {item.asn for item in chunk.observed if item.asn not in previous}
        seconds = time.perf_counter() - started
        created, updated = _tally(chunk.observed, new, previous)
        instruments.record_asn_operations(created, updated, seconds)
        if span.is_recording():
            _describe(span, chunk.observed, new, seconds)
    return new, seconds


def _tally(
    items: Sequence[ASNObservation],
    new: set[int],
    previous: Mapping[int, tuple[str | None, ...]],
) -> tuple[Counter[tuple[tuple[str, str], ...]], Counter[tuple[tuple[str, str], ...]]]:
    created: Counter[tuple[tuple[str, str], ...]] = Counter()
    updated: Counter[tuple[tuple[str, str], ...]] = Counter()
    for item in items:
        if item.asn in new:
            created[
                (
                    ("source", item.source),
                    ("country", item.organization_country or "unknown"),
                    ("rir", item.rir_registry or "unknown"),
                )
            ] += 1
        else:
            kind = _update_type(item, previous.get(item.asn))
            updated[(("source", item.source), ("update_type", kind))] += 1
    return created, updated


def _update_type(item: ASNObservation, before: tuple[str | None, ...] | None) -> str:
    offered = (item.organization_name, item.organization_country, item.rir_registry)
    if before is None or any(old is None and new for old, new in zip(before, offered, strict=True)):
        return "metadata_enrichment"
    return "timestamp_refresh"


def _describe(span: Any, items: Sequence[ASNObservation], new: set[int], seconds: float) -> None:
    created = sum(1 for item in items if item.asn in new)
    span.set_attribute("asn.batch_size", len(items))
    span.set_attribute("asn.created_count", created)
    span.set_attribute("asn.updated_count", len(items) - created)
    span.set_attribute("asn.operation_duration_ms", seconds * 1000.0)
    if len(items) == 1:
        span.set_attributes(_asn_attributes(items[0], new))
        return
    if len(items) > MAX_ASN_EVENTS:
        span.set_attribute("asn.events_dropped", len(items) - MAX_ASN_EVENTS)
    # New ASNs first: they are the rarer and more telling part of a busy statement.
    described = sorted(items, key=lambda item: item.asn not in new)[:MAX_ASN_EVENTS]
    for item in described:
        span.add_event("asn_inventory.operation", _asn_attributes(item, new))


def _asn_attributes(item: ASNObservation, new: set[int]) -> dict[str, Any]:
    return {
        "asn.number": item.asn,
        "asn.organization": item.organization_name or "unknown",
        "asn.country": item.organization_country or "unknown",
        "asn.rir": item.rir_registry or "unknown",
        "asn.operation": "create" if item.asn in new else "update",
    }


@functools.cache
def _previous_query() -> Any:
    c = ASN_TABLE.c
    return select(c.asn_number, c.organization_name, c.organization_country, c.rir_registry).where(
        c.asn_number.in_(bindparam("keys", expanding=True))
    )


def _previous_metadata(session: Session, keys: Sequence[int]) -> dict[int, tuple[str | None, ...]]:
    found: dict[int, tuple[str | None, ...]] = {}
    for start in range(0, len(keys), _CHUNK):
        part = list(keys[start : start + _CHUNK])
        rows = session.connection().execute(_previous_query(), {"keys": part})
        for asn, org, country, rir in rows:
            found[int(asn)] = (org, country, rir)
    return found


def inventory_size(session: Session) -> int:
    """``SELECT count(*) FROM asn_inventory``."""
    return int(session.connection().execute(_COUNT_QUERY).scalar_one())


def rebuild_asn_counts(session: Session, *, apply: bool = True) -> list[CountDrift]:
    """Recompute ``unique_ip_count`` and ``total_session_count`` from ``ip_inventory``.

    Returns the ASNs whose stored counts differed (the drift); with ``apply`` the
    stored counts are corrected (flushed, not committed).
    """
    from cowrieprocessor.db.models import IPInventory

    ip = IPInventory.__table__.c
    actual = (
        select(
            ip.current_asn.label("asn"),
            func.count().label("ips"),
            func.coalesce(func.sum(ip.session_count), 0).label("sessions"),
        )
        .where(ip.current_asn.is_not(None))
        .group_by(ip.current_asn)
        .subquery()
    )
    c = ASN_TABLE.c
    rows = session.execute(
        select(
            c.asn_number,
            c.unique_ip_count,
            c.total_session_count,
            func.coalesce(actual.c.ips, 0),
            func.coalesce(actual.c.sessions, 0),
        )
        .outerjoin(actual, actual.c.asn == c.asn_number)
        .order_by(c.asn_number)
    )
    drift = [
        CountDrift(int(asn), int(ips), int(real_ips), int(sessions), int(real_sessions))
        for asn, ips, sessions, real_ips, real_sessions in rows
        if ips != real_ips or sessions != real_sessions
    ]
    if apply and drift:
        session.execute(
            ASN_TABLE.update()
            .where(c.asn_number == bindparam("b_asn"))
            .values(
                unique_ip_count=bindparam("b_ips"), total_session_count=bindparam("b_sessions")
            ),
            [
                {"b_asn": d.asn, "b_ips": d.actual_ips, "b_sessions": d.actual_sessions}
                for d in drift
            ],
        )
    return drift

"""Per-session summaries and per-IP run aggregates built from Cowrie events.

Memory stays bounded on multi-gigabyte logs: a session's summary leaves the
aggregator when its ``cowrie.session.closed`` event arrives (collect it with
:meth:`SessionAggregator.pop_closed`), so only sessions still open are held,
plus per-IP aggregates that grow with the number of distinct IPs.

Counting rules:

- ``login_attempts`` counts ``cowrie.login.success`` and ``cowrie.login.failed``.
- ``commands`` counts ``cowrie.command.input`` only: Cowrie logs a
  ``cowrie.command.failed`` *after* the input of a command it does not know, so
  counting both would count that command twice.
- A session keeps the ``src_ip`` of its first event; an event of the same
  session from another address is still counted in the session and in its own
  address's events, and is reported as a ``src_ip`` conflict.
- An event that arrives after its session was closed (within the last
  ``reopen_window`` closed sessions) reopens the session with its counts so
  far, so the record emitted again is complete.

:func:`store_sessions` writes summaries idempotently: reading the same log
again (a rerun, or a resume after a kill) changes no count. Known limit: the
counts of one session are merged as the *larger* of the stored and the new
value, so a session split across two files that are read in *different* runs
keeps the counts of its larger part; reading all files of a run together gives
exact counts.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cowrieprocessor.db.models import SessionSummary
from cowrieprocessor.ingest.reader import CowrieEvent

__all__ = [
    "CLOSE_EVENT",
    "COMMAND_EVENTS",
    "LOGIN_EVENTS",
    "STORE_CHUNK_SIZE",
    "AggregatorSummary",
    "IPRunStats",
    "SessionAggregator",
    "SessionRecord",
    "store_sessions",
]

logger = logging.getLogger(__name__)

CLOSE_EVENT = "cowrie.session.closed"
LOGIN_EVENTS = frozenset({"cowrie.login.success", "cowrie.login.failed"})
COMMAND_EVENTS = frozenset({"cowrie.command.input"})
#: Rows per ``INSERT ... ON CONFLICT`` statement written by :func:`store_sessions`.
STORE_CHUNK_SIZE = 1000

_COLUMNS = 8
# SQLite (3.32+) accepts 32766 bound parameters per statement, PostgreSQL 65535.
_MAX_ROWS_PER_STATEMENT = 32766 // _COLUMNS
_LOGGED_CONFLICTS = 10


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """Summary of one Cowrie session, as stored in ``session_summaries``."""

    session_id: str
    src_ip: str
    sensor: str | None
    first_event_at: datetime
    last_event_at: datetime
    event_count: int
    login_attempts: int
    commands: int


@dataclass(frozen=True, slots=True)
class IPRunStats:
    """What one source IP did during this run."""

    ip: str
    sessions: int
    events: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class AggregatorSummary:
    """Counts of a :class:`SessionAggregator`, as a frozen snapshot."""

    sessions: int
    open_sessions: int
    unique_ips: int
    events: int
    reopened_sessions: int
    src_ip_conflicts: int


class _OpenSession:
    __slots__ = (
        "commands",
        "event_count",
        "first_event_at",
        "last_event_at",
        "login_attempts",
        "sensor",
        "session_id",
        "src_ip",
    )

    def __init__(self, record: SessionRecord) -> None:
        self.session_id = record.session_id
        self.src_ip = record.src_ip
        self.sensor = record.sensor
        self.first_event_at = record.first_event_at
        self.last_event_at = record.last_event_at
        self.event_count = record.event_count
        self.login_attempts = record.login_attempts
        self.commands = record.commands

    def absorb(self, event: CowrieEvent) -> None:
        self.event_count += 1
        self.first_event_at = min(self.first_event_at, event.timestamp)
        self.last_event_at = max(self.last_event_at, event.timestamp)
        if self.sensor is None:
            self.sensor = event.sensor
        if event.eventid in LOGIN_EVENTS:
            self.login_attempts += 1
        elif event.eventid in COMMAND_EVENTS:
            self.commands += 1

    def record(self) -> SessionRecord:
        return SessionRecord(
            session_id=self.session_id,
            src_ip=self.src_ip,
            sensor=self.sensor,
            first_event_at=self.first_event_at,
            last_event_at=self.last_event_at,
            event_count=self.event_count,
            login_attempts=self.login_attempts,
            commands=self.commands,
        )


class _IPTally:
    __slots__ = ("events", "first_seen", "last_seen", "sessions")

    def __init__(self, seen: datetime) -> None:
        self.sessions = 0
        self.events = 0
        self.first_seen = seen
        self.last_seen = seen


class SessionAggregator:
    """Builds :class:`SessionRecord` summaries and per-IP aggregates from events.

    Feed events with :meth:`add`; after each batch, take the finished sessions
    with :meth:`pop_closed`; at the end, :meth:`drain` returns the rest.
    """

    def __init__(self, *, reopen_window: int = 10_000) -> None:
        self._open: dict[str, _OpenSession] = {}
        self._closed: list[SessionRecord] = []
        self._recent: OrderedDict[str, SessionRecord] = OrderedDict()
        self._reopen_window = reopen_window
        self._ips: dict[str, _IPTally] = {}
        self._sessions = 0
        self._events = 0
        self._reopened = 0
        self._conflicts = 0

    def add(self, event: CowrieEvent) -> None:
        """Count ``event`` in its session and its source IP."""
        self._events += 1
        state = self._open.get(event.session)
        if state is None:
            state = self._start(event)
        if event.src_ip != state.src_ip:
            self._conflict(state, event)
        state.absorb(event)
        tally = self._tally(event.src_ip, event.timestamp)
        tally.events += 1
        if event.timestamp < tally.first_seen:
            tally.first_seen = event.timestamp
        elif event.timestamp > tally.last_seen:
            tally.last_seen = event.timestamp
        if event.eventid == CLOSE_EVENT:
            self._close(state)

    def pop_closed(self) -> list[SessionRecord]:
        """Return the sessions closed since the last call and forget them."""
        closed, self._closed = self._closed, []
        return closed

    def drain(self) -> list[SessionRecord]:
        """Return every session not yet returned (closed or still open) and forget them."""
        records = self.pop_closed()
        records.extend(state.record() for state in self._open.values())
        self._open.clear()
        return records

    def ip_stats(self) -> dict[str, IPRunStats]:
        """Per-IP sessions, events and first/last seen of this run, as fresh snapshots."""
        return {
            ip: IPRunStats(ip, tally.sessions, tally.events, tally.first_seen, tally.last_seen)
            for ip, tally in self._ips.items()
        }

    def summary(self) -> AggregatorSummary:
        return AggregatorSummary(
            sessions=self._sessions,
            open_sessions=len(self._open),
            unique_ips=len(self._ips),
            events=self._events,
            reopened_sessions=self._reopened,
            src_ip_conflicts=self._conflicts,
        )

    def _start(self, event: CowrieEvent) -> _OpenSession:
        previous = self._recent.pop(event.session, None)
        if previous is not None:
            self._reopened += 1
            logger.debug("event after close reopens session %s", event.session)
            state = _OpenSession(previous)
        else:
            self._sessions += 1
            self._tally(event.src_ip, event.timestamp).sessions += 1
            state = _OpenSession(
                SessionRecord(
                    session_id=event.session,
                    src_ip=event.src_ip,
                    sensor=event.sensor,
                    first_event_at=event.timestamp,
                    last_event_at=event.timestamp,
                    event_count=0,
                    login_attempts=0,
                    commands=0,
                )
            )
        self._open[event.session] = state
        return state

    def _close(self, state: _OpenSession) -> None:
        del self._open[state.session_id]
        record = state.record()
        self._closed.append(record)
        self._recent[record.session_id] = record
        if len(self._recent) > self._reopen_window:
            self._recent.popitem(last=False)

    def _tally(self, ip: str, seen: datetime) -> _IPTally:
        tally = self._ips.get(ip)
        if tally is None:
            tally = self._ips[ip] = _IPTally(seen)
        return tally

    def _conflict(self, state: _OpenSession, event: CowrieEvent) -> None:
        self._conflicts += 1
        level = logging.WARNING if self._conflicts <= _LOGGED_CONFLICTS else logging.DEBUG
        logger.log(
            level,
            "session %s changed src_ip from %s to %s at %s:%s; keeping the first",
            state.session_id,
            state.src_ip,
            event.src_ip,
            event.source,
            event.line,
        )


def store_sessions(
    session: Session, records: Sequence[SessionRecord], *, chunk_size: int = STORE_CHUNK_SIZE
) -> int:
    """Upsert ``records`` into ``session_summaries``; return the number of sessions written.

    One ``INSERT ... ON CONFLICT (session_id) DO UPDATE`` per chunk of rows
    sorted by ``session_id`` (so concurrent writers take row locks in the same
    order). An existing row keeps its ``src_ip`` and its first non-empty
    ``sensor``; ``first_event_at`` becomes the earlier and ``last_event_at``
    the later of the two, and each count the larger, so writing the same
    records twice changes nothing. Records of one session in ``records`` are
    merged by the same rule first. The session is flushed, never committed.

    Raises:
        ValueError: the session is bound to a database other than SQLite or PostgreSQL.
    """
    rows = _merged_rows(records)
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"store_sessions supports SQLite and PostgreSQL, not {dialect!r}")
    size = max(1, min(chunk_size, _MAX_ROWS_PER_STATEMENT))
    for start in range(0, len(rows), size):
        session.execute(_upsert_statement(dialect, rows[start : start + size]))
    session.flush()
    return len(rows)


def _merged_rows(records: Sequence[SessionRecord]) -> list[dict[str, Any]]:
    merged: dict[str, SessionRecord] = {}
    for record in records:
        known = merged.get(record.session_id)
        merged[record.session_id] = record if known is None else _merge(known, record)
    return [_row(merged[key]) for key in sorted(merged)]


def _merge(old: SessionRecord, new: SessionRecord) -> SessionRecord:
    return replace(
        old,
        sensor=old.sensor if old.sensor is not None else new.sensor,
        first_event_at=min(old.first_event_at, new.first_event_at),
        last_event_at=max(old.last_event_at, new.last_event_at),
        event_count=max(old.event_count, new.event_count),
        login_attempts=max(old.login_attempts, new.login_attempts),
        commands=max(old.commands, new.commands),
    )


def _row(record: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": record.session_id,
        "src_ip": record.src_ip,
        "sensor": record.sensor,
        "first_event_at": record.first_event_at,
        "last_event_at": record.last_event_at,
        "event_count": record.event_count,
        "login_attempts": record.login_attempts,
        "commands": record.commands,
    }


def _upsert_statement(
    dialect: str, rows: list[dict[str, Any]]
) -> postgresql.Insert | sqlite.Insert:
    statement = (
        postgresql.insert(SessionSummary)
        if dialect == "postgresql"
        else sqlite.insert(SessionSummary)
    ).values(rows)
    new = statement.excluded
    old = SessionSummary
    return statement.on_conflict_do_update(
        index_elements=[old.session_id],
        set_={
            "sensor": func.coalesce(old.sensor, new.sensor),
            "first_event_at": case(
                (new.first_event_at < old.first_event_at, new.first_event_at),
                else_=old.first_event_at,
            ),
            "last_event_at": case(
                (new.last_event_at > old.last_event_at, new.last_event_at),
                else_=old.last_event_at,
            ),
            "event_count": case(
                (new.event_count > old.event_count, new.event_count), else_=old.event_count
            ),
            "login_attempts": case(
                (new.login_attempts > old.login_attempts, new.login_attempts),
                else_=old.login_attempts,
            ),
            "commands": case((new.commands > old.commands, new.commands), else_=old.commands),
        },
    )

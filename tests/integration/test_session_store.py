"""Session summaries upserted into SQLite and PostgreSQL: idempotent, merged, chunked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from cowrieprocessor.db import Database, SessionSummary
from cowrieprocessor.ingest import CowrieEvent, SessionAggregator, SessionRecord, store_sessions

T0 = datetime(2018, 5, 19, 12, 0, tzinfo=UTC)


def record(session_id: str, **changes: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "session_id": session_id,
        "src_ip": "192.0.2.10",
        "sensor": "sensor-a",
        "first_event_at": T0,
        "last_event_at": T0 + timedelta(seconds=30),
        "event_count": 5,
        "login_attempts": 2,
        "commands": 1,
    }
    values.update(changes)
    return SessionRecord(**values)


def table_rows(database: Database) -> list[tuple[Any, ...]]:
    with database.sessions() as session:
        rows = session.execute(select(SessionSummary.__table__).order_by("session_id")).all()
        return [tuple(row) for row in rows]


@contextmanager
def captured_inserts(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """Record every INSERT into session_summaries that reaches the database."""
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO SESSION_SUMMARIES"):
            seen.append((statement, params))

    event.listen(database.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", before)


def test_storing_the_same_records_twice_changes_nothing(database: Database) -> None:
    records = [
        record(f"s{n:04d}", event_count=n + 1, sensor=None if n % 3 else "x") for n in range(50)
    ]
    with database.sessions() as session:
        assert store_sessions(session, records) == 50
        session.commit()
    first = table_rows(database)
    with database.sessions() as session:
        assert store_sessions(session, list(reversed(records))) == 50
        session.commit()
    assert table_rows(database) == first
    assert len(first) == 50
    assert first[0] == ("s0000", "192.0.2.10", "x", T0, T0 + timedelta(seconds=30), 1, 2, 1)


def test_merge_keeps_earliest_latest_and_largest(database: Database) -> None:
    stored = record("a1", sensor=None, event_count=10, login_attempts=1, commands=4)
    later = record(
        "a1",
        src_ip="198.51.100.7",
        sensor="sensor-b",
        first_event_at=T0 - timedelta(hours=1),
        last_event_at=T0 + timedelta(seconds=10),
        event_count=3,
        login_attempts=6,
        commands=0,
    )
    with database.sessions() as session:
        store_sessions(session, [stored])
        session.commit()
    with database.sessions() as session:
        store_sessions(session, [later])
        session.commit()
        row = session.get(SessionSummary, "a1")
        assert row is not None
        assert (row.src_ip, row.sensor) == ("192.0.2.10", "sensor-b")
        assert row.first_event_at == T0 - timedelta(hours=1)
        assert row.last_event_at == T0 + timedelta(seconds=30)
        assert (row.event_count, row.login_attempts, row.commands) == (10, 6, 4)


def test_records_of_one_session_in_one_call_are_merged(database: Database) -> None:
    # PostgreSQL refuses to update one row twice in one statement; the merge avoids it.
    parts = [
        record("dup", sensor=None, event_count=3, last_event_at=T0 + timedelta(minutes=5)),
        record("dup", sensor="late", event_count=7, first_event_at=T0 - timedelta(minutes=1)),
    ]
    with database.sessions() as session:
        assert store_sessions(session, parts) == 1
        session.commit()
    assert table_rows(database) == [
        (
            "dup",
            "192.0.2.10",
            "late",
            T0 - timedelta(minutes=1),
            T0 + timedelta(minutes=5),
            7,
            2,
            1,
        )
    ]


def test_large_inputs_are_chunked_in_sorted_order(database: Database) -> None:
    records = [record(f"c{n:05d}", event_count=n) for n in reversed(range(2500))]
    with captured_inserts(database) as inserts, database.sessions() as session:
        assert store_sessions(session, records) == 2500
        session.commit()
    assert len(inserts) == 3  # 1000 + 1000 + 500 rows, one statement each
    ids = [value for _, params in inserts for value in _values(params) if _is_id(value)]
    assert ids == sorted(f"c{n:05d}" for n in range(2500))
    with database.sessions() as session:
        count = session.scalar(select(func.count()).select_from(SessionSummary))
        total = session.scalar(select(func.sum(SessionSummary.event_count)))
    assert (count, total) == (2500, sum(range(2500)))


def test_oversized_chunk_stays_within_the_parameter_limit(database: Database) -> None:
    records = [record(f"d{n:05d}") for n in range(5000)]
    with captured_inserts(database) as inserts, database.sessions() as session:
        assert store_sessions(session, records, chunk_size=100_000) == 5000
        session.commit()
    assert len(inserts) == 2
    assert len(table_rows(database)) == 5000


def test_the_callers_transaction_is_not_committed(database: Database) -> None:
    with database.sessions() as session:
        store_sessions(session, [record("t1"), record("t2")])
        assert session.in_transaction()
        inside = session.scalar(select(func.count()).select_from(SessionSummary))
        with database.sessions() as other:
            outside = other.scalar(select(func.count()).select_from(SessionSummary))
        session.rollback()
    assert (inside, outside) == (2, 0)
    assert table_rows(database) == []


def test_empty_input_writes_nothing(database: Database) -> None:
    with captured_inserts(database) as inserts, database.sessions() as session:
        assert store_sessions(session, []) == 0
    assert inserts == []


def test_session_reopened_after_close_is_stored_complete(database: Database) -> None:
    aggregator = SessionAggregator()

    def add(eventid: str, second: int) -> None:
        aggregator.add(
            CowrieEvent(
                source="cowrie.json",
                line=second,
                eventid=eventid,
                session="r1",
                src_ip="192.0.2.10",
                timestamp=T0 + timedelta(seconds=second),
            )
        )
        with database.sessions() as session:
            store_sessions(session, aggregator.pop_closed())
            session.commit()

    for eventid, second in [
        ("cowrie.session.connect", 0),
        ("cowrie.login.failed", 1),
        ("cowrie.session.closed", 2),
        ("cowrie.log.closed", 3),  # arrives after the close
    ]:
        add(eventid, second)
    with database.sessions() as session:
        store_sessions(session, aggregator.drain())
        session.commit()
    assert table_rows(database) == [
        ("r1", "192.0.2.10", None, T0, T0 + timedelta(seconds=3), 4, 1, 0)
    ]


def _values(params: Any) -> list[Any]:
    return list(params.values()) if isinstance(params, dict) else list(params)


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("c") and len(value) == 6


def cowrie_event(session: str, eventid: str, second: int, ip: str = "192.0.2.10") -> CowrieEvent:
    return CowrieEvent(
        source="cowrie.json",
        line=second + 1,
        eventid=eventid,
        session=session,
        src_ip=ip,
        timestamp=T0 + timedelta(seconds=second),
        sensor="sensor-a",
    )


def test_aggregator_counts_releases_closed_sessions_and_drains_the_rest() -> None:
    aggregator = SessionAggregator()
    for item in [
        cowrie_event("s1", "cowrie.session.connect", 0),
        cowrie_event("s2", "cowrie.session.connect", 1, ip="198.51.100.7"),
        cowrie_event("s1", "cowrie.login.failed", 2),
        cowrie_event("s1", "cowrie.login.success", 3),
        cowrie_event("s1", "cowrie.command.input", 4),
        cowrie_event("s1", "cowrie.command.failed", 5),  # not counted: follows its input
        cowrie_event("s1", "cowrie.session.closed", 6),
    ]:
        aggregator.add(item)
    assert aggregator.summary().open_sessions == 1
    assert aggregator.pop_closed() == [
        SessionRecord("s1", "192.0.2.10", "sensor-a", T0, T0 + timedelta(seconds=6), 6, 2, 1)
    ]
    assert aggregator.pop_closed() == []
    aggregator.add(cowrie_event("s2", "cowrie.login.failed", 9, ip="203.0.113.5"))
    assert aggregator.drain() == [
        SessionRecord(
            "s2",
            "198.51.100.7",
            "sensor-a",
            T0 + timedelta(seconds=1),
            T0 + timedelta(seconds=9),
            2,
            1,
            0,
        )
    ]
    assert aggregator.drain() == []
    summary = aggregator.summary()
    assert (summary.sessions, summary.open_sessions, summary.events) == (2, 0, 8)
    assert (summary.src_ip_conflicts, summary.reopened_sessions, summary.unique_ips) == (1, 0, 3)
    stats = aggregator.ip_stats()
    assert stats["192.0.2.10"].sessions == 1
    assert stats["192.0.2.10"].events == 6
    assert (stats["198.51.100.7"].sessions, stats["198.51.100.7"].events) == (1, 1)
    assert (stats["203.0.113.5"].sessions, stats["203.0.113.5"].events) == (0, 1)
    assert stats["192.0.2.10"].first_seen == T0
    assert stats["192.0.2.10"].last_seen == T0 + timedelta(seconds=6)


def test_aggregator_orders_out_of_order_timestamps() -> None:
    aggregator = SessionAggregator()
    for second in (5, 1, 9, 3):
        aggregator.add(cowrie_event("s1", "cowrie.client.version", second))
    (only,) = aggregator.drain()
    assert (only.first_event_at, only.last_event_at) == (
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=9),
    )
    stats = aggregator.ip_stats()["192.0.2.10"]
    assert (stats.first_seen, stats.last_seen) == (only.first_event_at, only.last_event_at)


def test_reopen_window_is_bounded() -> None:
    aggregator = SessionAggregator(reopen_window=2)
    for n in range(3):
        aggregator.add(cowrie_event(f"w{n}", "cowrie.session.closed", n))
    aggregator.pop_closed()
    aggregator.add(cowrie_event("w0", "cowrie.log.closed", 10))  # forgotten: starts afresh
    aggregator.add(cowrie_event("w2", "cowrie.log.closed", 11))  # remembered: reopened
    by_id = {r.session_id: r for r in aggregator.drain()}
    assert (by_id["w0"].event_count, by_id["w2"].event_count) == (1, 2)
    summary = aggregator.summary()
    assert (summary.sessions, summary.reopened_sessions) == (4, 1)

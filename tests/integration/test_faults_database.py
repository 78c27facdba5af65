"""PostgreSQL drops the enricher's connection: the caller hears it, nothing is half-written.

The server ends the enricher's backend (``pg_terminate_backend`` from a separate
admin connection, as a restart or a failover would) at three moments: while a
batch is being looked up (before its writes), just before the caller commits a
batch, and between two committed batches. Committed batches must stay exactly
as they were, the failed batch must leave no trace, the ASN counts must have no
drift, and running the same input again must finish the job exactly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cowrieprocessor.db import (
    ASNInventory,
    Base,
    Database,
    IPASNHistory,
    IPInventory,
    SessionSummary,
    open_database,
)
from cowrieprocessor.enrichment.asn_inventory import rebuild_asn_counts
from cowrieprocessor.enrichment.cascade_enricher import BatchReport, CascadeEnricher, IPOutcome
from cowrieprocessor.enrichment.maxmind_client import MaxMindResult
from tests.support.fakes import NOW, FakeMaxMind, maxmind_result

pytestmark = pytest.mark.postgres

BATCH = 50
IP_COUNT = 260  # six batches, the last one short
ASN_COUNT = 17
IPS = [str(ipaddress.IPv4Address(0x0B000000 + n * 13)) for n in range(IP_COUNT)]


def asn_of(ip: str) -> int:
    return 64_512 + int(ipaddress.ip_address(ip)) % ASN_COUNT


def answers() -> dict[str, MaxMindResult]:
    return {ip: maxmind_result(ip, asn_of(ip), org=f"NET-{asn_of(ip)}") for ip in IPS}


@dataclass
class Killer:
    """Ends one PostgreSQL backend through its own admin connection."""

    admin: Engine
    victim: int | None = None
    killed: list[int] = field(default_factory=list)

    def kill(self) -> None:
        assert self.victim is not None, "the enricher's backend pid was not recorded"
        with self.admin.connect() as conn:
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": self.victim})
            assert ended.scalar_one() is True
        self.killed.append(self.victim)


@pytest.fixture
def database(pg_url: str) -> Iterator[Database]:
    db = open_database(pg_url)
    Base.metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def killer(pg_url: str) -> Iterator[Killer]:
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        yield Killer(admin)
    finally:
        admin.dispose()


def backend_pid(session: Session) -> int:
    return int(session.connection().exec_driver_sql("select pg_backend_pid()").scalar_one())


def add_sessions(database: Database) -> int:
    """Cowrie sessions for every third IP (one to three each); returns how many."""
    count = 0
    with database.sessions() as session:
        for n, ip in enumerate(IPS[::3]):
            for k in range(1 + n % 3):
                session.add(
                    SessionSummary(
                        session_id=f"s{n:04d}{k}",
                        src_ip=ip,
                        first_event_at=NOW - timedelta(minutes=k),
                        last_event_at=NOW,
                        event_count=2,
                    )
                )
                count += 1
        session.commit()
    return count


def stored_ips(database: Database) -> set[str]:
    with database.sessions() as session:
        return set(session.scalars(select(IPInventory.ip_address)))


def assert_exact(database: Database, ips: set[str], sessions: bool) -> None:
    """The inventory holds exactly ``ips`` and counts that a rebuild agrees with."""
    with database.sessions() as session:
        assert set(session.scalars(select(IPInventory.ip_address))) == ips
        assert set(session.scalars(select(ASNInventory.asn_number))) == {asn_of(ip) for ip in ips}
        assert session.scalar(select(func.count()).select_from(IPASNHistory)) == 0
        assert rebuild_asn_counts(session, apply=False) == []
        total_ips = session.scalar(select(func.sum(ASNInventory.unique_ip_count)))
        assert total_ips == len(ips)
        counted = session.scalar(
            select(func.coalesce(func.sum(ASNInventory.total_session_count), 0))
        )
        expected = session.execute(
            select(func.count()).select_from(SessionSummary).where(SessionSummary.src_ip.in_(ips))
        ).scalar_one()
        assert counted == expected
        assert (expected > 0) is (sessions and bool(ips))


def rerun(database: Database, before: set[str]) -> None:
    """The same input on a fresh session: the rest is enriched, what was kept is a cache hit."""
    maxmind = FakeMaxMind(answers())
    with database.sessions() as session:
        enricher = CascadeEnricher(maxmind, None, None, session)
        report = enricher.enrich_ips(IPS, batch_size=BATCH, on_batch=lambda _r: session.commit())
    assert report.count(IPOutcome.CACHE_HIT) == len(before)
    assert report.count(IPOutcome.ENRICHED) == len(IPS) - len(before)
    assert set(maxmind.calls) == set(IPS) - before
    assert enricher.get_stats().errors == 0


@pytest.mark.parametrize("sessions", [False, True], ids=["no-sessions", "with-sessions"])
def test_connection_killed_in_the_middle_of_a_batch(
    database: Database, killer: Killer, sessions: bool
) -> None:
    if sessions:
        add_sessions(database)
    target = IPS[3 * BATCH + 10]  # the 11th IP of the 4th batch

    def lookup_hook(ip: str) -> None:
        if ip == target:
            killer.kill()

    maxmind = FakeMaxMind(answers(), fail=lookup_hook)
    committed: list[str] = []
    with database.sessions() as session:
        killer.victim = backend_pid(session)
        enricher = CascadeEnricher(maxmind, None, None, session)

        def commit(report: BatchReport) -> None:
            session.commit()
            committed.extend(report.outcomes)

        with pytest.raises(OperationalError) as caught:
            enricher.enrich_ips(IPS, batch_size=BATCH, on_batch=commit)
        assert caught.value.connection_invalidated
        session.rollback()
        # The session works again on a fresh connection.
        assert backend_pid(session) != killer.victim
        session.rollback()

    assert killer.killed == [killer.victim]
    assert len(committed) == 3 * BATCH
    assert maxmind.calls[-1] == IPS[4 * BATCH - 1]  # the batch finished its lookups first
    assert_exact(database, set(committed), sessions)
    rerun(database, set(committed))
    assert_exact(database, set(IPS), sessions)


@pytest.mark.parametrize("sessions", [False, True], ids=["no-sessions", "with-sessions"])
def test_connection_killed_before_the_callers_commit(
    database: Database, killer: Killer, sessions: bool
) -> None:
    if sessions:
        add_sessions(database)
    committed: list[str] = []
    with database.sessions() as session:
        enricher = CascadeEnricher(FakeMaxMind(answers()), None, None, session)

        def commit(report: BatchReport) -> None:
            if report.index == 2:
                killer.victim = backend_pid(session)
                killer.kill()
            session.commit()
            committed.extend(report.outcomes)

        with pytest.raises(OperationalError) as caught:
            enricher.enrich_ips(IPS, batch_size=BATCH, on_batch=commit)
        assert caught.value.connection_invalidated
        session.rollback()

    assert len(committed) == 2 * BATCH
    assert_exact(database, set(committed), sessions)
    rerun(database, set(committed))
    assert_exact(database, set(IPS), sessions)


def test_connection_killed_between_batches_is_replaced(database: Database, killer: Killer) -> None:
    add_sessions(database)
    pids: list[int] = []
    with database.sessions() as session:
        enricher = CascadeEnricher(FakeMaxMind(answers()), None, None, session)

        def commit(report: BatchReport) -> None:
            pids.append(backend_pid(session))
            session.commit()
            if report.index == 2:
                killer.victim = pids[-1]
                killer.kill()

        report = enricher.enrich_ips(IPS, batch_size=BATCH, on_batch=commit)

    # The pool's pre-ping noticed the dead connection and opened a new one.
    assert pids[3] != pids[2] == killer.killed[0]
    assert report.count(IPOutcome.ENRICHED) == len(IPS)
    assert enricher.get_stats().errors == 0
    assert stored_ips(database) == set(IPS)
    assert_exact(database, set(IPS), True)

"""Many worker processes enrich overlapping IPs into one PostgreSQL at once.

Every worker commits after each batch, as the command line does. The checks:
no exception, no error, no deadlock, every IP stored with its enrichment,
one row per distinct ASN, created/updated classified exactly across workers,
and counts that a rebuild finds without drift.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from cowrieprocessor.db import ASNInventory, Base, IPInventory, SessionSummary, open_database
from cowrieprocessor.enrichment.asn_inventory import rebuild_asn_counts
from cowrieprocessor.enrichment.cascade_enricher import BatchReport, CascadeEnricher
from cowrieprocessor.enrichment.maxmind_client import MaxMindResult

pytestmark = [pytest.mark.postgres, pytest.mark.stress]

BUILD = datetime(2026, 1, 1, tzinfo=UTC)


def asn_of(ip: str, asn_count: int) -> int:
    return 4_200_000_000 + int(ipaddress.ip_address(ip)) % asn_count


class ModuloMaxMind:
    """A deterministic offline source: every IP has an ASN picked by its number."""

    def __init__(self, asn_count: int) -> None:
        self.asn_count = asn_count

    def lookup_ip(self, ip: str) -> MaxMindResult:
        asn = asn_of(ip, self.asn_count)
        return MaxMindResult(
            ip_address=ip,
            country_code="NL",
            country_name="Netherlands",
            city=None,
            latitude=None,
            longitude=None,
            asn=asn,
            asn_org=f"STRESS-AS{asn}",
            accuracy_radius=None,
            database_build=BUILD,
            fetched_at=datetime.now(UTC),
        )

    def database_build_time(self) -> datetime:
        return BUILD


@dataclass(frozen=True)
class WorkerResult:
    created: int
    updated: int
    errors: int
    total: int
    operations: int
    seconds: float


def _worker(url: str, ips: list[str], asn_count: int, batch: int) -> WorkerResult:
    db = open_database(url, pool_size=1)
    started = time.perf_counter()
    with db.sessions() as session:
        enricher = CascadeEnricher(ModuloMaxMind(asn_count), None, None, session)

        def commit(_report: BatchReport) -> None:
            session.commit()

        enricher.enrich_ips(ips, batch_size=batch, on_batch=commit)
        stats = enricher.get_stats()
    db.dispose()
    operations = sum(
        len({asn_of(ip, asn_count) for ip in ips[start : start + batch]})
        for start in range(0, len(ips), batch)
    )
    return WorkerResult(
        stats.asn_records_created,
        stats.asn_records_updated,
        stats.errors,
        stats.total_ips,
        operations,
        time.perf_counter() - started,
    )


@pytest.mark.parametrize(
    ("workers", "per_worker", "pool", "asn_count"),
    [
        pytest.param(4, 2_500, 3_000, 300, id="4x2500"),
        pytest.param(8, 20_000, 24_000, 2_000, id="8x20000", marks=pytest.mark.slow),
    ],
)
def test_workers_agree_on_an_exact_inventory(
    pg_url: str, workers: int, per_worker: int, pool: int, asn_count: int
) -> None:
    db = open_database(pg_url)
    Base.metadata.create_all(db.engine)
    rng = random.Random(1234)
    universe = [str(ipaddress.IPv4Address(0x0B000000 + n * 7)) for n in range(pool)]
    now = datetime.now(UTC)
    with db.sessions() as session:  # some IPs have Cowrie sessions, so session counts matter
        session.add_all(
            SessionSummary(
                session_id=f"s{n:06d}",
                src_ip=universe[n % (pool // 3)],
                first_event_at=now - timedelta(minutes=n % 60),
                last_event_at=now,
                event_count=4,
            )
            for n in range(pool)
        )
        session.commit()
    plans = [rng.sample(universe, per_worker) for _ in range(workers)]

    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(workers) as processes:
        results = processes.starmap(_worker, [(pg_url, ips, asn_count, 100) for ips in plans])
    elapsed = time.perf_counter() - started

    seen_ips = {ip for plan in plans for ip in plan}
    distinct_asns = {asn_of(ip, asn_count) for ip in seen_ips}
    assert sum(r.errors for r in results) == 0
    assert sum(r.total for r in results) == workers * per_worker
    assert sum(r.created for r in results) == len(distinct_asns)
    assert sum(r.created + r.updated for r in results) == sum(r.operations for r in results)
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ASNInventory)) == len(distinct_asns)
        stored = session.execute(select(IPInventory.ip_address, IPInventory.enrichment)).all()
        assert {ip for ip, _ in stored} == seen_ips
        assert all(
            enrichment["maxmind"]["asn"] == asn_of(ip, asn_count) for ip, enrichment in stored
        )
        assert rebuild_asn_counts(session, apply=False) == []
        sessions_counted = session.scalar(select(func.sum(ASNInventory.total_session_count)))
        sessions_expected = session.scalar(
            select(func.count())
            .select_from(SessionSummary)
            .where(SessionSummary.src_ip.in_(seen_ips))
        )
        assert sessions_counted == sessions_expected
    db.dispose()
    rate = workers * per_worker / elapsed
    print(f"\n{workers} workers x {per_worker} IPs: {elapsed:.1f} s, {rate:,.0f} IP enrichments/s")

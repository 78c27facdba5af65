"""The reader and the session summaries on three real Cowrie logs (see data/cowrie/README.md)."""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cowrieprocessor.db import Database, SessionSummary
from cowrieprocessor.ingest import (
    CowrieEvent,
    IngestCounters,
    IngestSummary,
    IPRunStats,
    SessionAggregator,
    SessionRecord,
    expand_inputs,
    read_events,
    store_sessions,
)

pytestmark = pytest.mark.shared_data

LOG_NAMES = ["cowrie.json.2018-05-06", "cowrie.json.2018-05-19", "cowrie.json.2018-06-12"]


@dataclass(frozen=True)
class Run:
    ingest: IngestSummary
    records: list[SessionRecord]
    ips: dict[str, IPRunStats]
    eventids: Counter[str]


def run(specs: list[str]) -> Run:
    """Read like the CLI does: stream, pop closed sessions as they finish, drain at the end."""
    counters = IngestCounters()
    aggregator = SessionAggregator()
    records: list[SessionRecord] = []
    eventids: Counter[str] = Counter()
    for item in read_events(expand_inputs(specs), counters=counters):
        assert isinstance(item, CowrieEvent), str(item)
        aggregator.add(item)
        eventids[item.eventid] += 1
        records.extend(aggregator.pop_closed())
    records.extend(aggregator.drain())
    return Run(counters.snapshot(), records, aggregator.ip_stats(), eventids)


@pytest.fixture
def cowrie_dir(shared_data: Path) -> Path:
    return shared_data / "cowrie"


@pytest.fixture
def gzipped_dir(cowrie_dir: Path, tmp_path: Path) -> Path:
    for name in LOG_NAMES:
        with (
            (cowrie_dir / name).open("rb") as plain,
            gzip.open(tmp_path / f"{name}.gz", "wb") as packed,
        ):
            shutil.copyfileobj(plain, packed)
    return tmp_path


def assert_readme_totals(result: Run) -> None:
    assert result.ingest.events == 3998
    assert result.ingest.lines == 3998
    assert result.ingest.problems == 0
    assert result.ingest.sources == 3
    assert len(result.records) == 927
    assert len({r.session_id for r in result.records}) == 927
    assert len(result.ips) == 109
    assert sum(stats.events for stats in result.ips.values()) == 3998
    assert sum(stats.sessions for stats in result.ips.values()) == 927
    busiest = sorted(result.ips.values(), key=lambda s: s.events, reverse=True)[:3]
    assert [(s.ip, s.events) for s in busiest] == [
        ("185.222.209.108", 496),
        ("146.0.77.159", 288),
        ("195.3.147.49", 256),
    ]
    assert result.eventids["cowrie.login.failed"] == 555
    assert result.eventids["cowrie.session.connect"] == 927
    assert sum(r.event_count for r in result.records) == 3998
    assert sum(r.login_attempts for r in result.records) == 555 + 77
    assert sum(r.commands for r in result.records) == 49


def test_plain_logs_match_the_readme(cowrie_dir: Path) -> None:
    result = run([str(cowrie_dir)])
    assert_readme_totals(result)
    first = result.ips["88.223.26.58"]
    assert first.first_seen.isoformat() == "2018-05-06T17:44:05.866769+00:00"


def test_each_file_alone_matches_the_readme(cowrie_dir: Path) -> None:
    expected = {
        LOG_NAMES[0]: (211, 19, 64),
        LOG_NAMES[1]: (2004, 58, 455),
        LOG_NAMES[2]: (1783, 67, 408),
    }
    for name, (events, ips, sessions) in expected.items():
        result = run([str(cowrie_dir / name)])
        assert (result.ingest.events, len(result.ips), len(result.records)) == (
            events,
            ips,
            sessions,
        )


def test_gzipped_logs_give_the_same_totals(gzipped_dir: Path, cowrie_dir: Path) -> None:
    packed = run([str(gzipped_dir / "cowrie.json.*.gz")])
    assert_readme_totals(packed)
    plain = run([str(cowrie_dir / "cowrie.json.*")])
    assert packed.records == plain.records  # same summaries, in the same order
    assert packed.ips == plain.ips


def test_real_sessions_stored_twice_are_unchanged(cowrie_dir: Path, database: Database) -> None:
    records = run([str(cowrie_dir)]).records
    for _ in range(2):
        with database.sessions() as session:
            assert store_sessions(session, records) == 927
            session.commit()
    with database.sessions() as session:
        count, events, logins, commands = session.execute(
            select(
                func.count(),
                func.sum(SessionSummary.event_count),
                func.sum(SessionSummary.login_attempts),
                func.sum(SessionSummary.commands),
            )
        ).one()
        distinct_ips = session.scalar(select(func.count(func.distinct(SessionSummary.src_ip))))
    assert (count, events, logins, commands, distinct_ips) == (927, 3998, 632, 49, 109)

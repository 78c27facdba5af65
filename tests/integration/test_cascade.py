"""The cascade on SQLite and PostgreSQL: order, freshness, counts, failures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cowrieprocessor.db import (
    ASNInventory,
    Base,
    Database,
    IPASNHistory,
    IPInventory,
    SessionSummary,
)
from cowrieprocessor.enrichment.asn_inventory import rebuild_asn_counts
from cowrieprocessor.enrichment.cascade_enricher import CascadeEnricher, IPOutcome
from cowrieprocessor.enrichment.errors import (
    InvalidIPError,
    QuotaExceededError,
    SourceUnavailableError,
)
from tests.support.fakes import (
    Clock,
    FakeCymru,
    FakeGreyNoise,
    FakeMaxMind,
    cymru_result,
    greynoise_result,
    maxmind_result,
)

BOGONS = ["10.0.0.1", "127.0.0.1", "192.0.2.1", "224.0.0.5", "::1", "2001:db8::1", "169.254.1.1"]


@dataclass
class Rig:
    session: Session
    clock: Clock
    maxmind: FakeMaxMind
    cymru: FakeCymru
    greynoise: FakeGreyNoise
    enricher: CascadeEnricher

    def asn(self, number: int) -> ASNInventory:
        row = self.session.get(ASNInventory, number, populate_existing=True)
        assert row is not None
        return row

    def ip(self, address: str) -> IPInventory:
        row = self.session.get(IPInventory, address, populate_existing=True)
        assert row is not None
        return row


@pytest.fixture
def rig(database: Database) -> Iterator[Rig]:
    clock = Clock()
    maxmind = FakeMaxMind(
        {
            "8.8.8.8": maxmind_result("8.8.8.8", 15169, org="GOOGLE", city="Mountain View"),
            "8.8.4.4": maxmind_result("8.8.4.4", 15169, org="GOOGLE"),
            "1.1.1.1": maxmind_result("1.1.1.1", None, country="AU"),
        },
        clock=clock,
    )
    cymru = FakeCymru(
        {
            "1.1.1.1": cymru_result("1.1.1.1", 13335, org="CLOUDFLARENET, US"),
            "9.9.9.9": cymru_result("9.9.9.9", 19281, org="QUAD9-AS-1, US", rir="ARIN"),
        },
        clock=clock,
    )
    greynoise = FakeGreyNoise({"8.8.8.8": greynoise_result("8.8.8.8")}, clock=clock)
    with database.sessions() as session:
        enricher = CascadeEnricher(maxmind, cymru, greynoise, session, clock=clock)
        yield Rig(session, clock, maxmind, cymru, greynoise, enricher)
        session.rollback()
        assert rebuild_asn_counts(session, apply=False) == []


def test_cascade_order_and_early_termination(rig: Rig) -> None:
    report = rig.enricher.enrich_ips(["8.8.8.8", "1.1.1.1", "9.9.9.9"])

    assert report.count(IPOutcome.ENRICHED) == 3
    assert rig.maxmind.calls == ["8.8.8.8", "1.1.1.1", "9.9.9.9"]
    # MaxMind gave 8.8.8.8 an ASN: Cymru is asked only for the other two, in one bulk call.
    assert rig.cymru.bulk_calls == [["1.1.1.1", "9.9.9.9"]]
    assert rig.cymru.single_calls == []
    assert rig.greynoise.calls == ["8.8.8.8", "1.1.1.1", "9.9.9.9"]
    google, cloudflare = rig.ip("8.8.8.8"), rig.ip("1.1.1.1")
    assert google.current_asn == 15169
    assert google.city == "Mountain View"
    assert google.is_scanner
    assert cloudflare.current_asn == 13335
    assert cloudflare.geo_country == "AU"  # geo from MaxMind even when the ASN is Cymru's
    assert cloudflare.asn_org == "CLOUDFLARENET, US"
    assert rig.asn(13335).rir_registry == "ARIN"
    stats = rig.enricher.get_stats()
    assert (stats.maxmind_hits, stats.cymru_hits, stats.greynoise_hits) == (2, 2, 1)
    assert stats.asn_records_created == 3
    assert stats.asn_unique_seen == {15169, 13335, 19281}


def test_single_ip_uses_the_dns_path(rig: Rig) -> None:
    row = rig.enricher.enrich_ip("9.9.9.9")
    assert row.current_asn == 19281
    assert rig.cymru.single_calls == ["9.9.9.9"]
    assert rig.cymru.bulk_calls == []


def test_bogons_never_reach_a_source(rig: Rig) -> None:
    report = rig.enricher.enrich_ips([*BOGONS, "8.8.8.8"])

    asked = set(rig.maxmind.calls) | set(rig.greynoise.calls)
    asked |= {ip for call in rig.cymru.bulk_calls for ip in call} | set(rig.cymru.single_calls)
    assert asked == {"8.8.8.8"}
    assert all(report.outcomes[ip] is IPOutcome.SKIPPED for ip in BOGONS)
    assert rig.ip("10.0.0.1").enrichment == {}


def test_ipv4_mapped_ipv6_is_stored_as_ipv4(rig: Rig) -> None:
    report = rig.enricher.enrich_ips(["::ffff:8.8.8.8", "8.8.8.8"])
    assert list(report.outcomes) == ["8.8.8.8"]
    assert rig.maxmind.calls == ["8.8.8.8"]


def test_invalid_ip_is_reported_and_nothing_stored(rig: Rig) -> None:
    report = rig.enricher.enrich_ips(["not-an-ip", "8.8.8.8", "300.1.1.1"])
    assert report.outcomes["not-an-ip"] is IPOutcome.INVALID
    assert report.outcomes["300.1.1.1"] is IPOutcome.INVALID
    assert "not an IP address" in report.causes["not-an-ip"]
    assert rig.enricher.get_stats().errors == 2
    assert rig.session.scalar(select(func.count()).select_from(IPInventory)) == 1
    with pytest.raises(InvalidIPError):
        rig.enricher.enrich_ip("fe80::1%eth0")


def test_each_source_keeps_its_own_clock(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])
    first = rig.ip("1.1.1.1").enrichment
    rig.clock.advance(days=8)  # past GreyNoise's 7 days, within MaxMind's 30 and Cymru's 90

    report = rig.enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])

    assert report.count(IPOutcome.ENRICHED) == 2
    assert rig.maxmind.calls == ["8.8.8.8", "1.1.1.1"]  # not asked again
    assert rig.cymru.bulk_calls == []
    assert rig.cymru.single_calls == ["1.1.1.1"]
    assert rig.greynoise.calls == ["8.8.8.8", "1.1.1.1"] * 2
    after = rig.ip("1.1.1.1").enrichment
    assert after["cymru"]["fetched_at"] == first["cymru"]["fetched_at"]
    assert after["maxmind"]["fetched_at"] == first["maxmind"]["fetched_at"]
    assert after["greynoise"]["fetched_at"] > first["greynoise"]["fetched_at"]

    rig.clock.advance(hours=1)
    again = rig.enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])
    assert again.count(IPOutcome.CACHE_HIT) == 2
    assert rig.enricher.get_stats().cache_hits == 2


def test_new_maxmind_build_makes_maxmind_data_stale(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8"])
    rig.clock.advance(minutes=5)
    assert rig.enricher.enrich_ips(["8.8.8.8"]).outcomes["8.8.8.8"] is IPOutcome.CACHE_HIT

    rig.maxmind.build = rig.clock.now  # geoipupdate installed a newer database
    rig.enricher.enrich_ips(["8.8.8.8"])

    assert rig.maxmind.calls == ["8.8.8.8", "8.8.8.8"]
    assert rig.greynoise.calls == ["8.8.8.8"]


def test_metadata_is_filled_in_never_overwritten(rig: Rig) -> None:
    enricher = rig.enricher
    row = enricher._ensure_asn_inventory(64500, None, None, None)
    assert (row.organization_name, row.organization_country, row.rir_registry) == (None,) * 3
    created_at, first_seen = row.created_at, row.first_seen
    rig.clock.advance(minutes=1)

    row = enricher._ensure_asn_inventory(64500, "EXAMPLE-NET", "de", "ripencc")
    assert (row.organization_name, row.organization_country, row.rir_registry) == (
        "EXAMPLE-NET",
        "DE",
        "RIPE",
    )
    rig.clock.advance(minutes=1)
    row = enricher._ensure_asn_inventory(64500, "OTHER NAME", "FR", "ARIN")
    assert (row.organization_name, row.organization_country, row.rir_registry) == (
        "EXAMPLE-NET",
        "DE",
        "RIPE",
    )
    assert row.created_at == created_at
    assert row.first_seen == first_seen
    assert row.last_seen == rig.clock.now
    assert row.updated_at == rig.clock.now
    stats = enricher.get_stats()
    assert (stats.asn_records_created, stats.asn_records_updated) == (1, 2)


def _add_sessions(session: Session, ip: str, count: int, clock: Clock, prefix: str) -> None:
    for n in range(count):
        session.add(
            SessionSummary(
                session_id=f"{prefix}{n:04d}",
                src_ip=ip,
                first_event_at=clock.now,
                last_event_at=clock.now + timedelta(seconds=5),
                event_count=3,
            )
        )
    session.flush()


def test_counts_follow_sessions_and_ip_moves(rig: Rig) -> None:
    _add_sessions(rig.session, "8.8.8.8", 3, rig.clock, "a")
    _add_sessions(rig.session, "8.8.4.4", 2, rig.clock, "b")
    rig.enricher.enrich_ips(["8.8.8.8", "8.8.4.4"])
    google = rig.asn(15169)
    assert (google.unique_ip_count, google.total_session_count) == (2, 5)
    assert rig.ip("8.8.8.8").session_count == 3

    # Same input again: no count changes.
    rig.enricher.enrich_ips(["8.8.8.8", "8.8.4.4"])
    assert (rig.asn(15169).unique_ip_count, rig.asn(15169).total_session_count) == (2, 5)

    # A new session for 8.8.8.8, then its prefix moves to another ASN.
    _add_sessions(rig.session, "8.8.8.8", 1, rig.clock, "c")
    rig.enricher.enrich_ips(["8.8.8.8"])
    assert rig.asn(15169).total_session_count == 6
    rig.clock.advance(days=31)
    rig.maxmind.answers = {"8.8.8.8": maxmind_result("8.8.8.8", 64501, org="MOVED")}
    rig.enricher.enrich_ips(["8.8.8.8"])

    moved, google = rig.asn(64501), rig.asn(15169)
    assert (moved.unique_ip_count, moved.total_session_count) == (1, 4)
    assert (google.unique_ip_count, google.total_session_count) == (1, 2)
    history = rig.session.scalars(select(IPASNHistory)).all()
    assert [(h.ip_address, h.previous_asn, h.new_asn) for h in history] == [
        ("8.8.8.8", 15169, 64501)
    ]
    assert rebuild_asn_counts(rig.session, apply=False) == []


def test_a_missing_answer_never_drops_a_known_asn(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8"])
    rig.clock.advance(days=31)
    rig.maxmind.answers = {}
    rig.enricher.enrich_ips(["8.8.8.8"])
    assert rig.ip("8.8.8.8").current_asn == 15169
    assert rig.asn(15169).unique_ip_count == 1


def test_enrich_ip_and_enrich_ips_store_the_same(database: Database) -> None:
    ips = ["8.8.8.8", "8.8.4.4", "1.1.1.1", "9.9.9.9", "10.1.1.1"]
    contents = []
    for mode in ("single", "batch"):
        clock = Clock()
        maxmind = FakeMaxMind(
            {
                "8.8.8.8": maxmind_result("8.8.8.8", 15169, org="GOOGLE"),
                "8.8.4.4": maxmind_result("8.8.4.4", 15169, org="GOOGLE"),
            },
            clock=clock,
        )
        cymru = FakeCymru(
            {"1.1.1.1": cymru_result("1.1.1.1", 13335), "9.9.9.9": cymru_result("9.9.9.9", 19281)},
            clock=clock,
        )
        with database.sessions() as session:
            enricher = CascadeEnricher(
                maxmind, cymru, FakeGreyNoise(clock=clock), session, clock=clock
            )
            if mode == "single":
                for ip in ips:
                    enricher.enrich_ip(ip)
            else:
                enricher.enrich_ips(ips, batch_size=2)
            contents.append(_snapshot(session))
            session.rollback()
    assert contents[0] == contents[1]


def test_enrich_ip_returns_the_row_as_stored(rig: Rig) -> None:
    _add_sessions(rig.session, "8.8.8.8", 2, rig.clock, "a")
    rig.clock.advance(days=1)
    returned = {ip: rig.enricher.enrich_ip(ip) for ip in ("8.8.8.8", "1.1.1.1", "10.1.1.1")}
    rig.clock.advance(days=1)
    returned["again"] = rig.enricher.enrich_ip("8.8.8.8")  # an existing row: reloaded

    stored = {
        row["ip_address"]: dict(row)
        for row in rig.session.execute(select(IPInventory.__table__)).mappings()
    }
    columns = [column.key for column in IPInventory.__table__.columns]
    for row in returned.values():
        assert row in rig.session
        assert not rig.session.is_modified(row)
        assert {name: getattr(row, name) for name in columns} == stored[row.ip_address]
    assert returned["again"] is returned["8.8.8.8"]  # one object per row in the session
    assert returned["8.8.8.8"].session_count == 2
    assert returned["8.8.8.8"].enrichment["greynoise"]["noise"] is True
    assert returned["1.1.1.1"].current_asn == 13335


def test_enrich_ip_refreshes_an_object_the_session_already_holds(rig: Rig) -> None:
    held = rig.enricher.enrich_ip("8.8.8.8")
    # The row goes away behind the ORM's back; the session still holds its object.
    rig.session.execute(delete(Base.metadata.tables["ip_inventory"]))
    rig.clock.advance(days=1)

    again = rig.enricher.enrich_ip("8.8.8.8")

    assert again is held
    assert again.created_at == rig.clock.now  # the new row's values, not the old object's


def _snapshot(session: Session) -> tuple[object, ...]:
    ips = session.execute(
        select(
            IPInventory.ip_address,
            IPInventory.current_asn,
            IPInventory.session_count,
            IPInventory.enrichment,
        ).order_by(IPInventory.ip_address)
    ).all()
    asns = session.execute(
        select(
            ASNInventory.asn_number,
            ASNInventory.organization_name,
            ASNInventory.organization_country,
            ASNInventory.rir_registry,
            ASNInventory.unique_ip_count,
            ASNInventory.total_session_count,
        ).order_by(ASNInventory.asn_number)
    ).all()
    return tuple(ips), tuple(asns)


def test_a_failing_source_spoils_nothing_else(rig: Rig) -> None:
    rig.greynoise.error = SourceUnavailableError("HTTP 503", source="greynoise", http_status=503)
    rig.maxmind.fail = lambda ip: RuntimeError("corrupt record") if ip == "8.8.4.4" else None

    report = rig.enricher.enrich_ips(["8.8.8.8", "8.8.4.4", "1.1.1.1"])

    assert report.outcomes["8.8.8.8"] is IPOutcome.ENRICHED
    assert rig.ip("8.8.8.8").current_asn == 15169  # MaxMind's data kept despite GreyNoise
    assert "greynoise" not in rig.ip("8.8.8.8").enrichment
    assert "greynoise: greynoise: HTTP 503" in report.causes["8.8.8.8"]
    assert "maxmind: corrupt record" in report.causes["8.8.4.4"]
    assert rig.ip("1.1.1.1").current_asn == 13335
    assert rig.enricher.get_stats().errors == 3

    # GreyNoise is back: only GreyNoise (and the failed MaxMind lookup) are retried.
    rig.greynoise.error = None
    rig.maxmind.fail = lambda _ip: None
    rig.enricher.enrich_ips(["8.8.8.8", "8.8.4.4", "1.1.1.1"])
    assert rig.ip("8.8.8.8").is_scanner
    assert rig.maxmind.calls.count("8.8.8.8") == 1
    assert rig.maxmind.calls.count("8.8.4.4") == 2


def test_quota_refusal_is_a_skip_not_an_error(rig: Rig) -> None:
    rig.greynoise.error = QuotaExceededError(
        "daily quota used", source="greynoise", http_status=429
    )
    report = rig.enricher.enrich_ips(["8.8.8.8"])
    assert report.outcomes["8.8.8.8"] is IPOutcome.ENRICHED
    assert rig.enricher.get_stats().errors == 0


def test_a_refused_row_does_not_spoil_the_batch(rig: Rig) -> None:
    rig.maxmind.answers = {
        **rig.maxmind.answers,
        "4.4.4.4": maxmind_result("4.4.4.4", -1, org="BROKEN"),  # violates asn_number >= 0
    }
    report = rig.enricher.enrich_ips(["8.8.8.8", "4.4.4.4", "8.8.4.4"])

    assert report.outcomes["4.4.4.4"] is IPOutcome.ERROR
    assert "database refused the row" in report.causes["4.4.4.4"]
    assert report.outcomes["8.8.8.8"] is IPOutcome.ENRICHED
    assert rig.asn(15169).unique_ip_count == 2
    assert rig.session.get(IPInventory, "4.4.4.4") is None


def test_failed_upsert_leaves_the_callers_session_usable(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8"])
    with pytest.raises(IntegrityError):
        rig.enricher._ensure_asn_inventory(-7, "X", "DE", "RIPE")  # violates asn_number >= 0
    # The caller's earlier, uncommitted work is still there and the session still works.
    assert rig.ip("8.8.8.8").current_asn == 15169
    assert rig.session.get(ASNInventory, -7) is None
    rig.session.commit()
    assert rig.enricher.enrich_ip("8.8.4.4").current_asn == 15169


def test_nul_bytes_and_control_characters_are_stored_safely(rig: Rig) -> None:
    name = "EVIL\x00 NET\x1b[31m \u4e2d\u56fd" + "x" * 5000
    rig.maxmind.answers = {"5.5.5.5": maxmind_result("5.5.5.5", 64503, org=name, city="K\x00öln")}
    rig.enricher.enrich_ips(["5.5.5.5"])
    rig.session.commit()
    org = rig.asn(64503).organization_name
    assert org is not None
    assert org.startswith("EVIL NET[31m \u4e2d\u56fd")
    assert "\x00" not in org
    assert len(org) <= 1024
    assert rig.ip("5.5.5.5").city == "Köln"


def test_refresh_and_backfill_use_each_sources_own_timestamps(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8", "1.1.1.1", "7.7.7.7"])
    assert rig.ip("7.7.7.7").current_asn is None
    rig.clock.advance(days=8)

    report = rig.enricher.refresh_stale_data(source="greynoise")
    assert set(report.outcomes) == {"8.8.8.8", "1.1.1.1", "7.7.7.7"}
    assert rig.maxmind.calls.count("8.8.8.8") == 1
    assert rig.enricher.refresh_stale_data(source="cymru").outcomes == {}
    with pytest.raises(ValueError, match="unknown source"):
        rig.enricher.refresh_stale_data(source="shodan")

    rig.cymru.answers = {"7.7.7.7": cymru_result("7.7.7.7", 3356, org="LEVEL3")}
    backfill = rig.enricher.backfill_missing_asns(limit=10)
    assert list(backfill.outcomes) == ["7.7.7.7"]
    assert rig.ip("7.7.7.7").current_asn == 3356


def test_enrich_session_ips(rig: Rig) -> None:
    _add_sessions(rig.session, "8.8.8.8", 1, rig.clock, "s")
    rows = rig.enricher.enrich_session_ips("s0000")
    assert [row.ip_address for row in rows] == ["8.8.8.8"]
    assert rows[0].session_count == 1
    assert rig.enricher.enrich_session_ips("missing") == []


def test_stats_snapshot_is_a_copy(rig: Rig) -> None:
    rig.enricher.enrich_ips(["8.8.8.8"])
    snapshot = rig.enricher.get_stats()
    rig.enricher.enrich_ips(["1.1.1.1"])
    assert snapshot.asn_unique_seen == {15169}
    assert snapshot.total_ips == 1
    rig.enricher.reset_stats()
    assert rig.enricher.get_stats().total_ips == 0

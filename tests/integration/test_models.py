"""The ORM models on the migrated schema of real SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from cowrieprocessor.db import (
    ASNInventory,
    Database,
    IPASNHistory,
    IPInventory,
    SessionSummary,
    open_database,
)
from cowrieprocessor.db.migrate import upgrade_database
from cowrieprocessor.db.models import ENRICHMENT_VERSION, RIR_REGISTRIES
from cowrieprocessor.db.types import UTCDateTime

T0 = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

ENRICHMENT: dict[str, Any] = {
    "maxmind": {
        "country_code": "ES",
        "city": "Málaga",
        "asn": 3352,
        "asn_org": "Telefónica de España",
        "fetched_at": "2025-03-01T12:30:15+00:00",
    },
    "cymru": {"asn": 4134, "asn_org": "中国电信 CHINANET", "prefixes": ["1.2.3.0/24"]},
    "greynoise": {"noise": True, "tags": ["SSH Bruteforcer 🛰️", "Mirai"], "meta": {"n": [1, 2]}},
}


@pytest.fixture
def migrated(db_url: str) -> Iterator[Database]:
    """A database on each backend, at the head revision of the migrations."""
    db = open_database(db_url)
    upgrade_database(db)
    try:
        yield db
    finally:
        db.dispose()


def _asn(number: int = 3352, **fields: Any) -> ASNInventory:
    times = {"first_seen": T0, "last_seen": T0, "created_at": T0, "updated_at": T0}
    return ASNInventory(asn_number=number, **(times | fields))


def _ip(address: str = "203.0.113.7", **fields: Any) -> IPInventory:
    times = {"first_seen": T0, "last_seen": T0, "created_at": T0, "updated_at": T0}
    return IPInventory(ip_address=address, **(times | fields))


def _save(db: Database, *rows: object) -> None:
    with db.sessions.begin() as session:
        session.add_all(rows)


def test_asn_round_trip(migrated: Database) -> None:
    zoned = datetime(2025, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    document = {"whois": {"descr": "Telefónica, 中国电信 🛰️", "nested": {"a": [1, {"b": None}]}}}
    _save(
        migrated,
        _asn(
            organization_name="Telefónica de España S.A.U.",
            organization_country="ES",
            rir_registry="RIPE",
            asn_type="isp",
            is_known_hosting=True,
            is_known_vpn=True,
            unique_ip_count=12,
            total_session_count=5_000_000_000,
            enrichment=document,
            enrichment_updated_at=zoned,
        ),
    )

    with migrated.sessions() as session:
        row = session.get(ASNInventory, 3352)
        assert row is not None
        assert row.organization_name == "Telefónica de España S.A.U."
        assert (row.organization_country, row.rir_registry, row.asn_type) == ("ES", "RIPE", "isp")
        assert row.is_known_hosting is True
        assert row.is_known_vpn is True
        assert (row.unique_ip_count, row.total_session_count) == (12, 5_000_000_000)
        assert row.enrichment == document
        assert row.enrichment_updated_at == zoned
        assert row.enrichment_updated_at is not None
        assert row.enrichment_updated_at.utcoffset() == timedelta(0)
        assert row.first_seen == T0


def test_ip_round_trip_with_history(migrated: Database) -> None:
    _save(migrated, _asn(3352), _asn(4134))
    _save(
        migrated,
        _ip(
            current_asn=3352,
            asn_last_verified=T0,
            session_count=41,
            enrichment=ENRICHMENT,
            enrichment_updated_at=T0,
        ),
    )
    _save(
        migrated,
        IPASNHistory(ip_address="203.0.113.7", previous_asn=4134, new_asn=3352, observed_at=T0),
        IPASNHistory(ip_address="203.0.113.7", previous_asn=None, new_asn=4134, observed_at=T0),
    )

    with migrated.sessions() as session:
        ip = session.get(IPInventory, "203.0.113.7")
        assert ip is not None
        assert (ip.current_asn, ip.session_count) == (3352, 41)
        assert ip.enrichment == ENRICHMENT
        assert ip.asn_last_verified == T0
        history = session.scalars(select(IPASNHistory).order_by(IPASNHistory.id)).all()
        assert [(h.previous_asn, h.new_asn) for h in history] == [(4134, 3352), (None, 4134)]
        assert history[0].id < history[1].id
        assert history[0].observed_at == T0


def test_ipv6_and_session_summary_round_trip(migrated: Database) -> None:
    address = "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"
    summary = SessionSummary(
        session_id="c0ffee00" * 8,
        src_ip=address,
        sensor="honeypot-é1",
        first_event_at=T0,
        last_event_at=T0 + timedelta(seconds=90),
        event_count=12,
        login_attempts=3,
        commands=7,
    )
    _save(migrated, _ip(address), summary)

    with migrated.sessions() as session:
        row = session.get(SessionSummary, "c0ffee00" * 8)
        assert row is not None
        assert (row.src_ip, row.sensor) == (address, "honeypot-é1")
        assert row.last_event_at - row.first_event_at == timedelta(seconds=90)
        assert (row.event_count, row.login_attempts, row.commands) == (12, 3, 7)
        assert session.get(IPInventory, address) is not None


@pytest.mark.parametrize(
    "moment",
    [
        pytest.param(T0, id="utc"),
        pytest.param(
            datetime(2025, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            id="plus-0530",
        ),
        pytest.param(
            datetime(2024, 12, 31, 16, 0, 0, 1, tzinfo=timezone(timedelta(hours=-8))),
            id="minus-0800-microsecond",
        ),
    ],
)
def test_datetimes_come_back_aware_in_utc(migrated: Database, moment: datetime) -> None:
    _save(migrated, _asn(first_seen=moment))

    with migrated.sessions() as session:
        stored = session.scalars(select(ASNInventory.first_seen)).one()
        assert stored == moment
        assert stored.tzinfo is not None
        assert stored.utcoffset() == timedelta(0)
        earlier = moment - timedelta(microseconds=1)
        assert session.scalar(select(func.count()).where(ASNInventory.first_seen > earlier)) == 1


def test_naive_datetime_is_refused(migrated: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime refused") as caught:
        _save(migrated, _asn(first_seen=datetime(2025, 3, 1, 12, 0)))
    assert isinstance(caught.value.orig, ValueError)
    with migrated.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ASNInventory)) == 0


def test_orm_inserts_get_the_defaults(migrated: Database) -> None:
    _save(migrated, _asn(), _ip(current_asn=3352))

    with migrated.sessions() as session:
        asn, ip = session.get_one(ASNInventory, 3352), session.get_one(IPInventory, "203.0.113.7")
        assert (asn.is_known_hosting, asn.is_known_vpn) == (False, False)
        assert (asn.unique_ip_count, asn.total_session_count, asn.enrichment) == (0, 0, {})
        assert (ip.session_count, ip.enrichment) == (0, {})
        assert ip.enrichment_version == ENRICHMENT_VERSION


def test_server_defaults_of_the_migrated_schema(migrated: Database) -> None:
    """Rows written by plain SQL (another tool, a psql session) get the same defaults."""
    stamp = bindparam("t", T0, type_=UTCDateTime())
    with migrated.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO asn_inventory (asn_number, first_seen, last_seen, created_at,"
                " updated_at) VALUES (64500, :t, :t, :t, :t)"
            ).bindparams(stamp)
        )
        conn.execute(
            text(
                "INSERT INTO ip_inventory (ip_address, first_seen, last_seen, created_at,"
                " updated_at) VALUES ('198.51.100.1', :t, :t, :t, :t)"
            ).bindparams(stamp)
        )

    with migrated.sessions() as session:
        asn = session.get_one(ASNInventory, 64500)
        ip = session.get_one(IPInventory, "198.51.100.1")
        assert (asn.is_known_hosting, asn.is_known_vpn) == (False, False)
        assert (asn.unique_ip_count, asn.total_session_count, asn.enrichment) == (0, 0, {})
        assert (ip.session_count, ip.enrichment, ip.current_asn) == (0, {}, None)
        assert ip.enrichment_version == ENRICHMENT_VERSION
        assert asn.first_seen == T0


@pytest.mark.parametrize(
    ("enrichment", "country", "city", "asn_org", "scanner"),
    [
        pytest.param(ENRICHMENT, "ES", "Málaga", "Telefónica de España", True, id="maxmind-wins"),
        pytest.param(
            {"maxmind": {"city": "Lyon"}, "cymru": {"country_code": "CN", "asn_org": "中国电信"}},
            "CN",
            "Lyon",
            "中国电信",
            False,
            id="cymru-fills-gaps",
        ),
        pytest.param(
            {"maxmind": {"country_code": "", "asn_org": None}, "cymru": {"country_code": "BR"}},
            "BR",
            None,
            None,
            False,
            id="empty-maxmind-values-skipped",
        ),
        pytest.param(
            {"cymru": {"city": "Ignored", "country_code": "RU"}},
            "RU",
            None,
            None,
            False,
            id="city-only-from-maxmind",
        ),
        pytest.param({}, "XX", None, None, False, id="nothing-known"),
        pytest.param(
            {"maxmind": "garbage", "greynoise": {"noise": False}},
            "XX",
            None,
            None,
            False,
            id="malformed-source-ignored",
        ),
        pytest.param({"greynoise": {"noise": True}}, "XX", None, None, True, id="scanner-only"),
    ],
)
def test_enrichment_helpers(
    enrichment: dict[str, Any], country: str, city: str | None, asn_org: str | None, scanner: bool
) -> None:
    ip = _ip(enrichment=enrichment)
    assert (ip.geo_country, ip.city, ip.asn_org, ip.is_scanner) == (country, city, asn_org, scanner)


def test_helpers_before_any_enrichment() -> None:
    ip = _ip()
    assert (ip.geo_country, ip.city, ip.asn_org, ip.is_scanner) == ("XX", None, None, False)


def test_helpers_after_a_round_trip(migrated: Database) -> None:
    _save(migrated, _ip(enrichment=ENRICHMENT))
    with migrated.sessions() as session:
        ip = session.get_one(IPInventory, "203.0.113.7")
        assert (ip.geo_country, ip.city, ip.asn_org, ip.is_scanner) == (
            "ES",
            "Málaga",
            "Telefónica de España",
            True,
        )


def test_every_rir_and_none_are_accepted(migrated: Database) -> None:
    registries: list[str | None] = [*RIR_REGISTRIES, None]
    _save(migrated, *(_asn(n, rir_registry=rir) for n, rir in enumerate(registries)))
    with migrated.sessions() as session:
        stored = session.scalars(
            select(ASNInventory.rir_registry).order_by(ASNInventory.asn_number)
        )
        assert list(stored) == registries


@pytest.mark.parametrize(
    ("number", "rir", "constraint"),
    [
        pytest.param(64501, "XYZ", "ck_asn_inventory_rir_registry", id="unknown-rir"),
        pytest.param(64501, "arin", "ck_asn_inventory_rir_registry", id="lowercase-rir"),
        pytest.param(-1, "ARIN", "ck_asn_inventory_asn_number", id="negative-asn"),
    ],
)
def test_check_constraints_reject(
    migrated: Database, number: int, rir: str, constraint: str
) -> None:
    with pytest.raises(IntegrityError, match=constraint):
        _save(migrated, _asn(number, rir_registry=rir))
    with migrated.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ASNInventory)) == 0


def test_ip_pointing_to_a_missing_asn_fails_at_commit(migrated: Database) -> None:
    with migrated.sessions() as session:
        session.add(_ip(current_asn=65_000))
        session.flush()  # deferred: the INSERT itself is accepted
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            session.commit()
        session.rollback()
    with migrated.sessions() as session:
        assert session.scalar(select(func.count()).select_from(IPInventory)) == 0


def test_pool_is_clean_after_a_refused_commit(migrated: Database) -> None:
    """A session closed right after its COMMIT failed must not poison the pool."""
    with migrated.sessions() as session:
        session.add(_ip(current_asn=65_000))
        with pytest.raises(IntegrityError):
            session.commit()

    _save(migrated, _asn(65_000), _ip(current_asn=65_000))
    with migrated.sessions() as session:
        assert session.scalars(select(IPInventory.current_asn)).all() == [65_000]


def test_asn_may_arrive_later_in_the_same_transaction(migrated: Database) -> None:
    with migrated.sessions() as session:
        session.add(_ip(current_asn=3352))
        session.flush()
        session.add(_asn(3352))
        session.commit()
    with migrated.sessions() as session:
        assert session.get_one(IPInventory, "203.0.113.7").current_asn == 3352


def test_deleting_an_ip_deletes_its_history(migrated: Database) -> None:
    _save(migrated, _ip("203.0.113.7"), _ip("203.0.113.8"))
    _save(
        migrated,
        *(
            IPASNHistory(ip_address=address, previous_asn=1, new_asn=2, observed_at=T0)
            for address in ("203.0.113.7", "203.0.113.7", "203.0.113.8")
        ),
    )

    with migrated.sessions.begin() as session:
        session.execute(delete(IPInventory).where(IPInventory.ip_address == "203.0.113.7"))

    with migrated.sessions() as session:
        remaining = session.scalars(select(IPASNHistory.ip_address)).all()
        assert remaining == ["203.0.113.8"]


def test_sqlite_memory_round_trip() -> None:
    db = open_database("sqlite:///:memory:")
    try:
        upgrade_database(db)
        _save(db, _asn(4134, organization_name="中国电信"), _ip(current_asn=4134))
        _save(db, _ip("198.51.100.9", enrichment=ENRICHMENT))
        with db.sessions() as session:
            assert session.get_one(ASNInventory, 4134).organization_name == "中国电信"
            assert session.get_one(IPInventory, "198.51.100.9").enrichment == ENRICHMENT
            assert session.get_one(IPInventory, "203.0.113.7").first_seen == T0
    finally:
        db.dispose()

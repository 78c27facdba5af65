"""MaxMindClient against GeoLite2-format databases written at test time."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geoip2.database
import httpx
import pytest

from cowrieprocessor.demo.geodb import GeoRecord, demo_ips, demo_records, write_geolite2_databases
from cowrieprocessor.enrichment.addresses import is_public
from cowrieprocessor.enrichment.errors import (
    AuthenticationError,
    InvalidIPError,
    SourceUnavailableError,
)
from cowrieprocessor.enrichment.maxmind_client import (
    ASN_DATABASE,
    ENV_DIRECTORY,
    GEO_DATABASES,
    MaxMindClient,
    MaxMindResult,
)
from cowrieprocessor.enrichment.stats import ClientStats
from tests.support.mmdb import Reply, geolite2_archive, serve_downloads, sha256_line

CITY, COUNTRY_ONLY_NAME = GEO_DATABASES[0], GEO_DATABASES[2]
BUILD = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
KEY = "Lk-9s3cr3t-QzXw"

US_HOSTING = GeoRecord(
    "44.10.20.0/24", "US", "United States", "Ashburn", 39.0438, -77.4874, 20, 64501, "Demo Hosting"
)
GB_GEO_ONLY = GeoRecord("81.2.69.0/24", "GB", "United Kingdom", "London", 51.5142, -0.0931, 10)
AU_ASN_ONLY = GeoRecord("1.128.0.0/11", asn=4_200_000_001)
NO_IPV6 = GeoRecord(
    "2a02:cf40::/32", "NO", "Norway", None, 59.9, 10.7, 1000, 64502, "Demo Telecom Norge"
)
RECORDS = (US_HOSTING, GB_GEO_ONLY, AU_ASN_ONLY, NO_IPV6)


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(directory: Path, records: tuple[GeoRecord, ...] = RECORDS, **kwargs: Any) -> Path:
    write_geolite2_databases(directory, records, build_time=kwargs.pop("build_time", BUILD))
    return directory


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    return write(tmp_path / "geoip")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_for(directory: Path, clock: FakeClock | None = None, **kwargs: Any) -> MaxMindClient:
    return MaxMindClient(directory, clock=clock or FakeClock(), search_dirs=(), **kwargs)


def test_lookup_reads_geo_and_asn(db_dir: Path) -> None:
    result = client_for(db_dir).lookup_ip("44.10.20.7")
    assert result is not None
    assert (result.ip_address, result.country_code, result.country_name) == (
        "44.10.20.7",
        "US",
        "United States",
    )
    assert (result.city, result.latitude, result.longitude) == ("Ashburn", 39.0438, -77.4874)
    assert (result.accuracy_radius, result.asn, result.asn_org) == (20, 64501, "Demo Hosting")
    assert result.database_build == BUILD
    assert result.source == "maxmind"
    assert result.fetched_at.tzinfo is not None
    assert abs(datetime.now(UTC) - result.fetched_at) < timedelta(minutes=1)
    assert result.cached_at == result.fetched_at


@pytest.mark.parametrize(
    ("remove", "expected"),
    [
        pytest.param(None, ("US", 64501), id="both"),
        pytest.param(ASN_DATABASE, ("US", None), id="geo-only"),
        pytest.param(CITY, (None, 64501), id="asn-only"),
    ],
)
def test_either_database_may_be_absent(
    db_dir: Path, remove: str | None, expected: tuple[str | None, int | None]
) -> None:
    if remove is not None:
        (db_dir / remove).unlink()
    client = client_for(db_dir)
    result = client.lookup_ip("44.10.20.7")
    assert client.available
    assert result is not None
    assert (result.country_code, result.asn) == expected


@pytest.mark.parametrize(
    ("ip", "canonical", "country", "asn"),
    [
        pytest.param("2a02:cf40::1", "2a02:cf40::1", "NO", 64502, id="ipv6"),
        pytest.param("2A02:CF40:0:0::9", "2a02:cf40::9", "NO", 64502, id="ipv6-uppercase"),
        pytest.param("::ffff:44.10.20.7", "44.10.20.7", "US", 64501, id="ipv4-mapped"),
        pytest.param(" 81.2.69.1 ", "81.2.69.1", "GB", None, id="geo-record-only"),
        pytest.param("1.130.4.5", "1.130.4.5", None, 4_200_000_001, id="asn-record-only"),
    ],
)
def test_addresses_are_canonical(
    db_dir: Path, ip: str, canonical: str, country: str | None, asn: int | None
) -> None:
    result = client_for(db_dir).lookup_ip(ip)
    assert result is not None
    assert (result.ip_address, result.country_code, result.asn) == (canonical, country, asn)


def test_record_without_city_or_org(db_dir: Path) -> None:
    client = client_for(db_dir)
    ipv6 = client.lookup_ip("2a02:cf40::1")
    asn_only = client.lookup_ip("1.128.0.1")
    assert ipv6 is not None
    assert (ipv6.city, ipv6.accuracy_radius) == (None, 1000)
    assert asn_only is not None
    assert (asn_only.asn_org, asn_only.latitude, asn_only.country_name) == (None, None, None)


@pytest.mark.parametrize("ip", ["8.8.8.8", "10.0.0.1", "127.0.0.1", "::1", "2001:db8::1"])
def test_address_in_no_database_is_a_miss(db_dir: Path, ip: str) -> None:
    client = client_for(db_dir)
    assert client.lookup_ip(ip) is None
    assert client.stats() == ClientStats(lookups=1, hits=0, misses=1, errors=0)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not-an-ip", id="word"),
        pytest.param("1.2.3", id="three-octets"),
        pytest.param("256.1.1.1", id="octet-too-big"),
        pytest.param("01.2.3.4", id="leading-zero"),
        pytest.param("1.2.3.4/24", id="cidr"),
        pytest.param("fe80::1%eth0", id="zoned-ipv6"),
        pytest.param("2001:db8::g", id="bad-hex"),
        pytest.param("1" * 100, id="too-long"),
    ],
)
def test_invalid_ip_raises(db_dir: Path, text: str) -> None:
    client = client_for(db_dir)
    with pytest.raises(InvalidIPError) as caught:
        client.lookup_ip(text)
    assert caught.value.source == "maxmind"
    assert client.stats() == ClientStats(lookups=1, hits=0, misses=0, errors=1)


def test_no_database_means_unavailable(tmp_path: Path) -> None:
    client = client_for(tmp_path)
    assert not client.available
    assert client.lookup_ip("44.10.20.7") is None
    assert client.database_build_time() is None
    assert client.get_database_age() is None


def test_stats_count_hits_misses_and_errors(db_dir: Path) -> None:
    client = client_for(db_dir)
    for ip in ("44.10.20.7", "81.2.69.1", "8.8.8.8", "bogus", "2a02:cf40::1"):
        with contextlib.suppress(InvalidIPError):
            client.lookup_ip(ip)
    assert client.stats() == ClientStats(lookups=5, hits=3, misses=1, errors=1)


def test_directory_from_environment(db_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DIRECTORY, str(db_dir))
    client = MaxMindClient(search_dirs=())
    assert client.directory == db_dir
    assert client.lookup_ip("44.10.20.7") is not None


def test_given_directory_wins_over_environment(
    db_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DIRECTORY, str(tmp_path / "elsewhere"))
    assert MaxMindClient(db_dir).directory == db_dir


def test_search_dirs_pick_the_first_holding_a_database(
    db_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DIRECTORY, raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    client = MaxMindClient(search_dirs=(tmp_path / "missing", empty, db_dir))
    assert client.directory == db_dir
    assert client.available


def test_db_path_must_be_a_directory(db_dir: Path) -> None:
    with pytest.raises(ValueError, match="must be a directory"):
        MaxMindClient(db_dir / CITY)


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        pytest.param(GEO_DATABASES, "GeoLite2-City.mmdb", id="geolite2-city-first"),
        pytest.param(GEO_DATABASES[1:], "GeoIP2-City.mmdb", id="geoip2-city-second"),
        pytest.param(GEO_DATABASES[2:], "GeoLite2-Country.mmdb", id="country-last"),
    ],
)
def test_geo_database_preference(tmp_path: Path, present: tuple[str, ...], expected: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    for index, name in enumerate(present):
        source = tmp_path / f"src{index}"
        code = name.split(".")[0][:8]
        record = GeoRecord("44.10.20.0/24", code, name, None, 1.0, 2.0, 5)
        write(source, (record,))
        shutil.copy(source / CITY, target / name)
    result = client_for(target).lookup_ip("44.10.20.1")
    assert result is not None
    assert result.country_name == expected


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty-file"),
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(b"\xab\xcd\xefMaxMind.com" * 3, id="metadata-marker-only"),
    ],
)
def test_corrupt_file_raises_naming_it(db_dir: Path, content: bytes) -> None:
    (db_dir / CITY).write_bytes(content)
    client = client_for(db_dir)
    assert client.available
    with pytest.raises(SourceUnavailableError) as caught:
        client.lookup_ip("44.10.20.7")
    assert str(db_dir / CITY) in str(caught.value)
    assert caught.value.source == "maxmind"
    assert client.stats().errors == 1


def test_truncated_file_raises(db_dir: Path) -> None:
    data = (db_dir / ASN_DATABASE).read_bytes()
    (db_dir / ASN_DATABASE).write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceUnavailableError, match=ASN_DATABASE):
        client_for(db_dir).lookup_ip("44.10.20.7")


def test_replaced_file_is_used_after_the_recheck_interval(db_dir: Path, clock: FakeClock) -> None:
    client = client_for(db_dir, clock)
    first = client.lookup_ip("44.10.20.7")
    assert first is not None
    assert first.country_code == "US"
    moved = GeoRecord("44.10.20.0/24", "DE", "Germany", "Berlin", 52.52, 13.4, 50, 64999, "New")
    write(db_dir, (moved,), build_time=BUILD + timedelta(days=7))
    clock.now += 0.5
    unchanged = client.lookup_ip("44.10.20.7")
    assert unchanged is not None
    assert unchanged.country_code == "US"
    clock.now += 0.5
    replaced = client.lookup_ip("44.10.20.7")
    assert replaced is not None
    assert (replaced.country_code, replaced.asn, replaced.asn_org) == ("DE", 64999, "New")
    assert replaced.database_build == BUILD + timedelta(days=7)
    assert client.lookup_ip("81.2.69.1") is None


def test_file_rewritten_in_place_is_reopened(db_dir: Path, clock: FakeClock) -> None:
    client = client_for(db_dir, clock)
    assert client.lookup_ip("81.2.69.1") is not None
    other = write(db_dir.parent / "other", (US_HOSTING,))
    (db_dir / CITY).write_bytes((other / CITY).read_bytes())
    clock.now += 1.0
    assert client.lookup_ip("81.2.69.1") is None


def test_databases_appearing_and_disappearing(tmp_path: Path, clock: FakeClock) -> None:
    client = client_for(tmp_path, clock)
    seen = [client.available]
    write(tmp_path)
    seen.append(client.available)
    clock.now += 1.0
    seen.append(client.available)
    assert client.lookup_ip("44.10.20.7") is not None
    (tmp_path / CITY).unlink()
    (tmp_path / ASN_DATABASE).unlink()
    clock.now += 1.0
    seen.append(client.available)
    assert seen == [False, False, True, False]
    assert client.lookup_ip("44.10.20.7") is None


def test_corrupt_file_replaced_by_a_good_one_recovers(db_dir: Path, clock: FakeClock) -> None:
    good = (db_dir / CITY).read_bytes()
    (db_dir / CITY).write_bytes(b"garbage")
    client = client_for(db_dir, clock)
    with pytest.raises(SourceUnavailableError):
        client.lookup_ip("44.10.20.7")
    (db_dir / CITY).write_bytes(good)
    clock.now += 1.0
    result = client.lookup_ip("44.10.20.7")
    assert result is not None
    assert result.city == "Ashburn"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


def test_lookups_in_threads_survive_replacements(db_dir: Path, tmp_path: Path) -> None:
    moved = GeoRecord("44.10.20.0/24", "DE", "Germany", "Berlin", 52.52, 13.4, 50, 64999, "New")
    releases = [write(tmp_path / "old"), write(tmp_path / "new", (moved,))]
    client = MaxMindClient(db_dir, search_dirs=(), recheck_interval=0.0)
    seen: set[str | None] = set()
    failures: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                result = client.lookup_ip("44.10.20.7")
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                failures.append(exc)
                return
            seen.add(result.country_code if result else None)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: "US" in seen or bool(failures))
    for round_ in range(20):
        for name in (CITY, ASN_DATABASE):
            shutil.copy(releases[round_ % 2] / name, db_dir / f".{name}.tmp")
            (db_dir / f".{name}.tmp").replace(db_dir / name)
    wait_until(lambda: "DE" in seen or bool(failures))
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    assert seen == {"US", "DE"}


def test_database_age_and_build_time_come_from_metadata(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    older, newer = now - timedelta(days=40), now - timedelta(days=3)
    write(tmp_path / "a", build_time=older)
    write(tmp_path / "b", build_time=newer)
    (tmp_path / "b" / ASN_DATABASE).replace(tmp_path / "a" / ASN_DATABASE)
    os.utime(tmp_path / "a" / CITY, (now.timestamp(), now.timestamp()))
    client = client_for(tmp_path / "a")
    assert client.database_build_time() == newer
    age = client.get_database_age()
    assert age is not None
    assert timedelta(days=40) <= age < timedelta(days=40, minutes=1)
    asn_only = client.lookup_ip("1.128.0.1")
    geo_only = client.lookup_ip("81.2.69.1")
    both = client.lookup_ip("44.10.20.7")
    assert asn_only is not None
    assert geo_only is not None
    assert both is not None
    assert (asn_only.database_build, geo_only.database_build) == (newer, older)
    assert both.database_build == newer


def test_ipv4_only_database_misses_ipv6(tmp_path: Path) -> None:
    import mmdb_writer
    from netaddr import IPSet

    writer = mmdb_writer.MMDBWriter(ip_version=4, database_type="GeoLite2-ASN")
    writer.insert_network(IPSet(["44.10.20.0/24"]), {"autonomous_system_number": 64501})
    writer.to_db_file(str(tmp_path / ASN_DATABASE))
    client = client_for(tmp_path)
    assert client.lookup_ip("2a02:cf40::1") is None
    result = client.lookup_ip("44.10.20.1")
    assert result is not None
    assert result.asn == 64501


def test_closed_client_refuses_lookups(db_dir: Path, clock: FakeClock) -> None:
    with client_for(db_dir, clock) as client:
        assert client.lookup_ip("44.10.20.7") is not None
    clock.now += 5.0
    with pytest.raises(SourceUnavailableError, match="closed"):
        client.lookup_ip("44.10.20.7")
    assert (client.available, client.database_build_time()) == (False, None)


def test_result_round_trips_through_json(db_dir: Path) -> None:
    client = client_for(db_dir)
    for ip in ("44.10.20.7", "2a02:cf40::1", "1.128.0.1"):
        result = client.lookup_ip(ip)
        assert result is not None
        data = json.loads(json.dumps(result.to_enrichment()))
        assert data["fetched_at"] == result.fetched_at.isoformat()
        assert MaxMindResult.from_enrichment(data) == result


def test_integral_coordinates_are_accepted_as_floats(db_dir: Path) -> None:
    result = client_for(db_dir).lookup_ip("44.10.20.7")
    assert result is not None
    data = result.to_enrichment() | {"latitude": 39}
    assert MaxMindResult.from_enrichment(data).latitude == 39.0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"fetched_at": None}, id="no-fetched-at"),
        pytest.param({"fetched_at": "2024-01-01T00:00:00"}, id="naive-fetched-at"),
        pytest.param({"fetched_at": "yesterday"}, id="bad-fetched-at"),
        pytest.param({"ip_address": None}, id="no-ip"),
        pytest.param({"ip_address": "not-an-ip"}, id="bad-ip"),
        pytest.param({"asn": "64501"}, id="asn-as-text"),
        pytest.param({"asn": True}, id="asn-as-bool"),
        pytest.param({"latitude": "39.0"}, id="latitude-as-text"),
        pytest.param({"country_code": 7}, id="country-as-number"),
        pytest.param({"database_build": 1714979289}, id="build-as-epoch"),
        pytest.param({"source": "cymru"}, id="other-source"),
    ],
)
def test_from_enrichment_rejects_malformed_data(db_dir: Path, change: dict[str, Any]) -> None:
    result = client_for(db_dir).lookup_ip("44.10.20.7")
    assert result is not None
    with pytest.raises(ValueError):  # noqa: PT011 - each row fails for its own reason
        MaxMindResult.from_enrichment(result.to_enrichment() | change)


def test_from_enrichment_rejects_a_non_mapping() -> None:
    not_a_mapping: Any = ["fetched_at"]
    with pytest.raises(ValueError, match="mapping"):
        MaxMindResult.from_enrichment(not_a_mapping)


# --- update() against a loopback download server -------------------------------------------


def new_release(tmp_path: Path) -> dict[tuple[str, str], Reply]:
    """Replies serving a release whose 44.10.20.0/24 moved to Germany."""
    moved = GeoRecord("44.10.20.0/24", "DE", "Germany", "Berlin", 52.52, 13.4, 50, 64999, "New")
    release = write(tmp_path / "release", (moved,), build_time=BUILD + timedelta(days=30))
    replies = {}
    for edition, name in (("GeoLite2-City", CITY), ("GeoLite2-ASN", ASN_DATABASE)):
        archive = geolite2_archive(release / name, edition)
        replies[edition, "tar.gz"] = Reply(200, archive)
        replies[edition, "tar.gz.sha256"] = Reply(200, sha256_line(archive))
    return replies


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_update_installs_verified_databases(db_dir: Path, tmp_path: Path) -> None:
    with serve_downloads(new_release(tmp_path)) as server:
        client = client_for(db_dir, license_key=KEY, download_url=server.url)
        before = client.lookup_ip("44.10.20.7")
        installed = client.update()
    assert installed == [db_dir / CITY, db_dir / ASN_DATABASE]
    assert sorted(path.name for path in db_dir.iterdir()) == sorted([CITY, ASN_DATABASE])
    assert all((path.stat().st_mode & 0o777) == 0o644 for path in installed)
    after = client.lookup_ip("44.10.20.7")
    assert before is not None
    assert after is not None
    assert (before.country_code, after.country_code, after.asn) == ("US", "DE", 64999)
    assert client.database_build_time() == BUILD + timedelta(days=30)
    editions = {(query["edition_id"], query["suffix"]) for query in server.queries}
    assert editions == {
        (edition, suffix)
        for edition in ("GeoLite2-City", "GeoLite2-ASN")
        for suffix in ("tar.gz", "tar.gz.sha256")
    }
    assert {query["license_key"] for query in server.queries} == {KEY}


def test_update_into_an_empty_directory_with_an_injected_client(tmp_path: Path) -> None:
    target = tmp_path / "fresh"
    with serve_downloads(new_release(tmp_path)) as server, httpx.Client() as http:
        client = client_for(target, license_key=KEY, download_url=server.url, http_client=http)
        assert not client.available
        client.update()
        assert not http.is_closed
    result = client.lookup_ip("44.10.20.7")
    assert result is not None
    assert result.city == "Berlin"


def test_update_with_explicit_files_replaces_those_files(db_dir: Path, tmp_path: Path) -> None:
    geo = tmp_path / "my-city.mmdb"
    shutil.copy(db_dir / CITY, geo)
    with serve_downloads(new_release(tmp_path)) as server:
        client = MaxMindClient(geo_file=geo, license_key=KEY, download_url=server.url)
        assert client.update() == [geo]
    result = client.lookup_ip("44.10.20.7")
    assert result is not None
    assert (result.country_code, result.asn) == ("DE", None)


@pytest.mark.parametrize(
    ("broken", "reply", "match"),
    [
        pytest.param(
            ("GeoLite2-ASN", "tar.gz.sha256"),
            Reply(200, sha256_line(b"something else")),
            "checksum mismatch",
            id="asn-checksum-mismatch",
        ),
        pytest.param(
            ("GeoLite2-City", "tar.gz.sha256"), Reply(200, b"<html>"), "malformed", id="bad-sum"
        ),
        pytest.param(("GeoLite2-ASN", "tar.gz"), Reply(500, b"oops"), "failed", id="http-500"),
        pytest.param(("GeoLite2-City", "tar.gz"), Reply(404, b""), "failed", id="http-404"),
    ],
)
def test_failed_update_replaces_nothing(
    db_dir: Path, tmp_path: Path, broken: tuple[str, str], reply: Reply, match: str
) -> None:
    replies = new_release(tmp_path)
    replies[broken] = reply
    before = snapshot(db_dir)
    with serve_downloads(replies) as server:
        client = client_for(db_dir, license_key=KEY, download_url=server.url)
        with pytest.raises(SourceUnavailableError, match=match) as caught:
            client.update()
    assert snapshot(db_dir) == before
    assert caught.value.http_status == (reply.status if reply.status >= 400 else None)


def archive_reply(payload: bytes) -> dict[tuple[str, str], Reply]:
    return {
        ("GeoLite2-City", "tar.gz"): Reply(200, payload),
        ("GeoLite2-City", "tar.gz.sha256"): Reply(200, sha256_line(payload)),
    }


@pytest.mark.parametrize(
    ("make", "match"),
    [
        pytest.param(lambda d: b"not gzip at all", "broken", id="not-an-archive"),
        pytest.param(
            lambda d: geolite2_archive(d / ASN_DATABASE, "GeoLite2-ASN"),
            "not found in the archive",
            id="no-city-member",
        ),
        pytest.param(
            lambda d: geolite2_archive(d / ASN_DATABASE, "GeoLite2-City"),
            "holds a GeoLite2-ASN database",
            id="wrong-database-type",
        ),
    ],
)
def test_bad_archive_is_refused(db_dir: Path, make: Any, match: str) -> None:
    geo = db_dir / CITY
    before = geo.read_bytes()
    with serve_downloads(archive_reply(make(db_dir))) as server:
        client = MaxMindClient(geo_file=geo, license_key=KEY, download_url=server.url)
        with pytest.raises(SourceUnavailableError, match=match):
            client.update()
    assert geo.read_bytes() == before
    assert sorted(path.name for path in db_dir.iterdir()) == sorted([CITY, ASN_DATABASE])


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_an_authentication_error(db_dir: Path, status: int) -> None:
    replies = {("GeoLite2-City", "tar.gz.sha256"): Reply(status, b"Invalid license key")}
    with serve_downloads(replies) as server:
        client = client_for(db_dir, license_key=KEY, download_url=server.url)
        with pytest.raises(AuthenticationError) as caught:
            client.update()
    assert caught.value.http_status == status
    assert caught.value.source == "maxmind"


def test_update_without_key_sends_nothing(db_dir: Path) -> None:
    with serve_downloads({}) as server:
        client = client_for(db_dir, download_url=server.url)
        with pytest.raises(AuthenticationError, match="license key"):
            client.update()
    assert server.queries == []


def test_license_key_never_leaks(
    db_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with serve_downloads(new_release(tmp_path)) as server:
        client = client_for(db_dir, license_key=KEY, download_url=server.url)
        client.update()
        server.replies[("GeoLite2-City", "tar.gz.sha256")] = Reply(401, b"no")
        with pytest.raises(AuthenticationError) as refused:
            client.update()
        errors.append(refused.value)
    with pytest.raises(SourceUnavailableError) as unreachable:
        client_for(db_dir, license_key=KEY, download_url=server.url).update()
    errors.append(unreachable.value)
    assert "ConnectError" in str(unreachable.value)
    assert server.queries
    assert "HTTP Request" in caplog.text
    texts = [caplog.text, repr(client), *(f"{e!s} {e!r} {e.__cause__!r}" for e in errors)]
    assert all(KEY not in text for text in texts)


# --- the synthetic database writer used above --------------------------------------------


def test_demo_records_are_deterministic_public_and_synthetic() -> None:
    records = demo_records(400, seed=11, asn_count=50)
    assert records == demo_records(400, seed=11, asn_count=50)
    assert records != demo_records(400, seed=12, asn_count=50)
    networks = [ipaddress.ip_network(record.network) for record in records]
    assert len(set(networks)) == 400
    assert all(is_public(net.network_address) and is_public(net[-1]) for net in networks)
    assert {net.version for net in networks} == {4, 6}
    assert len({record.asn for record in records}) == 50
    assert all(record.asn_org and "Synthetic" in record.asn_org for record in records)
    assert all(record.city is None or record.latitude is not None for record in records)


def test_demo_records_default_to_one_asn_per_network() -> None:
    records = demo_records(1100, seed=3)
    asns = [record.asn for record in records]
    assert len(set(asns)) == 1100
    assert min(a for a in asns if a is not None) == 64512
    assert max(a for a in asns if a is not None) > 0xFFFF


def ip_in(ip: str, network: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(network)


def test_demo_databases_read_by_geoip2(tmp_path: Path) -> None:
    records = demo_records(60, seed=5)
    city_path, asn_path = write_geolite2_databases(tmp_path, records, build_time=BUILD)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([CITY, ASN_DATABASE])
    with (
        geoip2.database.Reader(str(city_path)) as city,
        geoip2.database.Reader(str(asn_path)) as asn,
    ):
        assert city.metadata().database_type == "GeoLite2-City"
        assert asn.metadata().database_type == "GeoLite2-ASN"
        assert city.metadata().build_epoch == int(BUILD.timestamp())
        for ip in demo_ips(records, 60, seed=5):
            located = city.city(ip)
            network = next(r for r in records if ip_in(ip, r.network))
            assert located.country.iso_code == network.country_code
            assert located.city.name == network.city
            assert asn.asn(ip).autonomous_system_number == network.asn


def test_demo_databases_need_mmdb_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmdb_writer", None)
    with pytest.raises(RuntimeError, match=r"cowrieprocessor\[dev\]"):
        write_geolite2_databases(tmp_path, [US_HOSTING])


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"network": "44.10.20.1/24"}, id="host-bits-set"),
        pytest.param({"network": "not-a-network"}, id="not-cidr"),
        pytest.param({"network": "44.10.20.0/24", "asn": -1}, id="negative-asn"),
        pytest.param({"network": "44.10.20.0/24", "asn": 1 << 32}, id="asn-too-big"),
    ],
)
def test_geo_record_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each row fails for its own reason
        GeoRecord(**kwargs)


def test_naive_build_time_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        write_geolite2_databases(tmp_path, [US_HOSTING], build_time=datetime(2024, 1, 1))

"""MaxMindClient against MaxMind's own test databases in ../shared/data/maxmind.

The expected answers are the table of ../shared/data/maxmind/README.md (read back
there with geoip2's Reader). MISS means the database has no record.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cowrieprocessor.enrichment.errors import SourceUnavailableError
from cowrieprocessor.enrichment.maxmind_client import MaxMindClient, MaxMindResult

pytestmark = pytest.mark.shared_data

MISS = "miss"
NO_COUNTRY = "no-country"
BUILD = datetime.fromtimestamp(1770245369, UTC)

# ip, ASN DB (asn, org), Country DB iso, GeoLite2-City (iso, city), GeoIP2-City (iso, city)
TABLE: list[tuple[str, object, object, object, object]] = [
    ("89.160.20.112", (29518, "Bredband2 AB"), "SE", ("SE", "Linköping"), ("SE", "Linköping")),
    ("216.160.83.56", (209, None), "US", ("US", "Milton"), ("US", "Milton")),
    ("67.43.156.1", (35908, None), "BT", ("BT", None), ("BT", None)),
    ("214.78.120.1", (721, "DoD Network Information Center"), MISS, MISS, ("US", "San Diego")),
    ("1.128.0.1", (1221, "Telstra Pty Ltd"), MISS, MISS, MISS),
    ("12.81.92.1", (7018, "AT&T Services"), MISS, MISS, MISS),
    ("149.101.100.1", (6167, "CELLCO-PART"), MISS, MISS, ("US", None)),
    ("81.2.69.142", MISS, "GB", ("GB", "London"), ("GB", "London")),
    ("2.125.160.218", MISS, "GB", ("GB", "Boxford"), ("GB", "Boxford")),
    ("175.16.199.1", MISS, MISS, ("CN", "Changchun"), ("CN", "Changchun")),
    ("2001:218::1", MISS, "JP", ("JP", None), ("JP", None)),
    ("2001:480::1", MISS, "US", ("US", "San Diego"), MISS),
    ("2a02:cf40::1", MISS, "NO", ("NO", None), ("NO", None)),
    ("2001:1700::1", (6730, "Sunrise Communications AG"), MISS, MISS, MISS),
    ("2003::1", (3320, "Deutsche Telekom AG"), MISS, MISS, MISS),
    ("2400::1", (4766, "Korea Telecom"), MISS, MISS, MISS),
    ("2a02:d500::1", MISS, NO_COUNTRY, (None, None), (None, None)),
]
NOWHERE = ["1.1.1.1", "8.8.8.8", "10.0.0.1", "127.0.0.1", "192.0.2.1", "::1", "2001:db8::1"]


def rows(column: int) -> list[object]:
    return [pytest.param(row[0], row[column], id=row[0]) for row in TABLE]


def lookup(path: Path, ip: str, *, asn: bool = False) -> MaxMindResult | None:
    client = MaxMindClient(asn_file=path) if asn else MaxMindClient(geo_file=path)
    with client:
        return client.lookup_ip(ip)


@pytest.mark.parametrize(("ip", "expected"), rows(1))
def test_asn_database(shared_data: Path, ip: str, expected: object) -> None:
    result = lookup(shared_data / "maxmind" / "GeoLite2-ASN-Test.mmdb", ip, asn=True)
    if expected == MISS:
        assert result is None
        return
    assert result is not None
    assert (result.asn, result.asn_org) == expected
    assert (result.country_code, result.city) == (None, None)


@pytest.mark.parametrize(("ip", "expected"), rows(2))
def test_country_database(shared_data: Path, ip: str, expected: object) -> None:
    result = lookup(shared_data / "maxmind" / "GeoLite2-Country-Test.mmdb", ip)
    if expected == MISS:
        assert result is None
        return
    assert result is not None
    assert result.country_code == (None if expected == NO_COUNTRY else expected)
    assert (result.city, result.asn) == (None, None)


@pytest.mark.parametrize(("ip", "expected"), rows(3))
def test_geolite2_city_database(shared_data: Path, ip: str, expected: object) -> None:
    result = lookup(shared_data / "maxmind" / "GeoLite2-City-Test.mmdb", ip)
    if expected == MISS:
        assert result is None
        return
    assert result is not None
    assert (result.country_code, result.city) == expected


@pytest.mark.parametrize(("ip", "expected"), rows(4))
def test_geoip2_city_database(shared_data: Path, ip: str, expected: object) -> None:
    result = lookup(shared_data / "maxmind" / "GeoIP2-City-Test.mmdb", ip)
    if expected == MISS:
        assert result is None
        return
    assert result is not None
    assert (result.country_code, result.city) == expected


@pytest.fixture
def geolite2_dir(shared_data: Path, tmp_path: Path) -> Path:
    """A database directory holding copies under the production file names."""
    source = shared_data / "maxmind"
    shutil.copy(source / "GeoLite2-City-Test.mmdb", tmp_path / "GeoLite2-City.mmdb")
    shutil.copy(source / "GeoLite2-ASN-Test.mmdb", tmp_path / "GeoLite2-ASN.mmdb")
    return tmp_path


def test_directory_with_city_and_asn(geolite2_dir: Path) -> None:
    client = MaxMindClient(geolite2_dir, search_dirs=())
    result = client.lookup_ip("89.160.20.112")
    assert result is not None
    assert (result.country_code, result.country_name, result.city) == ("SE", "Sweden", "Linköping")
    assert (result.asn, result.asn_org) == (29518, "Bredband2 AB")
    assert result.database_build == BUILD
    assert client.database_build_time() == BUILD


@pytest.mark.parametrize("ip", NOWHERE)
def test_addresses_in_no_database(geolite2_dir: Path, ip: str) -> None:
    assert MaxMindClient(geolite2_dir, search_dirs=()).lookup_ip(ip) is None


@pytest.mark.parametrize(
    "ip",
    [
        pytest.param("::ffff:1.128.0.1", id="ipv4-mapped"),
        pytest.param("::1.128.0.1", id="ipv4-compatible"),
        pytest.param("2002:0180::1", id="6to4"),
    ],
)
def test_ipv4_embedded_in_ipv6_finds_telstra(geolite2_dir: Path, ip: str) -> None:
    result = MaxMindClient(geolite2_dir, search_dirs=()).lookup_ip(ip)
    assert result is not None
    assert (result.asn, result.asn_org) == (1221, "Telstra Pty Ltd")


def test_mapped_address_is_reported_as_ipv4(geolite2_dir: Path) -> None:
    result = MaxMindClient(geolite2_dir, search_dirs=()).lookup_ip("::ffff:1.128.0.1")
    assert result is not None
    assert result.ip_address == "1.128.0.1"


def test_geoip2_city_details(shared_data: Path) -> None:
    london = lookup(shared_data / "maxmind" / "GeoIP2-City-Test.mmdb", "81.2.69.142")
    bhutan = lookup(shared_data / "maxmind" / "GeoIP2-City-Test.mmdb", "67.43.156.1")
    assert london is not None
    assert (london.latitude, london.longitude) == (51.5142, -0.0931)
    assert london.country_name == "United Kingdom"
    assert bhutan is not None
    assert bhutan.country_code == "BT"


def test_every_sample_reports_its_build_time(shared_data: Path) -> None:
    names = ["GeoLite2-City-Test", "GeoLite2-Country-Test", "GeoIP2-City-Test"]
    for name in names:
        client = MaxMindClient(geo_file=shared_data / "maxmind" / f"{name}.mmdb")
        assert client.database_build_time() == BUILD, name
    asn = MaxMindClient(asn_file=shared_data / "maxmind" / "GeoLite2-ASN-Test.mmdb")
    assert asn.database_build_time() == BUILD


def test_invalid_node_count_database_is_unavailable(shared_data: Path) -> None:
    broken = shared_data / "maxmind" / "GeoIP2-City-Test-Invalid-Node-Count.mmdb"
    client = MaxMindClient(geo_file=broken)
    assert client.available
    assert client.get_database_age() is None
    with pytest.raises(SourceUnavailableError) as caught:
        client.lookup_ip("81.2.69.142")
    assert str(broken) in str(caught.value)
    assert client.stats().errors == 1

"""Write small GeoLite2-format databases filled with synthetic records.

The databases have the layout of MaxMind's GeoLite2-City and GeoLite2-ASN files
(same ``database_type``, record shape and IPv6 tree with IPv4 under ``::/96``),
so :class:`~cowrieprocessor.enrichment.maxmind_client.MaxMindClient` and
``geoip2.database.Reader`` read them like the real ones. The data is made up:
networks are random public blocks, AS numbers come from the private-use ranges
(64512-65534 and 4200000000 upwards) and organisation names say "synthetic".
Never use it as real geolocation.

Writing needs the ``mmdb-writer`` package (``pip install cowrieprocessor[dev]``).
"""

from __future__ import annotations

import ipaddress
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cowrieprocessor.enrichment.addresses import is_public

__all__ = [
    "ASN_FILENAME",
    "CITY_FILENAME",
    "GeoRecord",
    "demo_ips",
    "demo_records",
    "write_geolite2_databases",
]

CITY_FILENAME = "GeoLite2-City.mmdb"
ASN_FILENAME = "GeoLite2-ASN.mmdb"

_DESCRIPTION = "Synthetic demo data written by cowrieprocessor; not real geolocation"

# (ISO code, English name, weight, ((city, latitude, longitude), ...)).
# Weights loosely follow where honeypot traffic comes from.
_COUNTRIES: tuple[tuple[str, str, int, tuple[tuple[str, float, float], ...]], ...] = (
    ("CN", "China", 22, (("Beijing", 39.9042, 116.4074), ("Shanghai", 31.2304, 121.4737))),
    ("US", "United States", 18, (("Ashburn", 39.0438, -77.4874), ("San Jose", 37.3382, -121.8863))),
    ("RU", "Russia", 8, (("Moscow", 55.7558, 37.6173), ("Saint Petersburg", 59.9311, 30.3609))),
    ("IN", "India", 7, (("Mumbai", 19.076, 72.8777), ("Bengaluru", 12.9716, 77.5946))),
    (
        "BR",
        "Brazil",
        6,
        (("Sao Paulo", -23.5505, -46.6333), ("Rio de Janeiro", -22.9068, -43.1729)),
    ),
    ("DE", "Germany", 5, (("Frankfurt am Main", 50.1109, 8.6821), ("Berlin", 52.52, 13.405))),
    ("NL", "Netherlands", 4, (("Amsterdam", 52.3676, 4.9041),)),
    ("KR", "South Korea", 4, (("Seoul", 37.5665, 126.978),)),
    ("VN", "Vietnam", 4, (("Hanoi", 21.0278, 105.8342), ("Ho Chi Minh City", 10.8231, 106.6297))),
    ("SG", "Singapore", 3, (("Singapore", 1.3521, 103.8198),)),
    ("FR", "France", 3, (("Paris", 48.8566, 2.3522), ("Roubaix", 50.6942, 3.1746))),
    ("GB", "United Kingdom", 3, (("London", 51.5072, -0.1276),)),
    ("ID", "Indonesia", 3, (("Jakarta", -6.2088, 106.8456),)),
    ("TW", "Taiwan", 2, (("Taipei", 25.033, 121.5654),)),
    ("HK", "Hong Kong", 2, (("Hong Kong", 22.3193, 114.1694),)),
    ("IR", "Iran", 2, (("Tehran", 35.6892, 51.389),)),
    ("UA", "Ukraine", 1, (("Kyiv", 50.4501, 30.5234),)),
    ("JP", "Japan", 1, (("Tokyo", 35.6762, 139.6503),)),
    ("TR", "Turkey", 1, (("Istanbul", 41.0082, 28.9784),)),
    ("ZA", "South Africa", 1, (("Johannesburg", -26.2041, 28.0473),)),
)
_COUNTRY_WEIGHTS = tuple(country[2] for country in _COUNTRIES)
_KINDS = ("Hosting", "Cloud", "Telecom", "Broadband", "Mobile", "Datacenter", "University")
_RADII = (5, 10, 20, 50, 100, 200, 500)
_SMALL_PRIVATE_ASN = 64512  # 64512-65534: 16-bit private use
_SMALL_PRIVATE_COUNT = 1023
_LARGE_PRIVATE_ASN = 4_200_000_000  # 4200000000-4294967294: 32-bit private use


@dataclass(frozen=True, slots=True)
class GeoRecord:
    """One network with the geo and AS data to write for it.

    ``network`` is a CIDR (IPv4 or IPv6, host bits zero). A record without a
    country, city or location goes only into the ASN database; one without
    ``asn`` goes only into the City database.
    """

    network: str
    country_code: str | None = None
    country_name: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius: int | None = None
    asn: int | None = None
    asn_org: str | None = None

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_network(self.network, strict=True)
        except ValueError as exc:
            raise ValueError(f"not a network in CIDR form: {self.network!r}") from exc
        if self.asn is not None and not 0 <= self.asn <= 0xFFFFFFFF:
            raise ValueError(f"AS number out of range: {self.asn}")

    @property
    def has_geo(self) -> bool:
        """True when the record carries anything for the City database."""
        fields = (self.country_code, self.city, self.latitude, self.longitude)
        return any(value is not None for value in fields)


def write_geolite2_databases(
    directory: Path,
    records: Iterable[GeoRecord],
    *,
    build_time: datetime | None = None,
) -> tuple[Path, Path]:
    """Write ``GeoLite2-City.mmdb`` and ``GeoLite2-ASN.mmdb`` into ``directory``.

    Each file is written to a temporary name in ``directory`` and renamed over
    the target, like ``geoipupdate`` does, so a reader never sees half a file.
    ``build_time`` (default: now) becomes the metadata ``build_epoch``. When two
    records name the same network, the later one wins. Returns the City and ASN
    paths.

    Raises:
        RuntimeError: the ``mmdb-writer`` package is not installed.
        ValueError: ``build_time`` is naive.
        OSError: the files cannot be written.
    """
    mmdb_writer = _import_writer()
    from netaddr import IPSet

    epoch = _epoch(build_time)
    city = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True)
    asn = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True)
    for record in records:
        network = IPSet([record.network])
        if record.has_geo:
            city.insert_network(network, _city_document(record))
        if record.asn is not None:
            asn.insert_network(network, _asn_document(record, mmdb_writer.MmdbU32))
    directory.mkdir(parents=True, exist_ok=True)
    city_path = directory / CITY_FILENAME
    asn_path = directory / ASN_FILENAME
    _write_atomically(mmdb_writer, city, _metadata("GeoLite2-City", epoch), city_path)
    _write_atomically(mmdb_writer, asn, _metadata("GeoLite2-ASN", epoch), asn_path)
    return city_path, asn_path


def demo_records(count: int, seed: int, *, asn_count: int | None = None) -> list[GeoRecord]:
    """Return ``count`` synthetic records for distinct public networks.

    The same ``count``, ``seed`` and ``asn_count`` always give the same list.
    About one network in twenty is an IPv6 /48, the rest are IPv4 /24s. There
    are ``asn_count`` distinct AS numbers (default: one per network); every AS
    gets at least one network when ``asn_count <= count``, the rest are shared
    with a long tail. About one record in ten has no city (country-level only).

    Raises:
        ValueError: ``count`` is negative or ``asn_count`` is not positive.
    """
    if count < 0:
        raise ValueError(f"count must not be negative: {count}")
    asn_total = count if asn_count is None else asn_count
    if asn_count is not None and asn_count < 1:
        raise ValueError(f"asn_count must be positive: {asn_count}")
    rng = random.Random(seed)
    systems = [_autonomous_system(index, rng) for index in range(asn_total)]
    tail_weights = [1.0 / (rank + 1) for rank in range(len(systems))]
    networks = _public_networks(count, rng)
    records = []
    for index, network in enumerate(networks):
        if index < len(systems):
            system = systems[index]
        else:
            system = rng.choices(systems, weights=tail_weights)[0]
        records.append(_record(network, system, rng))
    return records


def demo_ips(records: Sequence[GeoRecord], count: int, seed: int) -> list[str]:
    """Return ``count`` addresses drawn (with repetition) from ``records``' networks.

    Raises:
        ValueError: ``records`` is empty while ``count`` is positive.
    """
    if count > 0 and not records:
        raise ValueError("no records to draw addresses from")
    rng = random.Random(seed)
    addresses = []
    for _ in range(count):
        network = ipaddress.ip_network(rng.choice(records).network)
        offset = rng.randrange(1, max(2, network.num_addresses - 1))
        addresses.append(str(network.network_address + offset))
    return addresses


def _import_writer() -> Any:
    try:
        import mmdb_writer
    except ImportError as exc:
        raise RuntimeError(
            "writing demo databases needs the mmdb-writer package: "
            "pip install 'cowrieprocessor[dev]'"
        ) from exc
    return mmdb_writer


def _epoch(build_time: datetime | None) -> int:
    if build_time is None:
        return int(datetime.now(UTC).timestamp())
    if build_time.tzinfo is None:
        raise ValueError(f"build_time must be timezone-aware: {build_time!r}")
    return int(build_time.timestamp())


def _metadata(database_type: str, epoch: int) -> dict[str, Any]:
    return {
        "ip_version": 6,
        "database_type": database_type,
        "languages": ["en"],
        "binary_format_major_version": 2,
        "binary_format_minor_version": 0,
        "description": {"en": _DESCRIPTION},
        "build_epoch": epoch,
    }


def _write_atomically(mmdb_writer: Any, writer: Any, meta: dict[str, Any], target: Path) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(handle)
    try:
        tree_writer = mmdb_writer.TreeWriter(writer.tree, meta, writer.int_type, writer.float_type)
        tree_writer.write(temp_name)
        Path(temp_name).replace(target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _city_document(record: GeoRecord) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if record.country_code is not None:
        country = {"iso_code": record.country_code, "names": {"en": record.country_name or ""}}
        document["country"] = country
        document["registered_country"] = country
    if record.city is not None:
        document["city"] = {"names": {"en": record.city}}
    location: dict[str, Any] = {}
    if record.latitude is not None and record.longitude is not None:
        location["latitude"] = float(record.latitude)
        location["longitude"] = float(record.longitude)
    if record.accuracy_radius is not None:
        location["accuracy_radius"] = record.accuracy_radius
    if location:
        document["location"] = location
    return document


def _asn_document(record: GeoRecord, u32: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"autonomous_system_number": u32(record.asn)}
    if record.asn_org is not None:
        document["autonomous_system_organization"] = record.asn_org
    return document


def _autonomous_system(index: int, rng: random.Random) -> tuple[int, str, int]:
    if index < _SMALL_PRIVATE_COUNT:
        number = _SMALL_PRIVATE_ASN + index
    else:
        number = _LARGE_PRIVATE_ASN + index
    country = rng.choices(range(len(_COUNTRIES)), weights=_COUNTRY_WEIGHTS)[0]
    kind = rng.choice(_KINDS)
    code = _COUNTRIES[country][0]
    return number, f"Synthetic {kind} {code} {index + 1} (demo data)", country


def _public_networks(count: int, rng: random.Random) -> list[str]:
    seen: set[str] = set()
    networks: list[str] = []
    while len(networks) < count:
        if len(networks) % 20 == 19:
            prefix = 0x2400 + rng.randrange(0x0C00)  # 2400::/6 .. 2fff::, global unicast
            network: ipaddress.IPv4Network | ipaddress.IPv6Network = ipaddress.IPv6Network(
                ((prefix << 112) | (rng.randrange(1 << 32) << 80), 48)
            )
        else:
            network = ipaddress.IPv4Network((rng.randrange(1 << 24) << 8, 24))
        text = str(network)
        if text in seen or not _all_public(network):
            continue
        seen.add(text)
        networks.append(text)
    return networks


def _all_public(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return is_public(network.network_address) and is_public(network.broadcast_address)


def _record(network: str, system: tuple[int, str, int], rng: random.Random) -> GeoRecord:
    number, organisation, country_index = system
    code, name, _weight, cities = _COUNTRIES[country_index]
    city, latitude, longitude = rng.choice(cities)
    if rng.random() < 0.1:
        return GeoRecord(network, code, name, None, latitude, longitude, 1000, number, organisation)
    return GeoRecord(
        network,
        code,
        name,
        city,
        round(latitude + rng.uniform(-0.2, 0.2), 4),
        round(longitude + rng.uniform(-0.2, 0.2), 4),
        rng.choice(_RADII),
        number,
        organisation,
    )

"""Offline geo and AS lookups in MaxMind GeoLite2 / GeoIP2 databases.

:class:`MaxMindClient` reads a geo database (``GeoLite2-City.mmdb``, else
``GeoIP2-City.mmdb``, else ``GeoLite2-Country.mmdb``) and ``GeoLite2-ASN.mmdb``
from one directory; either may be missing. Readers stay open between lookups.
At most once per ``recheck_interval`` seconds the files are stat-ed, and a file
replaced on disk (as ``geoipupdate`` or :meth:`MaxMindClient.update` do) is
reopened, so a long-running process picks up new data without a restart.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, TypeVar

import httpx

from cowrieprocessor.enrichment._maxmind_files import SOURCE, Record, WatchedDatabase
from cowrieprocessor.enrichment._maxmind_update import install_databases
from cowrieprocessor.enrichment.addresses import parse_ip
from cowrieprocessor.enrichment.errors import EnrichmentError, SourceUnavailableError
from cowrieprocessor.enrichment.stats import ClientStats, StatsCounter

__all__ = [
    "ASN_DATABASE",
    "DEFAULT_DOWNLOAD_URL",
    "DEFAULT_SEARCH_DIRS",
    "ENV_DIRECTORY",
    "GEO_DATABASES",
    "MaxMindClient",
    "MaxMindResult",
]

logger = logging.getLogger(__name__)

DEFAULT_DOWNLOAD_URL = "https://download.maxmind.com/app/geoip_download"
#: Environment variable naming the database directory when none is given.
ENV_DIRECTORY = "COWRIEPROCESSOR_MAXMIND_DIR"
#: Directories searched, in order, when neither a directory nor the variable is set.
DEFAULT_SEARCH_DIRS: tuple[Path, ...] = (Path("/usr/share/GeoIP"), Path("/var/lib/GeoIP"))
#: Geo database file names in order of preference.
GEO_DATABASES: tuple[str, ...] = ("GeoLite2-City.mmdb", "GeoIP2-City.mmdb", "GeoLite2-Country.mmdb")
ASN_DATABASE = "GeoLite2-ASN.mmdb"

_GEO_EDITION = "GeoLite2-City"
_ASN_EDITION = "GeoLite2-ASN"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MaxMindResult:
    """What the MaxMind databases know about one address.

    ``database_build`` is the newest build time among the databases that had a
    record for the address.
    """

    ip_address: str
    country_code: str | None
    country_name: str | None
    city: str | None
    latitude: float | None
    longitude: float | None
    asn: int | None
    asn_org: str | None
    accuracy_radius: int | None
    database_build: datetime | None
    fetched_at: datetime
    source: str = SOURCE

    @property
    def cached_at(self) -> datetime:
        """When the result was produced (same as ``fetched_at``)."""
        return self.fetched_at

    def to_enrichment(self) -> dict[str, Any]:
        """Return the JSON-safe form kept in ``ip_inventory.enrichment``."""
        build = self.database_build
        return {
            "ip_address": self.ip_address,
            "country_code": self.country_code,
            "country_name": self.country_name,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "asn": self.asn,
            "asn_org": self.asn_org,
            "accuracy_radius": self.accuracy_radius,
            "database_build": None if build is None else build.isoformat(),
            "fetched_at": self.fetched_at.isoformat(),
            "source": self.source,
        }

    @classmethod
    def from_enrichment(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a result from :meth:`to_enrichment` output.

        Raises:
            ValueError: a field is missing, has the wrong type, or the data
                belongs to another source.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"maxmind enrichment must be a mapping, not {type(data).__name__}")
        source = data.get("source", SOURCE)
        if source != SOURCE:
            raise ValueError(f"not a maxmind enrichment: source={source!r}")
        fetched_at = _field_datetime(data, "fetched_at")
        if fetched_at is None:
            raise ValueError("maxmind enrichment lacks 'fetched_at'")
        return cls(
            ip_address=_field_ip(data),
            country_code=_field(data, "country_code", str),
            country_name=_field(data, "country_name", str),
            city=_field(data, "city", str),
            latitude=_field_float(data, "latitude"),
            longitude=_field_float(data, "longitude"),
            asn=_field(data, "asn", int),
            asn_org=_field(data, "asn_org", str),
            accuracy_radius=_field(data, "accuracy_radius", int),
            database_build=_field_datetime(data, "database_build"),
            fetched_at=fetched_at,
        )


class MaxMindClient:
    """Geo and AS data for IP addresses from local MaxMind databases.

    ``db_path`` is the directory holding the ``.mmdb`` files; without it the
    ``COWRIEPROCESSOR_MAXMIND_DIR`` variable is used, else the first of
    ``search_dirs`` that holds a database. ``geo_file`` / ``asn_file`` name the
    files directly instead (no directory search then; a kind without a file is
    absent). A missing database is not an error, a present but unreadable one
    makes :meth:`lookup_ip` raise :class:`SourceUnavailableError`.

    ``license_key`` is only needed by :meth:`update`; it never appears in
    ``repr()``, logs or exceptions.

    Raises:
        ValueError: ``db_path`` is an existing file, not a directory, or no
            directory can be chosen (nothing given and ``search_dirs`` empty).
    """

    def __init__(
        self,
        db_path: Path | None = None,
        license_key: str | None = None,
        *,
        download_url: str = DEFAULT_DOWNLOAD_URL,
        http_client: httpx.Client | None = None,
        geo_file: Path | None = None,
        asn_file: Path | None = None,
        search_dirs: Sequence[Path] = DEFAULT_SEARCH_DIRS,
        recheck_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 120.0,
    ) -> None:
        self._license_key = license_key or None
        self._download_url = download_url
        self._http_client = http_client
        self._timeout = timeout
        self._stats = StatsCounter()
        self._closed = False
        if geo_file is not None or asn_file is not None:
            self._directory: Path | None = None
            geo_candidates: tuple[Path, ...] = () if geo_file is None else (Path(geo_file),)
            asn_candidates: tuple[Path, ...] = () if asn_file is None else (Path(asn_file),)
        else:
            self._directory = _resolve_directory(db_path, search_dirs)
            geo_candidates = tuple(self._directory / name for name in GEO_DATABASES)
            asn_candidates = (self._directory / ASN_DATABASE,)
        self._geo = WatchedDatabase(geo_candidates, clock, recheck_interval)
        self._asn = WatchedDatabase(asn_candidates, clock, recheck_interval)

    def __repr__(self) -> str:
        key = "set" if self._license_key else "unset"
        geo = self._geo.current
        asn = self._asn.current
        return (
            f"MaxMindClient(directory={self._directory}, geo={geo.path if geo else None}, "
            f"asn={asn.path if asn else None}, license_key={key})"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def directory(self) -> Path | None:
        """The database directory (``None`` when files were named directly)."""
        return self._directory

    @property
    def available(self) -> bool:
        """True when at least one database file is present."""
        return self._geo.current is not None or self._asn.current is not None

    def lookup_ip(self, ip: str) -> MaxMindResult | None:
        """Look ``ip`` up in the geo and ASN databases.

        IPv4-mapped IPv6 addresses are looked up as IPv4. Returns ``None`` when
        no database has a record for the address (or none is present).

        Raises:
            InvalidIPError: ``ip`` is not an IP address.
            SourceUnavailableError: a database file is corrupt or unreadable, or
                the client is closed.
        """
        try:
            address = parse_ip(ip, source=SOURCE)
            if self._closed:
                raise SourceUnavailableError("the MaxMind client is closed", source=SOURCE)
            geo, geo_build = self._geo.lookup(address)
            asn, asn_build = self._asn.lookup(address)
        except EnrichmentError:
            self._stats.error()
            raise
        if geo is None and asn is None:
            self._stats.miss()
            return None
        self._stats.hit()
        return _result(str(address), geo, asn, _newest(geo_build, asn_build))

    def database_build_time(self) -> datetime | None:
        """The newest build time (metadata ``build_epoch``) of the open databases."""
        builds = self._build_times()
        return max(builds) if builds else None

    def get_database_age(self) -> timedelta | None:
        """Age of the oldest open database, from its metadata ``build_epoch``.

        The oldest one is what an operator must refresh, so a fresh City file
        does not hide a stale ASN file. ``None`` when no database is open.
        """
        builds = self._build_times()
        return datetime.now(UTC) - min(builds) if builds else None

    def stats(self) -> ClientStats:
        """A snapshot of this client's lookup counters."""
        return self._stats.snapshot()

    def close(self) -> None:
        """Close the readers; later lookups raise :class:`SourceUnavailableError`."""
        self._closed = True
        self._geo.close()
        self._asn.close()

    def update(self) -> list[Path]:
        """Download current GeoLite2-City and GeoLite2-ASN files and install them.

        Each archive's SHA-256 is checked against MaxMind's checksum file and the
        extracted database is opened once before anything is replaced; then the
        files are renamed over the old ones (atomic per file). If anything fails,
        no file is replaced. Returns the installed paths.

        Raises:
            AuthenticationError: no license key, or MaxMind refused it (401/403).
            SourceUnavailableError: network failure, other HTTP status, checksum
                mismatch, broken archive, or the files cannot be written.
        """
        installed = install_databases(
            self._update_targets(),
            self._license_key,
            download_url=self._download_url,
            http_client=self._http_client,
            timeout=self._timeout,
        )
        self._geo.expire()
        self._asn.expire()
        return installed

    def _build_times(self) -> list[datetime]:
        opened = (self._geo.current, self._asn.current)
        return [db.build_time for db in opened if db is not None and db.build_time is not None]

    def _update_targets(self) -> list[tuple[str, Path]]:
        if self._directory is not None:
            return [
                (_GEO_EDITION, self._directory / GEO_DATABASES[0]),
                (_ASN_EDITION, self._directory / ASN_DATABASE),
            ]
        targets = [(_GEO_EDITION, db) for db in self._geo.candidates]
        return targets + [(_ASN_EDITION, db) for db in self._asn.candidates]


def _resolve_directory(db_path: Path | None, search_dirs: Sequence[Path]) -> Path:
    if db_path is not None:
        directory = Path(db_path)
        if directory.is_file():
            raise ValueError(
                f"db_path must be a directory, not a file: {directory} "
                "(use geo_file= / asn_file= to name files)"
            )
        return directory
    from_env = os.environ.get(ENV_DIRECTORY)
    if from_env:
        return Path(from_env)
    names = (*GEO_DATABASES, ASN_DATABASE)
    for directory in search_dirs:
        if any((directory / name).is_file() for name in names):
            return directory
    existing = [directory for directory in search_dirs if directory.is_dir()]
    if existing:
        return existing[0]
    if not search_dirs:
        raise ValueError("no database directory given and search_dirs is empty")
    return search_dirs[0]


def _result(
    ip: str, geo: Record | None, asn: Record | None, build: datetime | None
) -> MaxMindResult:
    country = _section(geo, "country")
    location = _section(geo, "location")
    return MaxMindResult(
        ip_address=ip,
        country_code=_value(country, "iso_code", str),
        country_name=_english_name(country),
        city=_english_name(_section(geo, "city")),
        latitude=_value(location, "latitude", float),
        longitude=_value(location, "longitude", float),
        asn=_value(asn, "autonomous_system_number", int),
        asn_org=_value(asn, "autonomous_system_organization", str),
        accuracy_radius=_value(location, "accuracy_radius", int),
        database_build=build,
        fetched_at=datetime.now(UTC),
    )


def _section(record: Record | None, key: str) -> Record | None:
    value = record.get(key) if record is not None else None
    return value if isinstance(value, dict) else None


def _value(record: Record | None, key: str, kind: type[_T]) -> _T | None:
    value = record.get(key) if record is not None else None
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def _english_name(section: Record | None) -> str | None:
    return _value(_section(section, "names"), "en", str)


def _newest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)


def _field(data: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"maxmind enrichment field {key!r} must be {kind.__name__}: {value!r}")
    return value


def _field_float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"maxmind enrichment field {key!r} must be a number: {value!r}")
    return float(value)


def _field_ip(data: Mapping[str, Any]) -> str:
    value = _field(data, "ip_address", str)
    if value is None:
        raise ValueError("maxmind enrichment lacks 'ip_address'")
    ipaddress.ip_address(value)
    return str(value)


def _field_datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    text = _field(data, key, str)
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"maxmind enrichment field {key!r} lacks a time zone: {text!r}")
    return moment

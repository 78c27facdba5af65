"""Offline geo and AS lookups in MaxMind GeoLite2 / GeoIP2 databases.

:class:`MaxMindClient` reads a geo database (``GeoLite2-City.mmdb``, else
``GeoIP2-City.mmdb``, else ``GeoLite2-Country.mmdb``) and ``GeoLite2-ASN.mmdb``
from one directory; either may be missing. Readers stay open between lookups.
At most once per ``recheck_interval`` seconds the files are stat-ed, and a file
replaced on disk (as ``geoipupdate`` or :meth:`MaxMindClient.update` do) is
reopened, so a long-running process picks up new data without a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import shutil
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self, TypeVar

import httpx
import maxminddb

from cowrieprocessor.enrichment.addresses import IPAddress, parse_ip
from cowrieprocessor.enrichment.errors import (
    AuthenticationError,
    EnrichmentError,
    SourceUnavailableError,
)
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

SOURCE = "maxmind"
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
_MAX_CHECKSUM_BYTES = 4096
_HTTP_LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection")

Record = dict[str, Any]
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


@dataclass(frozen=True, slots=True)
class _Opened:
    """A database file as last seen: its identity and its reader (or why it failed)."""

    path: Path
    signature: tuple[int, int, int]
    reader: maxminddb.Reader | None
    build_time: datetime | None
    ipv4_only: bool
    failure: str | None


_NOTHING: tuple[None, None] = (None, None)


class _Database:
    """One kind of database (geo or ASN): candidate files, open reader, reload."""

    def __init__(
        self, candidates: tuple[Path, ...], clock: Callable[[], float], interval: float
    ) -> None:
        self.candidates = candidates
        self._clock = clock
        self._interval = interval
        self._lock = threading.Lock()
        self._opened: _Opened | None = None
        self._next_check = float("-inf")

    @property
    def current(self) -> _Opened | None:
        """The file in use after a reload check if one is due."""
        if self._clock() >= self._next_check:
            self._refresh()
        return self._opened

    def expire(self) -> None:
        """Make the next access look at the files again."""
        if self._next_check != float("inf"):
            self._next_check = float("-inf")

    def close(self) -> None:
        """Close the reader and never look at the files again."""
        with self._lock:
            self._next_check = float("inf")
            opened, self._opened = self._opened, None
        if opened is not None and opened.reader is not None:
            opened.reader.close()

    def lookup(self, address: IPAddress) -> tuple[Record | None, datetime | None]:
        """Return the record for ``address`` and the build time of its database."""
        opened = self.current
        if opened is None:
            return _NOTHING
        reader = opened.reader
        if reader is None:
            raise SourceUnavailableError(opened.failure or "unreadable database", source=SOURCE)
        if opened.ipv4_only and address.version == 6:
            return _NOTHING
        try:
            record = reader.get(address)
        except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
            raise SourceUnavailableError(
                f"cannot read MaxMind database {opened.path}: {_reason(exc)}", source=SOURCE
            ) from exc
        if record is None:
            return _NOTHING
        if not isinstance(record, dict):
            raise SourceUnavailableError(
                f"unexpected record type in MaxMind database {opened.path}", source=SOURCE
            )
        return record, opened.build_time

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_check:
                return
            self._next_check = now + self._interval
            found = _first_existing(self.candidates)
            opened = self._opened
            if found is None:
                if opened is not None:
                    logger.info("MaxMind database %s is gone", opened.path)
                self._opened = None
            elif opened is None or (opened.path, opened.signature) != found:
                # The previous reader is not closed here: a lookup in another
                # thread may still use it; it is released with its last reference.
                self._opened = _open(*found)


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
        self._geo = _Database(geo_candidates, clock, recheck_interval)
        self._asn = _Database(asn_candidates, clock, recheck_interval)

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
        if self._license_key is None:
            raise AuthenticationError(
                "a MaxMind license key is needed to download databases", source=SOURCE
            )
        targets = self._update_targets()
        staged: list[tuple[Path, Path]] = []
        try:
            with self._http() as client, _redacted_http_logs(self._license_key):
                for edition, target in targets:
                    staged.append((self._fetch_database(client, edition, target), target))
            for temp, target in staged:
                temp.replace(target)
                logger.info("installed MaxMind database %s", target)
        except OSError as exc:
            raise SourceUnavailableError(
                f"cannot install MaxMind databases: {exc}", source=SOURCE
            ) from exc
        finally:
            for temp, _target in staged:
                temp.unlink(missing_ok=True)
        self._geo.expire()
        self._asn.expire()
        return [target for _edition, target in targets]

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

    @contextlib.contextmanager
    def _http(self) -> Iterator[httpx.Client]:
        if self._http_client is not None:
            yield self._http_client
            return
        with httpx.Client(timeout=self._timeout) as client:
            yield client

    def _fetch_database(self, client: httpx.Client, edition: str, target: Path) -> Path:
        """Download, verify and extract one edition next to ``target``; return the temp file."""
        checksum = bytearray()
        self._download(client, edition, "tar.gz.sha256", checksum.extend, _MAX_CHECKSUM_BYTES)
        expected = _parse_checksum(bytes(checksum), edition)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent) as archive:
            digest = hashlib.sha256()

            def sink(chunk: bytes) -> None:
                digest.update(chunk)
                archive.write(chunk)

            self._download(client, edition, "tar.gz", sink, None)
            if digest.hexdigest() != expected:
                raise SourceUnavailableError(
                    f"checksum mismatch for the {edition} download; nothing installed",
                    source=SOURCE,
                )
            archive.seek(0)
            return _extract_database(archive, edition, target)

    def _download(
        self,
        client: httpx.Client,
        edition: str,
        suffix: str,
        sink: Callable[[bytes], object],
        limit: int | None,
    ) -> None:
        key = self._license_key or ""
        params = {"edition_id": edition, "license_key": key, "suffix": suffix}
        try:
            with client.stream(
                "GET", self._download_url, params=params, follow_redirects=True
            ) as response:
                _check_status(response, edition)
                received = 0
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if limit is not None and received > limit:
                        raise SourceUnavailableError(
                            f"unexpectedly large {edition} {suffix} response", source=SOURCE
                        )
                    sink(chunk)
        except httpx.HTTPError as exc:
            # The httpx exception carries the request URL, which holds the license
            # key: only a scrubbed description leaves this method.
            detail = _scrub(str(exc), key)
            raise SourceUnavailableError(
                f"download of {edition} ({suffix}) failed: {type(exc).__name__}: {detail}",
                source=SOURCE,
            ) from None


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


def _first_existing(candidates: tuple[Path, ...]) -> tuple[Path, tuple[int, int, int]] | None:
    for path in candidates:
        try:
            info = path.stat()
        except OSError:
            continue
        return path, (info.st_ino, info.st_mtime_ns, info.st_size)
    return None


def _open(path: Path, signature: tuple[int, int, int]) -> _Opened:
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        metadata = reader.metadata()
        build = datetime.fromtimestamp(metadata.build_epoch, UTC)
    except (maxminddb.InvalidDatabaseError, ValueError, OSError, OverflowError) as exc:
        failure = f"cannot read MaxMind database {path}: {_reason(exc)}"
        logger.warning("%s", failure)
        return _Opened(path, signature, None, None, False, failure)
    logger.info("opened MaxMind database %s (%s, built %s)", path, metadata.database_type, build)
    return _Opened(path, signature, reader, build, metadata.ip_version == 4, None)


def _reason(exc: Exception) -> str:
    if isinstance(exc, maxminddb.InvalidDatabaseError):
        return "not a valid MaxMind DB file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


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


def _check_status(response: httpx.Response, edition: str) -> None:
    status = response.status_code
    if status in (401, 403):
        raise AuthenticationError(
            f"MaxMind refused the license key for {edition}", source=SOURCE, http_status=status
        )
    if not response.is_success:
        raise SourceUnavailableError(
            f"MaxMind download of {edition} failed", source=SOURCE, http_status=status
        )


def _parse_checksum(body: bytes, edition: str) -> str:
    fields = body.decode("ascii", errors="replace").split()
    digest = fields[0].lower() if fields else ""
    if len(digest) != 64 or any(char not in "0123456789abcdef" for char in digest):
        raise SourceUnavailableError(f"malformed checksum file for {edition}", source=SOURCE)
    return digest


def _extract_database(archive: IO[bytes], edition: str, target: Path) -> Path:
    """Copy ``<edition>.mmdb`` out of the tar.gz into a temp file beside ``target``."""
    wanted = f"{edition}.mmdb"
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(handle, "wb") as out, tarfile.open(fileobj=archive, mode="r:gz") as tar:
            member = next((m for m in tar if m.isfile() and Path(m.name).name == wanted), None)
            source = tar.extractfile(member) if member is not None else None
            if source is None:
                raise SourceUnavailableError(f"{wanted} not found in the archive", source=SOURCE)
            shutil.copyfileobj(source, out)
        temp.chmod(0o644)
        _verify_database(temp, edition)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        temp.unlink(missing_ok=True)
        raise SourceUnavailableError(f"broken {edition} archive: {exc}", source=SOURCE) from exc
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _verify_database(path: Path, edition: str) -> None:
    try:
        with maxminddb.open_database(str(path), maxminddb.MODE_AUTO) as reader:
            database_type = reader.metadata().database_type
    except (maxminddb.InvalidDatabaseError, ValueError, OSError) as exc:
        raise SourceUnavailableError(
            f"downloaded {edition} database is unreadable: {exc}", source=SOURCE
        ) from exc
    if database_type != edition:
        raise SourceUnavailableError(
            f"downloaded {edition} archive holds a {database_type} database", source=SOURCE
        )


@contextlib.contextmanager
def _redacted_http_logs(secret: str) -> Iterator[None]:
    """Blank ``secret`` out of records logged by httpx/httpcore while active."""

    def scrub(record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if secret in message:
            record.msg = _scrub(message, secret)
            record.args = None
        return True

    loggers = [logging.getLogger(name) for name in _HTTP_LOGGERS]
    for http_logger in loggers:
        http_logger.addFilter(scrub)
    try:
        yield
    finally:
        for http_logger in loggers:
            http_logger.removeFilter(scrub)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


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

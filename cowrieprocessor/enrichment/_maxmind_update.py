"""Download, verify and install GeoLite2 databases for ``MaxMindClient.update``.

Each archive's SHA-256 is checked against MaxMind's checksum file and the
extracted database is opened once before anything is replaced; the license key
is blanked out of httpx/httpcore log records and of every error message.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import httpx
import maxminddb

from cowrieprocessor.enrichment._maxmind_files import SOURCE
from cowrieprocessor.enrichment.errors import AuthenticationError, SourceUnavailableError

__all__ = ["install_databases"]

# Records keep the logger name of the public module, as before the update code moved here.
logger = logging.getLogger("cowrieprocessor.enrichment.maxmind_client")

_MAX_CHECKSUM_BYTES = 4096
_HTTP_LOGGERS = ("httpx", "httpcore.http11", "httpcore.http2", "httpcore.connection")


def install_databases(
    targets: Sequence[tuple[str, Path]],
    license_key: str | None,
    *,
    download_url: str,
    http_client: httpx.Client | None,
    timeout: float,
) -> list[Path]:
    """Download each ``(edition, target)`` pair and rename the files over the targets.

    Every download is verified before the first file is replaced; if anything
    fails, no file is replaced. ``http_client`` is used when given, else a
    client with ``timeout`` is made for the call. Returns the installed paths.

    Raises:
        AuthenticationError: no license key, or MaxMind refused it (401/403).
        SourceUnavailableError: network failure, other HTTP status, checksum
            mismatch, broken archive, or the files cannot be written.
    """
    if license_key is None:
        raise AuthenticationError(
            "a MaxMind license key is needed to download databases", source=SOURCE
        )
    staged: list[tuple[Path, Path]] = []
    try:
        with _http(http_client, timeout) as client, _redacted_http_logs(license_key):
            downloader = _Downloader(client, download_url, license_key)
            for edition, target in targets:
                staged.append((downloader.fetch_database(edition, target), target))
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
    return [target for _edition, target in targets]


@contextlib.contextmanager
def _http(http_client: httpx.Client | None, timeout: float) -> Iterator[httpx.Client]:
    if http_client is not None:
        yield http_client
        return
    with httpx.Client(timeout=timeout) as client:
        yield client


class _Downloader:
    """Fetches editions from the download URL with the license key as a query parameter."""

    def __init__(self, client: httpx.Client, url: str, key: str) -> None:
        self._client = client
        self._url = url
        self._key = key

    def fetch_database(self, edition: str, target: Path) -> Path:
        """Download, verify and extract one edition next to ``target``; return the temp file."""
        checksum = bytearray()
        self._download(edition, "tar.gz.sha256", checksum.extend, _MAX_CHECKSUM_BYTES)
        expected = _parse_checksum(bytes(checksum), edition)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=target.parent) as archive:
            digest = hashlib.sha256()

            def sink(chunk: bytes) -> None:
                digest.update(chunk)
                archive.write(chunk)

            self._download(edition, "tar.gz", sink, None)
            if digest.hexdigest() != expected:
                raise SourceUnavailableError(
                    f"checksum mismatch for the {edition} download; nothing installed",
                    source=SOURCE,
                )
            archive.seek(0)
            return _extract_database(archive, edition, target)

    def _download(
        self, edition: str, suffix: str, sink: Callable[[bytes], object], limit: int | None
    ) -> None:
        params = {"edition_id": edition, "license_key": self._key, "suffix": suffix}
        try:
            with self._client.stream(
                "GET", self._url, params=params, follow_redirects=True
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
            detail = _scrub(str(exc), self._key)
            raise SourceUnavailableError(
                f"download of {edition} ({suffix}) failed: {type(exc).__name__}: {detail}",
                source=SOURCE,
            ) from None


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

"""The one exception tree of the enrichment sources.

Every error raised by a source client is an :class:`EnrichmentError`. Errors from
geoip2, maxminddb, dnspython, sockets and httpx are translated where they enter
(``raise ... from exc``), so callers catch ours and never a bare ``Exception``.
"Not found" is a result (``None`` or an empty result), never an error.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "EnrichmentError",
    "InvalidIPError",
    "QuotaExceededError",
    "SourceUnavailableError",
]


class EnrichmentError(Exception):
    """Root of all errors raised by the enrichment sources.

    ``source`` names the source (``maxmind``, ``cymru``, ``greynoise``) or ``input``
    for errors about the caller's own data; ``http_status`` is set when an HTTP
    status caused the error.
    """

    def __init__(self, message: str, *, source: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.http_status = http_status

    def __str__(self) -> str:
        text = super().__str__()
        if self.http_status is not None:
            return f"{self.source}: {text} (HTTP {self.http_status})"
        return f"{self.source}: {text}"


class InvalidIPError(EnrichmentError, ValueError):
    """The text given is not an IP address the source can look up."""


class SourceUnavailableError(EnrichmentError):
    """The source could not answer: timeout, refused connection, DNS failure,
    server error, unexpected body, or a missing or corrupt database file."""


class QuotaExceededError(EnrichmentError):
    """The source's request quota is used up (HTTP 429 or the local daily budget)."""


class AuthenticationError(EnrichmentError):
    """The source rejected the credentials (HTTP 401/403)."""

"""GreyNoise Community API client: is an attacker IP an internet scanner or a known service?

One request per IP: ``GET {base_url}/v3/community/{ip}``, with the API key in the
``key`` header when one is given. The community quota is small and daily, so the
client caches answers (7 days by default), can hold itself to a local daily
budget, and after an HTTP 429 sends nothing more until the quota window resets.
Only public IPv4 addresses are ever sent; the Community API covers IPv4 only.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Self

import httpx

from cowrieprocessor import __version__
from cowrieprocessor.enrichment._greynoise_result import (
    SOURCE,
    GreyNoiseResult,
    clean_text,
    parse_result,
)
from cowrieprocessor.enrichment.addresses import is_public, parse_ip
from cowrieprocessor.enrichment.errors import (
    AuthenticationError,
    EnrichmentError,
    InvalidIPError,
    QuotaExceededError,
    SourceUnavailableError,
)
from cowrieprocessor.enrichment.stats import ClientStats, StatsCounter

__all__ = ["DEFAULT_BASE_URL", "SOURCE", "GreyNoiseClient", "GreyNoiseResult"]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.greynoise.io"

_MAX_MESSAGE_IN_ERROR = 200
_MAX_BODY = 64 * 1024
_MAX_RETRY_AFTER = timedelta(days=7)
_MAX_CACHE_ENTRIES = 200_000
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class GreyNoiseClient:
    """Quota-aware client of the GreyNoise Community API (thread-safe).

    ``timeout`` applies to every request, also through an injected ``client``;
    ``retries`` extra attempts follow a server error, timeout or connection
    failure, after ``backoff * 2**n`` seconds. ``daily_budget`` caps the requests
    sent per UTC day. ``clock`` (UTC-aware) and ``sleep`` are injectable.

    Raises:
        ValueError: a negative setting, or an API key that cannot be sent as an
            HTTP header value (the key itself is not shown).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        client: httpx.Client | None = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        daily_budget: int | None = None,
        cache_ttl: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_settings(timeout, retries, backoff, daily_budget, cache_ttl)
        self._api_key = _checked_key(api_key)
        self._owns_http = client is None
        self._http = client if client is not None else httpx.Client(timeout=timeout)
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._daily_budget = daily_budget
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._cache: dict[str, GreyNoiseResult] = {}
        self._blocked_until: datetime | None = None
        self._budget_day: date | None = None
        self._sent_today = 0
        self._stats = StatsCounter()
        self._closed = False

    def __repr__(self) -> str:
        key = "set" if self._api_key else "none"
        return (
            f"GreyNoiseClient(base_url={self._base_url!r}, api_key={key}, "
            f"daily_budget={self._daily_budget!r})"
        )

    def lookup_ip(self, ip: str) -> GreyNoiseResult | None:
        """Return GreyNoise's answer for ``ip``; a "not observed" IP (HTTP 404)
        gives a result with ``noise`` and ``riot`` false.

        Non-public and IPv6 addresses are never sent: the answer is ``None``.

        Raises:
            InvalidIPError: ``ip`` is not an IP address, or GreyNoise refused it (400).
            AuthenticationError: the API key was rejected (401/403).
            QuotaExceededError: HTTP 429, the quota window has not reset yet, or the
                daily budget is used up; no request is sent in the last two cases.
            SourceUnavailableError: timeouts, connection failures or server errors
                after all retries, an unexpected status or body, or a closed client.
        """
        try:
            address = parse_ip(ip, source=SOURCE)
        except InvalidIPError:
            self._stats.error()
            raise
        if not is_public(address) or address.version != 4:
            logger.debug("greynoise: not sending non-public or IPv6 address %s", address)
            return None
        key = str(address)
        result = self._cached(key)
        if result is None:
            try:
                result = self._fetch(key)
            except EnrichmentError:
                self._stats.error()
                raise
            self._store(result)
        if result.noise or result.riot:
            self._stats.hit()
        else:
            self._stats.miss()
        return result

    def get_remaining_quota(self) -> int | None:
        """Requests still allowed today: 0 while blocked after a 429, ``None``
        when no daily budget is set."""
        with self._lock:
            now = self._clock()
            if self._blocked_until is not None and now < self._blocked_until:
                return 0
            if self._daily_budget is None:
                return None
            self._roll_day(now)
            return max(0, self._daily_budget - self._sent_today)

    def stats(self) -> ClientStats:
        return self._stats.snapshot()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        self._closed = True
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _cached(self, ip: str) -> GreyNoiseResult | None:
        with self._lock:
            result = self._cache.get(ip)
            if result is not None and self._clock() - result.fetched_at < self._cache_ttl:
                return result
            self._cache.pop(ip, None)
            return None

    def _store(self, result: GreyNoiseResult) -> None:
        with self._lock:
            if len(self._cache) >= _MAX_CACHE_ENTRIES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[result.ip_address] = result

    def _fetch(self, ip: str) -> GreyNoiseResult:
        if self._closed:
            raise _unavailable("client is closed")
        url = f"{self._base_url}/v3/community/{ip}"
        attempts = self._retries + 1
        reason, status, cause = "", None, None
        for attempt in range(attempts):
            if attempt:
                delay = self._backoff * 2 ** (attempt - 1)
                logger.info("greynoise: retrying %s in %.2fs after: %s", ip, delay, reason)
                self._sleep(delay)
            self._reserve_request()
            try:
                status, headers, body = self._send(url)
            except httpx.TransportError as exc:
                reason, status, cause = _transport_reason(exc, self._timeout), None, exc
                continue
            if status < 500:
                return self._interpret(ip, status, headers, body)
            reason, cause = "server error", None
        message = f"{reason} for {ip} (gave up after {attempts} attempts)"
        raise _unavailable(message, status) from cause

    def _reserve_request(self) -> None:
        with self._lock:
            now = self._clock()
            if self._blocked_until is not None:
                if now < self._blocked_until:
                    raise QuotaExceededError(
                        f"quota exceeded (HTTP 429); no requests until "
                        f"{self._blocked_until.isoformat()}",
                        source=SOURCE,
                    )
                self._blocked_until = None
            self._roll_day(now)
            if self._daily_budget is not None and self._sent_today >= self._daily_budget:
                raise QuotaExceededError(
                    f"daily budget of {self._daily_budget} requests used up until "
                    f"{_next_utc_midnight(now).isoformat()}",
                    source=SOURCE,
                )
            self._sent_today += 1

    def _roll_day(self, now: datetime) -> None:
        today = now.astimezone(UTC).date()
        if today != self._budget_day:
            self._budget_day = today
            self._sent_today = 0

    def _send(self, url: str) -> tuple[int, httpx.Headers, bytes]:
        """One GET; transport errors propagate for the retry loop to handle."""
        headers = {"accept": "application/json", "user-agent": f"cowrieprocessor/{__version__}"}
        if self._api_key:
            headers["key"] = self._api_key
        try:
            with self._http.stream("GET", url, headers=headers, timeout=self._timeout) as reply:
                return reply.status_code, reply.headers, _read_limited(reply)
        except httpx.TransportError:
            raise
        except httpx.HTTPError as exc:
            message = f"unreadable answer ({type(exc).__name__})"
            raise _unavailable(message) from exc
        except RuntimeError as exc:  # httpx refuses to send through a closed client
            raise _unavailable("HTTP client is closed") from exc

    def _interpret(
        self, ip: str, status: int, headers: httpx.Headers, body: bytes
    ) -> GreyNoiseResult:
        if status in (200, 404):
            return parse_result(ip, status, body, self._clock())
        detail = self._detail(body)
        if status == 400:
            raise InvalidIPError(f"GreyNoise refused {ip}{detail}", source=SOURCE, http_status=400)
        if status in (401, 403):
            raise AuthenticationError(
                f"API key rejected or required{detail}", source=SOURCE, http_status=status
            )
        if status == 429:
            until = self._block(headers.get("retry-after"))
            raise QuotaExceededError(
                f"quota exceeded; no requests until {until.isoformat()}{detail}",
                source=SOURCE,
                http_status=429,
            )
        raise _unavailable(f"unexpected answer for {ip}{detail}", status)

    def _block(self, retry_after: str | None) -> datetime:
        now = self._clock()
        until = _retry_after(retry_after, now) or _next_utc_midnight(now)
        with self._lock:
            self._blocked_until = until
        logger.warning("greynoise: quota exceeded (HTTP 429); no requests until %s", until)
        return until

    def _detail(self, body: bytes) -> str:
        """``": <message>"`` from an error body, sanitized and without the key."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return ""
        message = clean_text(data.get("message")) if isinstance(data, dict) else None
        if not message:
            return ""
        if self._api_key:
            message = message.replace(self._api_key, "***")
        return ": " + message[:_MAX_MESSAGE_IN_ERROR]


def _transport_reason(exc: httpx.TransportError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout}s"
    return f"connection failed ({type(exc).__name__})"


def _unavailable(message: str, http_status: int | None = None) -> SourceUnavailableError:
    return SourceUnavailableError(message, source=SOURCE, http_status=http_status)


def _read_limited(reply: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in reply.iter_bytes():
        size += len(chunk)
        if size > _MAX_BODY:
            raise _unavailable(f"answer larger than {_MAX_BODY} bytes", reply.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _next_utc_midnight(now: datetime) -> datetime:
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)


def _retry_after(value: str | None, now: datetime) -> datetime | None:
    """The end of a ``Retry-After`` wait (seconds or an HTTP date), at most 7 days."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = int(text) if len(text) <= 9 else 10**9
        return now + min(timedelta(seconds=seconds), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + _MAX_RETRY_AFTER)


def _checked_key(api_key: str | None) -> str | None:
    if api_key is None or not api_key.strip():
        return None
    key = api_key.strip()
    if not _HEADER_SAFE.fullmatch(key):
        raise ValueError("GreyNoise API key contains characters not allowed in an HTTP header")
    return key


def _check_settings(
    timeout: float, retries: int, backoff: float, budget: int | None, ttl: timedelta
) -> None:
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    if retries < 0 or backoff < 0:
        raise ValueError("retries and backoff must not be negative")
    if budget is not None and budget < 0:
        raise ValueError("daily_budget must not be negative")
    if ttl < timedelta(0):
        raise ValueError("cache_ttl must not be negative")

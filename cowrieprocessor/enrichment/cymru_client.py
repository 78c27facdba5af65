"""Team Cymru IP-to-ASN client: DNS for single addresses, bulk whois for batches.

Team Cymru asks that anything beyond a single address goes through the bulk
whois interface (``begin`` / ``verbose`` / one IP a line / ``end`` on TCP 43)
or DNS, and null-routes hosts that send many single whois queries; it quotes
about 10,000 addresses per bulk query as answering within a minute. This client
therefore sends one TCP connection per batch of ``batch_size`` addresses
(default 500, well within the read timeout) and uses DNS only for
:meth:`CymruClient.lookup_asn`.

Both paths share an in-memory cache (default 90 days), so an address is asked
at most once per run; unrouted (``NA``) rows and "not found" answers are cached
too. Private, loopback, reserved and documentation addresses are never sent.

The network is reached through two small protocols, :class:`TxtResolver` and
:class:`WhoisExchange`, with default implementations over dnspython
(:class:`DnsTxtResolver`) and plain sockets (:class:`SocketWhoisExchange`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

# The default transports live in a private module; they are re-exported here,
# where callers import them from.
from cowrieprocessor.enrichment._cymru_transport import (
    SOURCE,
    DnsTxtResolver,
    SocketWhoisExchange,
    translate_dns_error,
)
from cowrieprocessor.enrichment.addresses import IPAddress, is_public, parse_ip
from cowrieprocessor.enrichment.cymru_parse import (
    BulkRow,
    CymruResult,
    OriginAnswer,
    ParsedBulk,
    as_qname,
    most_specific,
    origin_qname,
    parse_as_txt,
    parse_bulk_response,
    parse_origin_txt,
)
from cowrieprocessor.enrichment.errors import SourceUnavailableError
from cowrieprocessor.enrichment.stats import ClientStats, StatsCounter

__all__ = [
    "SOURCE",
    "CymruClient",
    "CymruResult",
    "DnsTxtResolver",
    "SocketWhoisExchange",
    "TxtResolver",
    "WhoisExchange",
    "translate_dns_error",
]

logger = logging.getLogger(__name__)

_K = TypeVar("_K")
_V = TypeVar("_V")


class TxtResolver(Protocol):
    """Answers DNS TXT queries (the seam of :meth:`CymruClient.lookup_asn`)."""

    def resolve_txt(self, qname: str) -> list[str]:
        """The TXT strings of ``qname`` without DNS quoting; ``[]`` when the name
        or its TXT records do not exist.

        Raises:
            SourceUnavailableError: DNS could not answer.
        """
        ...


class WhoisExchange(Protocol):
    """One bulk whois conversation (the seam of :meth:`CymruClient.bulk_lookup`)."""

    def exchange(self, lines: Sequence[str]) -> str:
        """Send ``lines`` (``begin``, ``verbose``, one IP each, ``end``), each
        followed by a newline, and return the whole answer text.

        Raises:
            SourceUnavailableError: no connection, a timeout, or a connection
                closed before the answer was complete.
        """
        ...


class _TTLCache(Generic[_K, _V]):
    """A thread-safe mapping whose entries expire ``ttl`` after they were stored."""

    def __init__(self, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[_K, tuple[datetime, _V]] = {}

    def get(self, key: _K) -> tuple[bool, _V | None]:
        """``(True, value)`` for a fresh entry, ``(False, None)`` otherwise."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            stored_at, value = entry
            if self._clock() - stored_at >= self._ttl:
                del self._entries[key]
                return False, None
            return True, value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._entries[key] = (self._clock(), value)


class CymruClient:
    """Looks addresses up in Team Cymru's IP-to-ASN service.

    ``whois`` and ``dns`` replace the network transports (tests inject their
    own); ``clock`` gives the UTC-aware time used for ``fetched_at`` and the
    cache, ``sleep`` waits between retries. A failed bulk query is tried
    ``retries`` more times, waiting ``backoff``, then twice as long each time.

    Raises:
        ValueError: ``batch_size`` < 1, or ``retries`` or ``backoff`` negative.
    """

    def __init__(
        self,
        *,
        whois: WhoisExchange | None = None,
        dns: TxtResolver | None = None,
        host: str = "whois.cymru.com",
        port: int = 43,
        batch_size: int = 500,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        cache_ttl: timedelta = timedelta(days=90),
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1 or retries < 0 or backoff < 0:
            raise ValueError("batch_size must be >= 1, retries and backoff >= 0")
        self._whois = whois or SocketWhoisExchange(host, port, connect_timeout, read_timeout)
        self._dns = dns or DnsTxtResolver()
        self._batch_size = batch_size
        self._retries = retries
        self._backoff = backoff
        self._clock = clock or _utcnow
        self._sleep = sleep
        self._cache: _TTLCache[str, CymruResult | None] = _TTLCache(cache_ttl, self._clock)
        self._names: _TTLCache[int, str | None] = _TTLCache(cache_ttl, self._clock)
        self._stats = StatsCounter()

    def lookup_asn(self, ip: str) -> CymruResult | None:
        """Look one address up through DNS (origin zone, then ``AS<n>`` for the name).

        Returns ``None`` for a non-public address (nothing is sent) and for an
        address Team Cymru has no prefix for (NXDOMAIN).

        Raises:
            InvalidIPError: ``ip`` is not an IP address.
            SourceUnavailableError: DNS failed or answered something unreadable.
        """
        address = parse_ip(ip, source=SOURCE)
        if not is_public(address):
            return None
        key = str(address)
        found, cached = self._cache.get(key)
        if found:
            self._count(cached)
            return cached
        try:
            result = self._resolve(address, key)
        except SourceUnavailableError:
            self._stats.error()
            raise
        self._cache.put(key, result)
        self._count(result)
        return result

    def bulk_lookup(self, ips: Iterable[str]) -> dict[str, CymruResult]:
        """Look many addresses up through bulk whois, ``batch_size`` per connection.

        Every string is validated before anything is sent. Duplicates are
        asked once; keys are canonical addresses in the order first given.
        Non-public addresses and addresses the answer has no row for are
        left out; an unrouted address gives a result with ``asn=None``. When a
        batch fails, the batches already answered stay in the cache.

        Raises:
            TypeError: ``ips`` is a single string instead of an iterable of them.
            InvalidIPError: one of ``ips`` is not an IP address.
            SourceUnavailableError: a batch still failed after the retries.
        """
        if isinstance(ips, str):
            raise TypeError("bulk_lookup takes an iterable of addresses, not one string")
        wanted = _public_unique(ips)
        results: dict[str, CymruResult] = {}
        pending: list[str] = []
        for key in wanted:
            found, cached = self._cache.get(key)
            if not found:
                pending.append(key)
                continue
            self._count(cached)
            if cached is not None:
                results[key] = cached
        for start in range(0, len(pending), self._batch_size):
            results.update(self._bulk_batch(pending[start : start + self._batch_size]))
        return {key: results[key] for key in wanted if key in results}

    def stats(self) -> ClientStats:
        """Counts per address asked (cache answers included): hit = a row or
        prefix found, miss = nothing found, error = the lookup raised."""
        return self._stats.snapshot()

    def _bulk_batch(self, batch: list[str]) -> dict[str, CymruResult]:
        try:
            parsed = self._exchange(["begin", "verbose", *batch, "end"])
        except SourceUnavailableError:
            for _ in batch:
                self._stats.error()
            raise
        if parsed.skipped:
            logger.warning(
                "cymru bulk answer: skipped %d malformed line(s), kept %d row(s); first: %r",
                parsed.skipped,
                len(parsed.rows),
                parsed.first_skipped,
            )
        rows: dict[str, BulkRow] = {}
        for row in parsed.rows:
            rows.setdefault(row.ip_address, row)
        fetched_at = self._clock()
        found: dict[str, CymruResult] = {}
        for key in batch:
            match = rows.get(key)
            result = CymruResult.from_row(match, fetched_at) if match is not None else None
            if result is None:
                logger.debug("cymru bulk answer has no row for %s", key)
            else:
                found[key] = result
            self._cache.put(key, result)
            self._count(result)
        return found

    def _exchange(self, lines: list[str]) -> ParsedBulk:
        """One bulk query with retries; an answer of nothing but malformed lines
        (an error message instead of rows) counts as a failed attempt."""
        attempts = self._retries + 1
        for attempt in range(attempts):
            try:
                return _readable(self._whois.exchange(lines))
            except SourceUnavailableError as exc:
                last = exc
                if attempt + 1 < attempts:
                    delay = self._backoff * 2**attempt
                    logger.warning(
                        "cymru bulk whois attempt %d/%d failed (%s); retrying in %.2fs",
                        attempt + 1,
                        attempts,
                        exc.args[0],
                        delay,
                    )
                    self._sleep(delay)
        raise SourceUnavailableError(
            f"bulk whois failed after {attempts} attempt(s): {last.args[0]}", source=SOURCE
        ) from last

    def _resolve(self, address: IPAddress, key: str) -> CymruResult | None:
        texts = self._dns.resolve_txt(origin_qname(address))
        if not texts:
            return None
        origin = most_specific(_parsed_origins(texts))
        if origin is None:
            raise SourceUnavailableError(f"unreadable origin answer for {key}", source=SOURCE)
        name = self._as_name(origin.asn) if origin.asn is not None else None
        return CymruResult(
            ip_address=key,
            asn=origin.asn,
            asn_org=name,
            country_code=origin.country_code,
            registry=origin.registry,
            prefix=origin.prefix,
            allocation_date=origin.allocation_date,
            fetched_at=self._clock(),
        )

    def _as_name(self, asn: int) -> str | None:
        found, cached = self._names.get(asn)
        if found:
            return cached
        name: str | None = None
        for text in self._dns.resolve_txt(as_qname(asn)):
            try:
                answer = parse_as_txt(text)
            except ValueError:
                logger.warning("cymru: unreadable answer for AS%d skipped", asn)
                continue
            if answer.asn == asn:
                name = answer.name
                break
        self._names.put(asn, name)
        return name

    def _count(self, result: CymruResult | None) -> None:
        if result is None:
            self._stats.miss()
        else:
            self._stats.hit()


def _readable(text: str) -> ParsedBulk:
    parsed = parse_bulk_response(text)
    if parsed.skipped and not parsed.rows:
        raise SourceUnavailableError(
            f"bulk answer has no readable row ({parsed.skipped} malformed line(s), "
            f"first: {parsed.first_skipped!r})",
            source=SOURCE,
        )
    return parsed


def _parsed_origins(texts: Iterable[str]) -> list[OriginAnswer]:
    answers: list[OriginAnswer] = []
    for text in texts:
        try:
            answers.append(parse_origin_txt(text))
        except ValueError:
            logger.warning("cymru: unreadable origin answer skipped: %r", text[:120])
    return answers


def _public_unique(ips: Iterable[str]) -> list[str]:
    """Canonical public addresses, first occurrence kept; validates all first."""
    addresses = [parse_ip(ip, source=SOURCE) for ip in ips]
    return list(dict.fromkeys(str(address) for address in addresses if is_public(address)))


def _utcnow() -> datetime:
    return datetime.now(UTC)

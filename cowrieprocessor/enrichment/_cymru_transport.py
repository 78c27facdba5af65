"""Default network transports of ``CymruClient``: dnspython and plain sockets.

:class:`DnsTxtResolver` implements the ``TxtResolver`` protocol and
:class:`SocketWhoisExchange` the ``WhoisExchange`` protocol of
:mod:`cowrieprocessor.enrichment.cymru_client`, which re-exports every name
here; import from there. Nothing here logs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence

import dns.exception
import dns.resolver

from cowrieprocessor.enrichment.errors import SourceUnavailableError

__all__ = ["SOURCE", "DnsTxtResolver", "SocketWhoisExchange", "translate_dns_error"]

#: Source name used in errors and in ``ip_inventory.enrichment``.
SOURCE = "cymru"


def translate_dns_error(exc: Exception, qname: str) -> SourceUnavailableError | None:
    """Map a dnspython or socket error to ours; ``None`` means "not found".

    NXDOMAIN and NoAnswer are "not found"; timeouts, failing or missing
    nameservers and any other DNS or socket error are
    :class:`SourceUnavailableError`.
    """
    if isinstance(exc, dns.resolver.NXDOMAIN | dns.resolver.NoAnswer):
        return None
    if isinstance(exc, dns.exception.Timeout):
        reason = "timed out"
    elif isinstance(exc, dns.resolver.NoNameservers):
        reason = "no nameserver answered (SERVFAIL or refused)"
    elif isinstance(exc, dns.resolver.NoResolverConfiguration):
        reason = "no DNS resolver is configured"
    elif isinstance(exc, OSError):
        reason = f"socket error: {exc.strerror or type(exc).__name__}"
    else:
        reason = f"failed: {type(exc).__name__}"
    return SourceUnavailableError(f"DNS query for {qname} {reason}", source=SOURCE)


class DnsTxtResolver:
    """:class:`~.cymru_client.TxtResolver` over dnspython.

    With ``nameservers=None`` the system configuration (``/etc/resolv.conf``)
    is read on first use. ``timeout`` bounds each server's answer, ``lifetime``
    the whole query including retries.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout: float = 2.0,
        lifetime: float = 5.0,
    ) -> None:
        self._nameservers = list(nameservers) if nameservers is not None else None
        self._port = port
        self._timeout = timeout
        self._lifetime = lifetime
        self._resolver: dns.resolver.Resolver | None = None
        self._lock = threading.Lock()

    def resolve_txt(self, qname: str) -> list[str]:
        """See :meth:`.cymru_client.TxtResolver.resolve_txt`.

        Raises:
            SourceUnavailableError: DNS could not answer.
        """
        try:
            answer = self._get_resolver().resolve(qname, "TXT", search=False)
        except (dns.exception.DNSException, OSError) as exc:
            error = translate_dns_error(exc, qname)
            if error is None:
                return []
            raise error from exc
        return [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in answer]

    def _get_resolver(self) -> dns.resolver.Resolver:
        with self._lock:
            if self._resolver is None:
                resolver = dns.resolver.Resolver(configure=self._nameservers is None)
                if self._nameservers is not None:
                    resolver.nameservers = self._nameservers
                    resolver.port = self._port
                resolver.timeout = self._timeout
                resolver.lifetime = self._lifetime
                self._resolver = resolver
            return self._resolver


class SocketWhoisExchange:
    """:class:`~.cymru_client.WhoisExchange` over one TCP connection per call.

    The answer is read until the server closes the connection; it must end with
    a newline, otherwise the connection was cut mid-answer. ``read_timeout``
    bounds the whole read, ``max_bytes`` the answer size.
    """

    def __init__(
        self,
        host: str = "whois.cymru.com",
        port: int = 43,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        *,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_bytes = max_bytes

    def exchange(self, lines: Sequence[str]) -> str:
        """See :meth:`.cymru_client.WhoisExchange.exchange`.

        Raises:
            SourceUnavailableError: no connection, a timeout, an oversized
                answer, or a connection closed before the answer was complete.
        """
        payload = "".join(f"{line}\n" for line in lines).encode("ascii")
        where = f"{self.host}:{self.port}"
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout)
        except OSError as exc:
            raise _unavailable(f"cannot connect to {where}", exc) from exc
        with sock:
            try:
                sock.settimeout(self.read_timeout)
                sock.sendall(payload)
                data = self._read_all(sock)
            except OSError as exc:
                raise _unavailable(f"no complete answer from {where}", exc) from exc
        if not data.endswith(b"\n"):
            raise SourceUnavailableError(
                f"{where} closed the connection mid-answer after {len(data)} bytes",
                source=SOURCE,
            )
        return data.decode("utf-8", errors="replace")

    def _read_all(self, sock: socket.socket) -> bytes:
        deadline = time.monotonic() + self.read_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("read timed out")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise OSError(f"answer larger than {self.max_bytes} bytes")
            chunks.append(chunk)


def _unavailable(what: str, exc: OSError) -> SourceUnavailableError:
    if isinstance(exc, TimeoutError):
        reason = "timed out"
    else:
        reason = exc.strerror or (str(exc) or type(exc).__name__)
    return SourceUnavailableError(f"{what}: {reason}", source=SOURCE)

"""A loopback TCP server speaking Team Cymru's bulk whois protocol, for tests.

It listens on 127.0.0.1 (port 0, so the system picks a free port), reads a
query (``begin`` / ``verbose`` / one IP a line / ``end``), records it, and
answers through a *responder*: a function from the asked IPs to the answer
text. Fault modes reproduce what a real server or network does to a client::

    with WhoisServer(rows_responder({"8.8.8.8": row})) as srv:
        client = CymruClient(host="127.0.0.1", port=srv.port)
        ...
        assert srv.connections == 1
        assert srv.queries == [["8.8.8.8"]]
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

__all__ = [
    "GARBAGE_LINES",
    "Fault",
    "Responder",
    "WhoisServer",
    "bulk_header",
    "canned_responder",
    "generated_responder",
    "rows_responder",
    "synthetic_row",
]

#: Receives the IPs of one query (in the order sent), returns the answer text.
Responder = Callable[[Sequence[str]], str]

#: Lines that :attr:`Fault.GARBAGE` mixes into an answer; none of them is a row.
GARBAGE_LINES = (
    "this line is not a row",
    "15169   | 74.125.225.229   | 74.125",
    "\x00\x01\x02 | | | | | | \x7f",
    "AS15169 | 74.125.225.229 | 74.125.225.0/24 | US | arin | 2007-03-13 | X",
    "Error: no ASN or IP match on line 3.",
    "15169 | 999.1.2.3 | 74.125.225.0/24 | US | arin | 2007-03-13 | X",
    "15169 | 74.125.225.229 | 74.125.225.0/24 | US | arin | 13/03/2007 | X",
)

_POLL = 0.05
_QUERY_DEADLINE = 10.0


class Fault(enum.Enum):
    """How the server misbehaves."""

    NONE = "none"
    #: Nothing listens on the port: every connection is refused.
    REFUSE = "refuse"
    #: Accepts and reads the query, then never answers (until the server closes).
    NEVER_ANSWER = "never_answer"
    #: Sends about half of the answer, cut inside a line, then closes.
    CLOSE_MID_RESPONSE = "close_mid_response"
    #: Answers with a garbage line before every line of the responder's answer.
    GARBAGE = "garbage"


def bulk_header(now: datetime | None = None) -> str:
    """The first line of a bulk answer: ``Bulk mode; whois.cymru.com [...]``."""
    moment = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S +0000")
    return f"Bulk mode; whois.cymru.com [{moment}]"


def canned_responder(text: str) -> Responder:
    """Answer every query with ``text``, verbatim."""
    return lambda _ips: text


def rows_responder(mapping: Mapping[str, str]) -> Responder:
    """Answer a header, then ``mapping[ip]`` for each asked IP found in it.

    Keys are compared in canonical form; asked IPs missing from ``mapping``
    get no line at all (not even an ``NA`` row).
    """
    rows = {str(ipaddress.ip_address(key)): row for key, row in mapping.items()}
    return generated_responder(lambda ip: rows.get(_canonical(ip)))


def generated_responder(make_row: Callable[[str], str | None] | None = None) -> Responder:
    """Answer a header, then ``make_row(ip)`` per asked IP (``None``: no line).

    The default makes a :func:`synthetic_row` for every IP.
    """
    row_for = make_row or synthetic_row

    def respond(ips: Sequence[str]) -> str:
        lines = [bulk_header()]
        lines.extend(row for row in map(row_for, ips) if row is not None)
        return "\n".join(lines) + "\n"

    return respond


def synthetic_row(ip: str, asn: int = 64500, name: str = "EXAMPLE-AS Example Net, US") -> str:
    """A well-formed verbose row for ``ip`` (a /24 or /48 prefix, ARIN, 2000-01-01)."""
    address = ipaddress.ip_address(ip)
    length = 24 if address.version == 4 else 48
    prefix = ipaddress.ip_network(f"{address}/{length}", strict=False)
    return f"{asn:<7} | {ip:<16} | {prefix!s:<19} | US | arin     | 2000-01-01 | {name}"


class WhoisServer:
    """Threaded bulk whois server on 127.0.0.1; a context manager.

    ``fault`` applies to every connection; ``faults`` overrides it for the
    first connections in order (``Fault.REFUSE`` only works as ``fault``).
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        fault: Fault = Fault.NONE,
        faults: Sequence[Fault] = (),
    ) -> None:
        if Fault.REFUSE in faults:
            raise ValueError("Fault.REFUSE applies to the whole server, pass it as fault=")
        self.responder = responder or generated_responder()
        self.fault = fault
        self._faults = list(faults)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections = 0
        self._queries: list[list[str]] = []
        self._requests: list[str] = []
        self._listener: socket.socket | None = None
        self._port = 0

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    @property
    def queries(self) -> list[list[str]]:
        """The IP lines of each query read so far (without begin/verbose/end)."""
        with self._lock:
            return [list(query) for query in self._queries]

    @property
    def received_ips(self) -> list[str]:
        """Every IP line received, over all queries."""
        return [ip for query in self.queries for ip in query]

    @property
    def requests(self) -> list[str]:
        """The raw text of each query read so far."""
        with self._lock:
            return list(self._requests)

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, 0))
        self._port = listener.getsockname()[1]
        self._listener = listener
        if self.fault is Fault.REFUSE:
            return  # bound but not listening: the kernel refuses connections
        listener.listen(64)
        listener.settimeout(_POLL)
        self._spawn(functools.partial(self._accept_loop, listener))

    def close(self) -> None:
        """Stop accepting, release every connection and wait for the threads."""
        self._stop.set()
        joined = 0
        while True:
            with self._lock:
                pending = self._threads[joined:]
            if not pending:
                break
            for thread in pending:
                thread.join(timeout=5)
            joined += len(pending)
        if self._listener is not None:
            self._listener.close()

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                index = self._connections
                self._connections += 1
            conn.settimeout(_POLL)
            self._spawn(functools.partial(self._serve, conn, index))

    def _serve(self, conn: socket.socket, index: int) -> None:
        with conn:
            lines = self._read_query(conn)
            if lines is None:
                return
            ips = [line for line in lines if line not in ("begin", "verbose", "end")]
            with self._lock:
                self._queries.append(ips)
                self._requests.append("".join(f"{line}\n" for line in lines))
            fault = self._faults[index] if index < len(self._faults) else self.fault
            if fault is Fault.NEVER_ANSWER:
                self._stop.wait()
                return
            _send(conn, _shape(self.responder(ips), fault))

    def _read_query(self, conn: socket.socket) -> list[str] | None:
        """The query's lines up to and including ``end``; None if the server stops."""
        data = b""
        waited = 0.0
        while not self._stop.is_set() and waited < _QUERY_DEADLINE:
            if b"\nend\n" in b"\n" + data or data.endswith(b"\nend"):
                break
            try:
                chunk = conn.recv(65536)
            except TimeoutError:
                waited += _POLL
                continue
            except OSError:
                return None
            if not chunk:
                break
            data += chunk
        else:
            return None
        text = data.decode("utf-8", errors="replace")
        return [line.strip() for line in text.splitlines() if line.strip()]


def _shape(text: str, fault: Fault) -> bytes:
    data = text.encode("utf-8")
    if fault is Fault.CLOSE_MID_RESPONSE:
        cut = max(1, len(data) // 2)
        while cut > 1 and data[cut - 1 : cut] == b"\n":
            cut -= 1
        return data[:cut]
    if fault is Fault.GARBAGE:
        mixed: list[str] = []
        for number, line in enumerate(text.splitlines()):
            mixed.extend((GARBAGE_LINES[number % len(GARBAGE_LINES)], line))
        return ("\n".join(mixed) + "\n").encode("utf-8")
    return data


def _send(conn: socket.socket, data: bytes) -> None:
    conn.settimeout(5)
    try:
        conn.sendall(data)
    except OSError:
        return


def _canonical(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip

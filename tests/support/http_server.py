"""A small HTTP server on 127.0.0.1 for tests of network clients.

The server answers every request by calling a handler function
``(method, path, headers) -> (status, headers, body)`` and keeps a record of the
requests it received, so a test can assert what a client sent, or that it sent
nothing. A handler may return a :class:`Reply` instead of a tuple to ask for a
fault: a slow answer (``delay``) or a connection closed without an answer
(``drop``).

>>> with HTTPTestServer(lambda method, path, headers: (200, {}, b"ok")) as srv:
...     srv.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self

__all__ = [
    "HTTPTestServer",
    "Handler",
    "RecordedRequest",
    "Reply",
    "ReplyLike",
    "not_found",
    "sequence",
    "static",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server answers; ``delay`` and ``drop`` are the fault modes.

    ``delay`` waits that many seconds before answering (cut short when the server
    stops); ``drop`` closes the connection without sending any response.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    drop: bool = False


ReplyLike = Reply | tuple[int, Mapping[str, str], bytes]
Handler = Callable[[str, str, Mapping[str, str]], ReplyLike]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as received; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""


def not_found(method: str, path: str, headers: Mapping[str, str]) -> ReplyLike:
    """The default handler: 404 with an empty body."""
    return (404, {}, b"")


def static(status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Handler:
    """A handler giving the same answer to every request."""
    reply = Reply(status, dict(headers or {}), body)

    def handler(method: str, path: str, headers: Mapping[str, str]) -> ReplyLike:
        return reply

    return handler


def sequence(*replies: ReplyLike) -> Handler:
    """A handler giving ``replies`` in order, then repeating the last one."""
    if not replies:
        raise ValueError("sequence() needs at least one reply")
    pending = list(replies)
    lock = threading.Lock()

    def handler(method: str, path: str, headers: Mapping[str, str]) -> ReplyLike:
        with lock:
            return pending.pop(0) if len(pending) > 1 else pending[0]

    return handler


class HTTPTestServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 with a free port.

    Use it as a context manager; ``url`` is ``http://127.0.0.1:<port>`` and
    ``requests`` a snapshot of what was received so far. ``handler`` may be
    replaced while the server runs.
    """

    def __init__(self, handler: Handler = not_found, *, request_timeout: float = 10.0) -> None:
        self.handler = handler
        self._records: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _make_request_handler(self, request_timeout))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop serving, cut short pending delays and wait for handler threads."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

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

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._records.append(request)

    def _answer(self, request: RecordedRequest) -> Reply:
        reply = self.handler(request.method, request.path, request.headers)
        if isinstance(reply, Reply):
            return reply
        status, headers, body = reply
        return Reply(status, headers, body)

    def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False when the server is stopping."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True


def _make_request_handler(
    owner: HTTPTestServer, request_timeout: float
) -> type[BaseHTTPRequestHandler]:
    class _RequestHandler(BaseHTTPRequestHandler):
        timeout = request_timeout

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self.rfile.read(length) if length > 0 else b"",
            )
            owner._record(request)
            reply = owner._answer(request)
            if not owner._wait(reply.delay) or reply.drop:
                self.close_connection = True
                return
            try:
                self._send(reply, with_body=self.command != "HEAD")
            except OSError:
                self.close_connection = True  # the client went away first

        def _send(self, reply: Reply, *, with_body: bool) -> None:
            self.send_response(reply.status)
            names = {name.lower() for name in reply.headers}
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if "content-length" not in names:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if with_body:
                self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._handle()

        def do_HEAD(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

        def do_DELETE(self) -> None:
            self._handle()

        def log_message(self, format: str, *args: object) -> None:
            """Stay quiet: tests assert on :attr:`HTTPTestServer.requests`."""

    return _RequestHandler

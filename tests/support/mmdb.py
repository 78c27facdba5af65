"""Test helpers for MaxMind databases: archives and a loopback download server."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

__all__ = ["DownloadServer", "Reply", "geolite2_archive", "serve_downloads", "sha256_line"]


def geolite2_archive(database: Path, edition: str, release: str = "20240102") -> bytes:
    """A tar.gz laid out like MaxMind's: ``<edition>_<release>/<edition>.mmdb`` plus text files."""
    buffer = io.BytesIO()
    folder = f"{edition}_{release}"
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in (
            ("COPYRIGHT.txt", b"Synthetic test data\n"),
            (f"{edition}.mmdb", database.read_bytes()),
            ("LICENSE.txt", b"Test only\n"),
        ):
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def sha256_line(payload: bytes, filename: str = "archive.tar.gz") -> bytes:
    """The body of a ``suffix=tar.gz.sha256`` response for ``payload``."""
    return f"{hashlib.sha256(payload).hexdigest()}  {filename}\n".encode()


@dataclass(frozen=True)
class Reply:
    """What the server answers for one (edition, suffix)."""

    status: int = 200
    body: bytes = b""


@dataclass
class DownloadServer:
    """State of a running loopback server: its URL, its replies and the queries it saw."""

    url: str
    replies: dict[tuple[str, str], Reply]
    queries: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def serve_downloads(replies: dict[tuple[str, str], Reply]) -> Iterator[DownloadServer]:
    """Serve ``replies`` keyed by ``(edition_id, suffix)`` on 127.0.0.1 (any free port).

    Unknown keys get 404. ``replies`` may be changed while the server runs.
    """
    state = DownloadServer(url="", replies=replies)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
            state.queries.append(query)
            key = (query.get("edition_id", ""), query.get("suffix", ""))
            reply = state.replies.get(key, Reply(404, b"not found"))
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            """Keep the test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/app/geoip_download"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""Every series name we ship exists in a real scrape of ``cowrieprocessor enrich``.

The enrich command runs as a subprocess on a synthetic Cowrie log with synthetic
GeoLite2 databases (offline; Cymru off), serves ``/metrics`` on 127.0.0.1 and
lingers after the run; the test scrapes it and checks the dashboard, the rules
and the docs' PromQL against what it served.
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from cowrieprocessor.demo.geodb import GeoRecord, demo_records, write_geolite2_databases
from tests.support.http_server import HTTPTestServer, Reply, sequence
from tests.support.promql import scraped_sample_names, shipped_queries, unknown_names

pytestmark = pytest.mark.slow

_T = TypeVar("_T")
_CLI = "import sys; from cowrieprocessor.cli import main; sys.exit(main())"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(probe: Callable[[], _T | None], what: str, timeout: float = 30.0) -> _T:
    """Call ``probe`` until it returns something other than ``None``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def write_cowrie_log(path: Path, ips: Sequence[str]) -> Path:
    """One connect and one closed event per IP, as Cowrie writes them."""
    lines = []
    for index, ip in enumerate(ips):
        session = f"{index:012x}"
        for second, eventid in ((0, "cowrie.session.connect"), (5, "cowrie.session.closed")):
            event = {
                "eventid": eventid,
                "session": session,
                "src_ip": ip,
                "timestamp": f"2024-05-01T12:{index % 60:02d}:{second:02d}.000000Z",
                "sensor": "honeypot-1",
            }
            lines.append(json.dumps(event))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def first_hosts(records: Sequence[GeoRecord]) -> list[str]:
    """The first host address of each record's network."""
    return [str(ipaddress.ip_network(record.network).network_address + 1) for record in records]


@dataclass(frozen=True)
class EnrichRun:
    """A running ``cowrieprocessor enrich`` subprocess and its metrics URL."""

    process: subprocess.Popen[str]
    metrics_url: str


@contextmanager
def enrich_process(
    log: Path,
    database_url: str,
    maxmind_dir: Path,
    port: int,
    *,
    linger: float,
    extra: Sequence[str] = (),
) -> Iterator[EnrichRun]:
    """Run the enrich command; on exit stop it by its PID if it still runs."""
    command = [
        sys.executable, "-c", _CLI, "enrich", str(log),
        "--db", database_url, "--no-cymru", "--maxmind-dir", str(maxmind_dir),
        "--metrics-port", str(port), "--metrics-linger", str(linger), "--quiet", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield EnrichRun(process, f"http://127.0.0.1:{port}/metrics")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def scrape_when(run: EnrichRun, ready: Callable[[str], bool]) -> str:
    """Scrape ``/metrics`` until ``ready(text)``; fails early if the command died."""

    def probe() -> str | None:
        if run.process.poll() is not None:
            _out, err = run.process.communicate()
            raise AssertionError(f"enrich exited with {run.process.returncode}: {err[-2000:]}")
        try:
            response = httpx.get(run.metrics_url, timeout=2.0, trust_env=False)
        except httpx.TransportError:
            return None
        return response.text if response.status_code == 200 and ready(response.text) else None

    return wait_for(probe, f"{run.metrics_url} to report the finished run", timeout=60)


def gauge_value(exposition: str, name: str) -> float | None:
    """The value of an unlabelled-by-us gauge in a text exposition, or ``None``."""
    for line in exposition.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_every_shipped_name_is_in_a_real_scrape(tmp_path: Path) -> None:
    # 15 ASNs over 40 networks, enriched 4 IPs per batch: later batches meet ASNs that
    # earlier ones created, so the run both creates and updates inventory rows.
    records = demo_records(40, seed=7, asn_count=15)
    maxmind_dir = tmp_path / "geoip"
    write_geolite2_databases(maxmind_dir, records)
    log = write_cowrie_log(tmp_path / "cowrie.json", first_hosts(records))
    expected_size = len({record.asn for record in records})
    database_url = f"sqlite:///{tmp_path / 'inventory.sqlite'}"
    # GreyNoise answers once, then refuses (HTTP 429): the run reports its quota as 0.
    not_observed = json.dumps({"noise": False, "riot": False, "message": "not observed"})
    greynoise_replies = sequence(
        Reply(404, {"content-type": "application/json"}, not_observed.encode()),
        Reply(429, {"retry-after": "3600"}, b'{"message": "rate limit"}'),
    )

    with (
        HTTPTestServer(greynoise_replies) as greynoise,
        enrich_process(
            log,
            database_url,
            maxmind_dir,
            free_port(),
            linger=30,
            extra=("--batch-size", "4", "--greynoise", "--greynoise-url", greynoise.url),
        ) as run,
    ):
        text = scrape_when(run, lambda t: gauge_value(t, "asn_inventory_size") == expected_size)

    scraped = scraped_sample_names(text)
    assert {
        "asn_inventory_records_created_total",
        "asn_inventory_records_updated_total",
        "asn_inventory_operation_duration_seconds_bucket",
        "enrichment_ips_total",
        "enrichment_lookups_total",
        "enrichment_greynoise_quota_remaining",
        "target_info",
    } <= scraped
    queries = shipped_queries()
    assert len(queries) > 40
    assert unknown_names(queries, scraped) == {}

"""A real Prometheus scrapes real enrichment runs and evaluates the shipped rules.

Prometheus (the Debian ``prometheus`` binary) runs on 127.0.0.1 with a temporary
data directory, a 1 s scrape and rule interval and
``deploy/prometheus/cowrieprocessor-rules.yml``. Two ``cowrieprocessor enrich``
runs share one SQLite inventory and one metrics port: the first creates 12 ASNs,
the second 5 more. Counters are exported from their first increment, so a run
that finishes between two scrapes shows no rate on its own; the second process
restarts every counter below the first one's final value, which Prometheus
counts as a reset plus a real increase. The test then checks through the HTTP
API that ``asn_inventory_size`` is 17 and that the creation-rate and p95
recording rules agree with the raw samples Prometheus holds.
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from cowrieprocessor.demo.geodb import GeoRecord, write_geolite2_databases
from tests.integration.test_metric_names_scrape import (
    enrich_process,
    first_hosts,
    free_port,
    scrape_when,
    wait_for,
    write_cowrie_log,
)
from tests.support.promql import RULES_YML, prometheus_binary

pytestmark = pytest.mark.slow

FIRST_RUN_ASNS = 12
SECOND_RUN_ASNS = 5
RATE_WINDOW_S = 300.0  # the [5m] of the recording rules
CREATED_RATE = "instance_source:asn_inventory_records_created:rate5m"
CREATE_P95 = "instance_operation:asn_inventory_operation_duration_seconds:p95_5m"


@dataclass(frozen=True)
class PrometheusServer:
    """A running Prometheus and a client for its HTTP API."""

    process: subprocess.Popen[str]
    api: httpx.Client

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, str | float] = {"query": expr}
        if at is not None:
            params["time"] = at
        response = self.api.get("/api/v1/query", params=params)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def _records() -> list[GeoRecord]:
    """17 ASNs, one /24 each, all in one country so one series holds all creations."""
    return [
        GeoRecord(
            f"{ipaddress.IPv4Address('45.0.0.0') + 256 * index}/24",
            country_code="US",
            country_name="United States",
            asn=64512 + index,
            asn_org=f"Synthetic Hosting US {index} (demo data)",
        )
        for index in range(FIRST_RUN_ASNS + SECOND_RUN_ASNS)
    ]


def _config(path: Path, metrics_port: int) -> Path:
    path.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 900ms\n"
        "  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES_YML}\n"
        "scrape_configs:\n"
        "  - job_name: cowrieprocessor\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def metrics_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path, metrics_port: int) -> Iterator[PrometheusServer]:
    """Start Prometheus on 127.0.0.1; stop it by its PID afterwards."""
    binary = prometheus_binary("prometheus")
    port = free_port()
    command = [
        binary,
        f"--config.file={_config(tmp_path / 'prometheus.yml', metrics_port)}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    log = (tmp_path / "prometheus.log").open("w", encoding="utf-8")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0, trust_env=False)
    try:
        wait_for(lambda: _ready(api, process, tmp_path / "prometheus.log"), "Prometheus to start")
        # Service discovery hands over new targets in 5 s steps; wait until ours is listed.
        wait_for(lambda: _target_listed(api), "the scrape target to be listed")
        yield PrometheusServer(process, api)
    finally:
        api.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _ready(api: httpx.Client, process: subprocess.Popen[str], log: Path) -> bool | None:
    if process.poll() is not None:
        raise AssertionError(f"prometheus exited: {log.read_text(encoding='utf-8')[-2000:]}")
    try:
        return True if api.get("/-/ready").status_code == 200 else None
    except httpx.TransportError:
        return None


def _target_listed(api: httpx.Client) -> bool | None:
    targets = api.get("/api/v1/targets").json()["data"]["activeTargets"]
    return True if targets else None


def _run_and_wait(
    server: PrometheusServer,
    tmp_path: Path,
    metrics_port: int,
    hosts: Sequence[str],
    expected_size: int,
) -> float:
    """One enrich run; returns a time at which Prometheus had scraped its final values 4 times."""
    log = write_cowrie_log(tmp_path / f"cowrie-{expected_size}.json", hosts)
    database_url = f"sqlite:///{tmp_path / 'inventory.sqlite'}"
    with enrich_process(log, database_url, tmp_path / "geoip", metrics_port, linger=8) as run:
        scrape_when(run, lambda text: "asn_inventory_size{" in text)
        size = f'asn_inventory_size{{job="cowrieprocessor"}} == {expected_size}'
        query = f"count_over_time(({size})[1m:1s])"
        wait_for(lambda: _at_least(server.query(query), 4), f"4 scrapes of size {expected_size}")
        checked_at = time.time()
        assert run.process.wait(timeout=30) == 0
    return checked_at


def _at_least(result: list[dict[str, Any]], count: int) -> bool | None:
    return True if result and float(result[0]["value"][1]) >= count else None


def _raw_increase(values: Sequence[float]) -> float:
    """What Prometheus counts as the increase of a counter's samples, resets included."""
    return sum(b if b < a else b - a for a, b in pairwise(values))


def _last_recorded(server: PrometheusServer, series: str, at: float) -> tuple[float, float]:
    result = server.query(f"{series}[30s]", at=at)
    assert len(result) == 1, result
    stamp, value = result[0]["values"][-1]
    return float(stamp), float(value)


def _raw(server: PrometheusServer, selector: str, at: float) -> dict[str, list[float]]:
    """Raw samples in the rule's [5m] window ending at ``at``, keyed by the ``le`` label."""
    result = server.query(f"{selector}[5m]", at=at)
    return {
        item["metric"].get("le", ""): [float(value) for _stamp, value in item["values"]]
        for item in result
    }


def test_prometheus_evaluates_the_shipped_rules_on_real_runs(
    prometheus: PrometheusServer, tmp_path: Path, metrics_port: int
) -> None:
    records = _records()
    write_geolite2_databases(tmp_path / "geoip", records)
    hosts = first_hosts(records)

    _run_and_wait(prometheus, tmp_path, metrics_port, hosts[:FIRST_RUN_ASNS], FIRST_RUN_ASNS)
    at = _run_and_wait(prometheus, tmp_path, metrics_port, hosts[FIRST_RUN_ASNS:], len(records))

    size = prometheus.query('asn_inventory_size{job="cowrieprocessor"}', at=at)
    assert [float(item["value"][1]) for item in size] == [len(records)]

    # Creation rate: the recorded value against the increase in the raw samples.
    rule = f'{CREATED_RATE}{{job="cowrieprocessor", source="maxmind"}}'
    stamp, rate = _last_recorded(prometheus, rule, at)
    raw = _raw(prometheus, 'asn_inventory_records_created_total{source="maxmind"}', stamp)
    increase = sum(_raw_increase(values) for values in raw.values())
    assert increase >= SECOND_RUN_ASNS
    # rate() extrapolates the increase over at most ~1.6 scrape intervals more than it saw.
    assert increase / RATE_WINDOW_S <= rate <= 1.5 * increase / RATE_WINDOW_S

    # p95 of creates: within the buckets that received observations in the window.
    p95_rule = f'{CREATE_P95}{{job="cowrieprocessor", operation="create"}}'
    stamp, p95 = _last_recorded(prometheus, p95_rule, at)
    buckets = _raw(
        prometheus, 'asn_inventory_operation_duration_seconds_bucket{operation="create"}', stamp
    )
    low, high = _observed_bucket_range(buckets)
    assert low <= p95 <= high
    assert 0.0 < p95 <= 1.0


def _observed_bucket_range(buckets: dict[str, list[float]]) -> tuple[float, float]:
    """Lower edge of the lowest and upper edge of the highest bucket that held observations.

    Whatever resets and extrapolation do to the per-bucket rates, the quantile of
    those rates lies between these edges (``histogram_quantile`` answers the
    largest finite bound for the ``+Inf`` bucket).
    """
    edges = sorted((float(le), le) for le in buckets)
    columns = [buckets[le] for _bound, le in edges]
    assert len({len(column) for column in columns}) == 1, buckets
    finite = [bound for bound, _le in edges if bound != float("inf")]
    used: set[int] = set()
    for sample in zip(*columns, strict=True):
        below = 0.0
        for index, count in enumerate(sample):
            if count > below:
                used.add(index)
            below = count
    assert used, buckets
    lowest, highest = min(used), max(used)
    low = finite[lowest - 1] if lowest > 0 else 0.0
    return low, finite[min(highest, len(finite) - 1)]

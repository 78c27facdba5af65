"""``enrich`` on the three real Cowrie logs of ``../shared/data/cowrie``, offline.

MaxMind knows some of the 109 attacker IPs (databases written at test time),
Team Cymru's loopback whois answers generated rows for the rest and GreyNoise is
a loopback server; the numbers to find are those of the samples' README.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cowrieprocessor.demo.geodb import GeoRecord
from tests.integration.test_cli import (
    Offline,
    cli_env,
    offline_sources,
    run_cli,
    scalar,
    snapshot,
)
from tests.support.whois_server import synthetic_row

pytestmark = pytest.mark.shared_data

EVENTS, SESSIONS, UNIQUE_IPS = 3998, 927, 109
MAXMIND_SHARE = 40  # the first 40 IPs (sorted) get a MaxMind record


def log_ips(logs: Path) -> list[str]:
    ips: set[str] = set()
    for path in sorted(logs.glob("cowrie.json.*")):
        with path.open(encoding="utf-8") as stream:
            ips.update(json.loads(line)["src_ip"] for line in stream if line.strip())
    return sorted(ips, key=ipaddress.ip_address)


def maxmind_records(ips: list[str]) -> list[GeoRecord]:
    """One /32 per covered IP, spread over five synthetic private-use ASNs."""
    return [
        GeoRecord(
            network=f"{ip}/32",
            country_code="NL",
            country_name="Netherlands",
            city="Amsterdam",
            latitude=52.37,
            longitude=4.89,
            accuracy_radius=50,
            asn=64800 + number % 5,
            asn_org=f"Synthetic test AS {number % 5} (test data)",
        )
        for number, ip in enumerate(ips)
    ]


@pytest.fixture
def real_logs(shared_data: Path, tmp_path: Path) -> Iterator[tuple[Path, Offline, list[str]]]:
    logs = shared_data / "cowrie"
    ips = log_ips(logs)
    covered, rest = ips[:MAXMIND_SHARE], ips[MAXMIND_SHARE:]
    rows = {ip: synthetic_row(ip, asn=64900 + n % 7) for n, ip in enumerate(rest)}
    with offline_sources(tmp_path / "maxmind", maxmind_records(covered), rows) as offline:
        yield logs, offline, ips


def test_the_real_logs_are_counted_exactly_and_a_rerun_changes_nothing(
    real_logs: tuple[Path, Offline, list[str]], db_url: str
) -> None:
    logs, offline, ips = real_logs
    assert len(ips) == UNIQUE_IPS
    args = ["enrich", str(logs), "--db", db_url, "--json", "--batch-size", "50", *offline.args()]

    first = run_cli(*args, env=cli_env())
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["events"], summary["sessions"], summary["unique_ips"]) == (
        EVENTS,
        SESSIONS,
        UNIQUE_IPS,
    )
    assert summary["bad_lines"] == 0
    assert summary["maxmind_hits"] == MAXMIND_SHARE
    assert summary["cymru_hits"] == UNIQUE_IPS - MAXMIND_SHARE
    assert summary["greynoise_hits"] == UNIQUE_IPS
    assert summary["errors"] == 0
    assert summary["inventory_size"] == 5 + 7
    top = summary["top_asns"]
    assert len(top) == 10
    assert [row["sessions"] for row in top] == sorted(
        (row["sessions"] for row in top), reverse=True
    )
    for row in top:  # one run into an empty database: this run's counts are all the counts
        sql = "SELECT total_session_count FROM asn_inventory WHERE asn_number = :asn"
        assert row["sessions"] == scalar(db_url, sql, asn=row["asn"])
    assert scalar(db_url, "SELECT sum(session_count) FROM ip_inventory") == SESSIONS
    assert scalar(db_url, "SELECT sum(total_session_count) FROM asn_inventory") == SESSIONS
    before = snapshot(db_url)

    second = run_cli(*args, env=cli_env())
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["cache_hits"] == UNIQUE_IPS
    assert snapshot(db_url) == before

    rebuild = run_cli("asn", "rebuild-counts", "--db", db_url, env=cli_env())
    assert rebuild.returncode == 0, rebuild.stderr
    assert rebuild.stdout.startswith("no drift")

"""A GreyNoise key and a database password never show: logs, stderr, status, spans, metrics.

The CLI runs with ``-vv`` (debug logs), console telemetry (every span and metric point
printed on stderr), a status file and a scraped /metrics endpoint, through a run that
succeeds and through runs where GreyNoise refuses the key, GreyNoise echoes the key,
the database does not exist and the OTLP collector is down.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.integration.test_cli import (
    GREYNOISE_KEY,
    PG_PASSWORD,
    LogFacts,
    Offline,
    cli_env,
    free_port,
    read_status_file,
    run_cli,
    start_cli,
    wait_for,
)
from tests.support.http_server import Handler, Reply

pytestmark = pytest.mark.postgres

OTLP_TOKEN = "otlp-token-not-to-be-shown-9137"


def with_password(url: str) -> str:
    return url.replace(
        "postgresql+psycopg://postgres@", f"postgresql+psycopg://postgres:{PG_PASSWORD}@"
    )


@pytest.fixture
def secret_url(pg_url: str) -> str:
    return with_password(pg_url)


def run_and_collect(
    offline: Offline, facts: LogFacts, db_url: str, tmp_path: Path, **env: str
) -> tuple[int, str, str, str]:
    """Run enrich; return (exit code, stdout + stderr, status file text, /metrics text)."""
    status_dir = tmp_path / "status"
    port = free_port()
    process = start_cli(
        "enrich", str(facts.path), "--db", db_url, "-vv", "--console-telemetry",
        "--status-dir", str(status_dir), "--metrics-port", str(port), "--metrics-linger", "10",
        *offline.args(),
        env=cli_env(**env),
    )  # fmt: skip
    scrape = ""
    try:
        wait_for(
            lambda: (
                process.poll() is not None
                or (read_status_file(status_dir) or {}).get("phase") == "finished"
            ),
            what="the run to end",
        )
        if process.poll() is None:  # finished and lingering: read the final metrics
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                scrape = reply.read().decode()
            process.terminate()
    finally:
        stdout, stderr = process.communicate(timeout=60)
    status_path = status_dir / "enrichment.json"
    status = status_path.read_text() if status_path.exists() else ""
    return process.returncode, stdout + stderr, status, scrape


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in (GREYNOISE_KEY, PG_PASSWORD, OTLP_TOKEN):
            assert secret not in text


def test_a_successful_run_shows_no_secret(
    scenario: tuple[Offline, LogFacts], secret_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    code, output, status, scrape = run_and_collect(offline, facts, secret_url, tmp_path)

    assert code == 0, output
    # The places looked at really hold what they should: spans, metrics, status, requests.
    assert "cascade_enricher.ensure_asn_inventory" in output
    assert "asn_inventory_records_created_total" in scrape
    assert json.loads(status)["phase"] == "finished"
    assert {r.headers.get("key") for r in offline.greynoise.requests} == {GREYNOISE_KEY}
    assert_no_secret(output, status, scrape)


def _refusing(status: int, body: bytes) -> Handler:
    def handle(method: str, path: str, headers: Mapping[str, str]) -> Reply:
        return Reply(status, {"content-type": "application/json"}, body)

    return handle


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, b'{"message": "invalid api key"}'),
        (401, json.dumps({"message": f"api key {GREYNOISE_KEY} is not valid"}).encode()),
        (429, json.dumps({"message": f"quota used for {GREYNOISE_KEY}"}).encode()),
    ],
    ids=["401", "401-echoing-the-key", "429-echoing-the-key"],
)
def test_greynoise_failures_show_no_secret(
    scenario: tuple[Offline, LogFacts], secret_url: str, tmp_path: Path, status: int, body: bytes
) -> None:
    offline, facts = scenario
    offline.greynoise.handler = _refusing(status, body)
    code, output, status_text, scrape = run_and_collect(offline, facts, secret_url, tmp_path)
    assert code == 0, output
    assert "greynoise" in output.lower()  # the failure is reported...
    assert_no_secret(output, status_text, scrape)  # ...without the key


def test_database_and_collector_failures_show_no_secret(
    scenario: tuple[Offline, LogFacts], pg_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    missing_db = with_password(pg_url).replace("/test?", "/no_such_database_here?")
    collector = f"http://127.0.0.1:{free_port()}"
    code, output, status, _scrape = run_and_collect(
        offline,
        facts,
        missing_db,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector,
        OTEL_EXPORTER_OTLP_HEADERS=f"api-key={OTLP_TOKEN}",
    )
    assert code == 1
    assert "no_such_database_here" in output
    assert_no_secret(output, status)


def test_the_summary_and_inventory_commands_show_no_password(
    scenario: tuple[Offline, LogFacts], secret_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    code, output, _status, _scrape = run_and_collect(offline, facts, secret_url, tmp_path)
    assert code == 0, output
    results: list[str] = []

    def run(*args: str) -> None:
        done = run_cli(*args, "--db", secret_url, "-v")
        results.append(done.stdout + done.stderr)

    threads = [
        threading.Thread(target=run, args=args)
        for args in (("asn", "top"), ("db", "upgrade"), ("asn", "rebuild-counts"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    assert_no_secret(*results)

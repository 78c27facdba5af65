"""The command line as a user runs it: ``python -m cowrieprocessor`` in a subprocess.

Every network source is a loopback server started by the test (Cymru's bulk
whois, GreyNoise's HTTP API) and MaxMind reads GeoLite2-format databases written
at test time, so nothing leaves 127.0.0.1. The database is a SQLite file and a
PostgreSQL schema (the ``db_url`` fixture).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cowrieprocessor.cli import main
from cowrieprocessor.db import open_database
from cowrieprocessor.demo.geodb import demo_ips, demo_records, write_geolite2_databases
from cowrieprocessor.telemetry import names
from tests.support.databases import PG_ADMIN_URL, postgres_schema
from tests.support.http_server import HTTPTestServer, Reply, ReplyLike
from tests.support.otlp import METRICS_PATH, TRACES_PATH, attributes, start_recorder
from tests.support.whois_server import WhoisServer, rows_responder, synthetic_row

GREYNOISE_KEY = "gn-test-key-7f3a9c1e5b"
PG_PASSWORD = "pw-not-to-be-shown-4242"
CYMRU_ASNS = (64700, 64701)
T0 = "2024-03-01T10:00:00"


# -- the harness (also used by test_cli_real_logs.py) ----------------------------------------


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: none of the caller's source or telemetry settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COWRIEPROCESSOR_", "OTEL_", "GREYNOISE_"))
    }
    env.update(extra)
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cowrieprocessor", *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else cli_env(),
        timeout=timeout,
        check=False,
    )


def start_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cowrieprocessor", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(env) if env is not None else cli_env(),
    )


def greynoise_handler(delay: float = 0.0) -> Callable[[str, str, Mapping[str, str]], ReplyLike]:
    """GreyNoise's community API: every IP is a known scanner, after ``delay`` seconds."""

    def handle(method: str, path: str, headers: Mapping[str, str]) -> ReplyLike:
        ip = path.rsplit("/", 1)[-1]
        body = {
            "ip": ip,
            "noise": True,
            "riot": False,
            "classification": "malicious",
            "name": "unknown",
            "link": f"https://viz.greynoise.io/ip/{ip}",
            "last_seen": "2024-02-28",
            "message": "Success",
        }
        return Reply(200, {"content-type": "application/json"}, json.dumps(body).encode(), delay)

    return handle


@dataclass
class Offline:
    """Loopback stand-ins for the three sources."""

    maxmind_dir: Path
    whois: WhoisServer
    greynoise: HTTPTestServer

    def args(self, *, greynoise_key: bool = True) -> list[str]:
        args = [
            "--maxmind-dir", str(self.maxmind_dir),
            "--cymru-host", self.whois.host,
            "--cymru-port", str(self.whois.port),
            "--greynoise-url", self.greynoise.url,
        ]  # fmt: skip
        return [*args, "--greynoise-key", GREYNOISE_KEY] if greynoise_key else args


@contextmanager
def offline_sources(
    maxmind_dir: Path,
    maxmind_records: Sequence[Any],
    cymru_rows: Mapping[str, str],
    greynoise_delay: float = 0.0,
) -> Iterator[Offline]:
    write_geolite2_databases(maxmind_dir, maxmind_records)
    with (
        WhoisServer(rows_responder(cymru_rows)) as whois,
        HTTPTestServer(greynoise_handler(greynoise_delay)) as greynoise,
    ):
        yield Offline(maxmind_dir, whois, greynoise)


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows that must not differ between two runs, or between a resumed and a clean run."""
    queries = {
        "ip_inventory": "SELECT ip_address, current_asn, session_count FROM ip_inventory "
        "ORDER BY ip_address",
        "asn_inventory": "SELECT asn_number, unique_ip_count, total_session_count "
        "FROM asn_inventory ORDER BY asn_number",
        "session_summaries": "SELECT session_id, src_ip, event_count, login_attempts, commands, "
        "first_event_at, last_event_at FROM session_summaries ORDER BY session_id",
    }
    database = open_database(url)
    try:
        with database.engine.connect() as conn:
            return {
                name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in queries.items()
            }
    finally:
        database.dispose()


def scalar(url: str, sql: str, **params: Any) -> Any:
    database = open_database(url)
    try:
        with database.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()
    finally:
        database.dispose()


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or condition}")


def read_status_file(directory: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((directory / "enrichment.json").read_text())
    except FileNotFoundError:
        return None
    return data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def second_database(db_url: str, tmp_path: Path) -> Iterator[str]:
    """Another empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'clean.sqlite'}"
    else:
        with postgres_schema() as url:
            yield url


# -- a synthetic log with known contents ---------------------------------------------------


@dataclass(frozen=True)
class LogFacts:
    path: Path
    events: int
    sessions: dict[str, int]  # sessions per IP
    maxmind_ips: tuple[str, ...]
    cymru_ips: tuple[str, ...]
    bad_lines: int


def _session_lines(ip: str, session: str, minute: int, logins: int) -> list[str]:
    stamp = f"{T0[:-5]}{minute // 60:02d}:{minute % 60:02d}"
    kinds = ["cowrie.session.connect", *["cowrie.login.failed"] * logins, "cowrie.session.closed"]
    return [
        json.dumps(
            {
                "eventid": kind,
                "session": session,
                "src_ip": ip,
                "sensor": "test-sensor",
                "timestamp": f"{stamp}.{index:06d}Z",
                "username": "root",
                "password": "hunter2",
            }
        )
        for index, kind in enumerate(kinds)
    ]


def write_test_log(path: Path, maxmind_ips: Sequence[str], cymru_ips: Sequence[str]) -> LogFacts:
    """Sessions from every IP (IP n opens n % 3 + 1 sessions), then three bad lines.

    The bad lines: not JSON, an object without the fields, and a truncated last line.
    """
    lines: list[str] = []
    sessions: dict[str, int] = {}
    events = 0
    for number, ip in enumerate([*maxmind_ips, *cymru_ips]):
        sessions[ip] = number % 3 + 1
        for index in range(sessions[ip]):
            session_lines = _session_lines(ip, f"s{number:03d}x{index}", number, logins=index + 1)
            lines.extend(session_lines)
            events += len(session_lines)
    lines.insert(3, "this is not json")
    lines.insert(7, '{"eventid": "cowrie.session.connect"}')
    body = "\n".join(lines) + "\n" + '{"eventid": "cowrie.login.failed", "session": "s0'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return LogFacts(path, events, sessions, tuple(maxmind_ips), tuple(cymru_ips), bad_lines=3)


def maxmind_test_records() -> list[Any]:
    return demo_records(6, seed=11, asn_count=3)


def outside_ips(records: Sequence[Any], count: int) -> list[str]:
    """Public IPv4 addresses that no record's network contains (Cymru answers those)."""
    networks = [ipaddress.ip_network(record.network) for record in records]
    found: list[str] = []
    for third in range(1, 250):
        address = ipaddress.ip_address(f"45.{third}.{third}.7")
        if not any(address in network for network in networks):
            found.append(str(address))
        if len(found) == count:
            return found
    raise AssertionError("no free addresses")


def cymru_rows(ips: Sequence[str]) -> dict[str, str]:
    return {
        ip: synthetic_row(ip, asn=CYMRU_ASNS[n % 2], name="SYNTH-TEST Test Net, US")
        for n, ip in enumerate(ips)
    }


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[tuple[Offline, LogFacts]]:
    records = maxmind_test_records()
    maxmind_ips = list(dict.fromkeys(demo_ips(records, 40, seed=5)))[:10]
    others = outside_ips(records, 5)
    facts = write_test_log(tmp_path / "logs" / "cowrie.json", maxmind_ips, others)
    with offline_sources(tmp_path / "maxmind", records, cymru_rows(others)) as offline:
        yield offline, facts


# -- tests -----------------------------------------------------------------------------------


def enrich_json(
    offline: Offline,
    facts: LogFacts,
    db_url: str,
    *extra: str,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    result = run_cli(
        "enrich", str(facts.path), "--db", db_url, "--json", *offline.args(), *extra, env=env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result


def test_enrich_reports_counts_matching_the_database(
    scenario: tuple[Offline, LogFacts], db_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    status_dir = tmp_path / "status"
    summary, result = enrich_json(offline, facts, db_url, "--status-dir", str(status_dir))

    total_ips = len(facts.sessions)
    assert summary["events"] == facts.events
    assert summary["sessions"] == sum(facts.sessions.values())
    assert summary["unique_ips"] == total_ips
    assert summary["bad_lines"] == facts.bad_lines
    assert [e.split(":")[-2].strip() for e in summary["bad_line_examples"]][:1] == ["4"]
    assert summary["maxmind_hits"] == len(facts.maxmind_ips)
    assert summary["cymru_hits"] == len(facts.cymru_ips)
    assert summary["greynoise_hits"] == total_ips
    assert summary["errors"] == 0
    assert summary["cache_hits"] == 0
    assert summary["inventory_size"] == scalar(db_url, "SELECT count(*) FROM asn_inventory")
    assert summary["asn_records_created"] == summary["inventory_size"]
    assert summary["asn_unique_seen"] == summary["inventory_size"]
    for row in summary["top_asns"]:
        sql = (
            "SELECT count(*) FROM session_summaries s JOIN ip_inventory i "
            "ON i.ip_address = s.src_ip WHERE i.current_asn = :asn"
        )
        assert row["sessions"] == scalar(db_url, sql, asn=row["asn"])
    assert {row["asn"] for row in summary["top_asns"]} >= set(CYMRU_ASNS)
    assert "bad lines" in result.stderr  # the table goes to stderr with --json
    assert len(offline.greynoise.requests) == total_ips
    assert {r.headers.get("key") for r in offline.greynoise.requests} == {GREYNOISE_KEY}
    status = json.loads((status_dir / "enrichment.json").read_text())
    assert (status["phase"], status["ips_processed"]) == ("finished", total_ips)
    for shown in (result.stdout, result.stderr, (status_dir / "enrichment.json").read_text()):
        assert GREYNOISE_KEY not in shown


def test_second_run_changes_no_count(scenario: tuple[Offline, LogFacts], db_url: str) -> None:
    offline, facts = scenario
    first, _ = enrich_json(offline, facts, db_url)
    before = snapshot(db_url)
    second, _ = enrich_json(offline, facts, db_url)

    assert snapshot(db_url) == before
    assert second["cache_hits"] == second["unique_ips"] == first["unique_ips"]
    assert second["asn_records_created"] == 0
    assert second["top_asns"] == first["top_asns"]
    assert len(offline.greynoise.requests) == first["unique_ips"]  # nothing asked twice
    rebuild = run_cli("asn", "rebuild-counts", "--db", db_url, "--json", env=cli_env())
    assert rebuild.returncode == 0, rebuild.stderr
    assert json.loads(rebuild.stdout)["drifted"] == 0


def with_password(db_url: str) -> tuple[str, str | None]:
    """``db_url`` carrying ``PG_PASSWORD`` when it is a PostgreSQL URL without a password.

    The test server trusts loopback, so the password changes nothing but what a leak
    would show. Returns the URL and the password it holds, if any.
    """
    url = make_url(db_url)
    if url.get_backend_name() != "postgresql":
        return db_url, url.password
    if url.password is None:
        url = url.set(password=PG_PASSWORD)
    return url.render_as_string(hide_password=False), str(url.password)


def test_otlp_endpoint_receives_the_runs_spans_and_metrics(
    scenario: tuple[Offline, LogFacts], db_url: str
) -> None:
    offline, facts = scenario
    url, password = with_password(db_url)
    recorder = start_recorder()
    try:
        summary, result = enrich_json(
            offline, facts, url, "--otlp-endpoint", recorder.url, "--batch-size", "2",
            env=cli_env(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost"),
        )  # fmt: skip
    finally:
        recorder.close()

    created, updated = summary["asn_records_created"], summary["asn_records_updated"]
    assert created == summary["inventory_size"] > 0
    assert updated > 0  # batches of two IPs also meet ASNs an earlier batch created
    assert "Traceback" not in result.stderr
    # The run is far shorter than the export interval: what arrived was flushed at exit.
    assert recorder.paths() == {TRACES_PATH, METRICS_PATH}
    assert {post.content_type for post in recorder.posts} == {"application/x-protobuf"}

    described = [attributes(span.attributes) for span in recorder.spans(names.ENSURE_ASN_SPAN)]
    # A statement on one ASN carries that ASN's attributes; a larger one only the counts.
    single = [span for span in described if "asn.operation" in span]
    batches = [span for span in described if "asn.operation" not in span]
    assert single
    assert batches
    created_in_spans = sum(span["asn.operation"] == "create" for span in single) + sum(
        span["asn.created_count"] for span in batches
    )
    assert created_in_spans == created

    assert recorder.sum_total(names.ASN_RECORDS_CREATED) == created
    assert recorder.histogram_count(names.ASN_OPERATION_DURATION) == created + updated

    resources = recorder.resource_attributes()
    assert resources
    assert {resource.get("service.name") for resource in resources} == {"cowrieprocessor"}

    secrets = [GREYNOISE_KEY, *([password] if password else [])]
    for post in recorder.posts:
        for secret in secrets:
            assert secret.encode() not in post.payload, (post.path, secret)
            assert not any(secret in value for value in post.headers.values()), post.path


def test_killed_run_rerun_equals_a_clean_run(tmp_path: Path, db_url: str) -> None:
    records = maxmind_test_records()
    maxmind_ips = list(dict.fromkeys(demo_ips(records, 40, seed=5)))[:10]
    others = outside_ips(records, 5)
    facts = write_test_log(tmp_path / "logs" / "cowrie.json", maxmind_ips, others)
    status_dir = tmp_path / "status"
    with (
        offline_sources(tmp_path / "mm", records, cymru_rows(others), 0.1) as offline,
        second_database(db_url, tmp_path) as clean_url,
    ):
        process = start_cli(
            "enrich", str(facts.path), "--db", db_url, "--batch-size", "2",
            "--status-dir", str(status_dir), *offline.args(),
        )  # fmt: skip
        try:
            wait_for(
                lambda: (read_status_file(status_dir) or {}).get("ips_processed", 0) >= 4,
                what="two committed batches",
            )
        finally:
            process.kill()
            process.communicate()
        killed_at = (read_status_file(status_dir) or {})["ips_processed"]
        assert killed_at < len(facts.sessions)
        offline.greynoise.handler = greynoise_handler()
        resumed, _ = enrich_json(offline, facts, db_url, "--batch-size", "2")
        enrich_json(offline, facts, clean_url, "--batch-size", "2")
        assert resumed["cache_hits"] >= killed_at
        assert snapshot(db_url) == snapshot(clean_url)


def test_metrics_are_served_and_the_status_file_is_always_json(
    scenario: tuple[Offline, LogFacts], tmp_path: Path
) -> None:
    offline, facts = scenario
    offline.greynoise.handler = greynoise_handler(delay=0.02)
    status_dir = tmp_path / "status"
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'metrics.sqlite'}"
    reads: list[dict[str, Any]] = []
    stop = threading.Event()

    def read_status_in_a_loop() -> None:
        path = status_dir / "enrichment.json"
        while not stop.is_set():
            try:
                content = path.read_text()
            except FileNotFoundError:
                continue
            reads.append(json.loads(content))  # a partial file would raise here

    reader = threading.Thread(target=read_status_in_a_loop, daemon=True)
    reader.start()
    process = start_cli(
        "enrich", str(facts.path), "--db", db_url, "--batch-size", "3",
        "--status-dir", str(status_dir), "--metrics-port", str(port),
        "--metrics-linger", "5", *offline.args(),
    )  # fmt: skip
    try:
        wait_for(
            lambda: (read_status_file(status_dir) or {}).get("phase") == "finished",
            what="the run to finish",
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            scrape = reply.read().decode()
        process.terminate()  # the run is over: a signal only ends the lingering
    finally:
        stop.set()
        reader.join()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "serving final metrics" in stderr
    for name in (
        "asn_inventory_records_created_total",
        "asn_inventory_operation_duration_seconds_bucket",
        "asn_inventory_size",
        "enrichment_lookups_total",
        "enrichment_ips_total",
    ):
        assert f"\n{name}" in scrape, name
    size = scalar(db_url, "SELECT count(*) FROM asn_inventory")
    gauge = re.search(r"^asn_inventory_size(?:\{[^}]*\})? (\S+)$", scrape, re.MULTILINE)
    assert gauge is not None
    assert float(gauge.group(1)) == size > 0
    phases = [read["phase"] for read in reads]
    assert "enriching" in phases
    assert phases[-1] == "finished"
    assert any(0 < read["ips_processed"] < len(facts.sessions) for read in reads)


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["sigint", "sigterm"]
)
def test_a_signal_stops_the_run_keeping_committed_batches(
    scenario: tuple[Offline, LogFacts], tmp_path: Path, signum: int, code: int
) -> None:
    offline, facts = scenario
    offline.greynoise.handler = greynoise_handler(delay=0.1)
    status_dir = tmp_path / "status"
    db_url = f"sqlite:///{tmp_path / 'signal.sqlite'}"
    process = start_cli(
        "enrich", str(facts.path), "--db", db_url, "--batch-size", "2",
        "--status-dir", str(status_dir), *offline.args(),
    )  # fmt: skip
    try:
        wait_for(
            lambda: (read_status_file(status_dir) or {}).get("ips_processed", 0) >= 2,
            what="a committed batch",
        )
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == code, stderr
    name = signal.Signals(signum).name
    assert [line for line in stderr.splitlines() if name in line] == [
        line for line in stderr.splitlines() if line.startswith("cowrieprocessor: interrupted")
    ]
    assert f"interrupted by {name}" in stderr
    assert "Traceback" not in stderr
    status = read_status_file(status_dir) or {}
    assert status["phase"] == "interrupted"
    assert name in status["last_error"]
    stored = scalar(db_url, "SELECT count(*) FROM ip_inventory")
    assert stored >= 2
    assert stored % 2 == 0  # whole batches only: the one in flight was rolled back


def test_unreachable_database_is_one_line_without_the_password(tmp_path: Path) -> None:
    log = write_test_log(tmp_path / "cowrie.json", ["8.8.8.8"], []).path
    url = f"postgresql://scanner:{PG_PASSWORD}@127.0.0.1:{free_port()}/inventory"
    result = run_cli("enrich", str(log), "--db", url, "--no-cymru")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("cowrieprocessor: error: database error:")
    assert "Traceback" not in result.stderr
    assert PG_PASSWORD not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["enrich", "/no/such/cowrie.json"], 2, "no such file or directory"),
        (["status", "/no/such/status-dir"], 2, "does not exist"),
        (["asn", "top", "--db", "sqlite:////no/such/db.sqlite"], 1, "no database at"),
    ],
    ids=["missing-path", "missing-status", "missing-database"],
)
def test_exit_codes_and_one_line_errors(args: list[str], code: int, message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == code
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("cowrieprocessor: error: ")
    assert message in result.stderr


def test_demo_runs_offline_without_shared_data(tmp_path: Path) -> None:
    env = cli_env(COWRIEPROCESSOR_SHARED_DATA=str(tmp_path / "no-shared-data"))
    result = run_cli("demo", "--dir", str(tmp_path / "demo"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["events"], summary["sessions"], summary["unique_ips"]) == (2000, 300, 60)
    assert summary["maxmind_hits"] == 60
    assert summary["cymru_hits"] == summary["greynoise_hits"] == summary["errors"] == 0
    assert 1 < len(summary["top_asns"]) <= 10
    assert "SYNTHETIC" in (tmp_path / "demo" / "README.txt").read_text()
    first = json.loads((tmp_path / "demo" / "logs" / "cowrie.json").open().readline())
    assert first["sensor"] == "synthetic-demo-sensor"
    assert first["message"].startswith("[synthetic demo data]")
    db = f"sqlite:///{tmp_path / 'demo' / 'cowrieprocessor.sqlite'}"
    top = run_cli("asn", "top", "--db", db, "--json", env=env)
    assert top.returncode == 0, top.stderr
    all_time = {row["asn"]: row["total_session_count"] for row in json.loads(top.stdout)}
    assert all_time == {row["asn"]: row["sessions"] for row in summary["top_asns"]}


def _after_first_batch(status_dir: Path, stop: threading.Event) -> bool:
    while not stop.is_set():
        if (read_status_file(status_dir) or {}).get("ips_processed", 0) >= 3:
            return True
        time.sleep(0.01)
    return False


def _terminate_one_batch(application: str, status_dir: Path, stop: threading.Event) -> None:
    """After the first committed batch, terminate the backend of the next batch in flight."""
    if not _after_first_batch(status_dir, stop):
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    find = text(
        "SELECT pid FROM pg_stat_activity "
        "WHERE application_name = :app AND state = 'idle in transaction'"
    )
    try:
        with admin.connect() as conn:
            while not stop.is_set():
                pids = conn.execute(find, {"app": application}).scalars().all()
                if pids:
                    conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pids[0]})
                    return
                time.sleep(0.01)
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_lost_connection_mid_batch_is_retried_once(
    scenario: tuple[Offline, LogFacts], pg_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    offline.greynoise.handler = greynoise_handler(delay=0.1)
    application = f"cp-cli-test-{uuid.uuid4().hex[:8]}"
    url = f"{pg_url}&application_name={application}"
    status, stop = tmp_path / "status", threading.Event()
    killer = threading.Thread(target=_terminate_one_batch, args=(application, status, stop))
    killer.start()
    try:
        result = run_cli(
            "enrich", str(facts.path), "--db", url, "--batch-size", "3",
            "--status-dir", str(status), *offline.args(),
        )  # fmt: skip
    finally:
        stop.set()
        killer.join()
    assert result.returncode == 0, result.stderr
    retries = [line for line in result.stderr.splitlines() if "retrying it once" in line]
    assert len(retries) == 1
    assert "terminating connection" in retries[0]
    assert scalar(url, "SELECT count(*) FROM ip_inventory") == len(facts.sessions)
    rebuild = run_cli("asn", "rebuild-counts", "--dry-run", "--json", "--db", url)
    assert json.loads(rebuild.stdout)["drifted"] == 0


def _rename(url: str, old: str, new: str) -> None:
    database = open_database(url)
    try:
        with database.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))
    finally:
        database.dispose()


def test_a_database_error_that_persists_fails_cleanly_and_a_rerun_finishes(
    scenario: tuple[Offline, LogFacts], db_url: str, tmp_path: Path
) -> None:
    offline, facts = scenario
    offline.greynoise.handler = greynoise_handler(delay=0.1)
    status, stop = tmp_path / "status", threading.Event()

    def break_the_table() -> None:
        if _after_first_batch(status, stop):
            _rename(db_url, "ip_inventory", "ip_inventory_away")

    breaker = threading.Thread(target=break_the_table)
    breaker.start()
    try:
        result = run_cli(
            "enrich", str(facts.path), "--db", db_url, "--batch-size", "3",
            "--status-dir", str(status), *offline.args(),
        )  # fmt: skip
    finally:
        stop.set()
        breaker.join()
    assert result.returncode == 1, result.stderr
    assert len([line for line in result.stderr.splitlines() if "retrying it once" in line]) == 1
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith("cowrieprocessor: error: database error:")
    assert "rerun the same command" in errors[0]
    assert "Traceback" not in result.stderr
    assert (read_status_file(status) or {})["phase"] == "failed"
    _rename(db_url, "ip_inventory_away", "ip_inventory")
    offline.greynoise.handler = greynoise_handler()
    rerun = run_cli("enrich", str(facts.path), "--db", db_url, "--json", *offline.args())
    assert rerun.returncode == 0, rerun.stderr
    assert scalar(db_url, "SELECT count(*) FROM ip_inventory") == len(facts.sessions)
    rebuild = run_cli("asn", "rebuild-counts", "--dry-run", "--json", "--db", db_url)
    assert json.loads(rebuild.stdout)["drifted"] == 0


def test_inventory_commands_read_what_enrich_wrote(
    scenario: tuple[Offline, LogFacts], db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    offline, facts = scenario
    summary, _ = enrich_json(offline, facts, db_url)
    capsys.readouterr()

    assert main(["asn", "top", "--db", db_url, "--by", "ips", "-n", "2", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert len(top) == 2
    assert top[0]["unique_ip_count"] >= top[1]["unique_ip_count"]

    cymru_asn = CYMRU_ASNS[0]
    assert main(["asn", "show", f"AS{cymru_asn}", "--db", db_url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    cymru_ips = {ip for n, ip in enumerate(facts.cymru_ips) if n % 2 == 0}
    assert {row["ip"] for row in shown["ips"]} == cymru_ips
    assert shown["unique_ip_count"] == shown["ips_total"] == len(cymru_ips)
    assert shown["total_session_count"] == sum(facts.sessions[ip] for ip in cymru_ips)

    ip = facts.maxmind_ips[0]
    assert main(["ip", "show", ip, "--db", db_url]) == 0
    text_out = capsys.readouterr().out
    assert "maxmind: fetched just now" in text_out
    assert "cymru: no data" in text_out  # MaxMind had the ASN: Cymru was not asked
    assert "greynoise: fetched just now" in text_out
    assert main(["ip", "show", ip, "--db", db_url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["session_count"] == facts.sessions[ip]
    assert 0 <= data["sources"]["maxmind"]["age_seconds"] < 120
    assert data["sources"]["greynoise"]["classification"] == "malicious"
    assert main(["ip", "show", "198.51.100.77", "--db", db_url]) == 1
    assert "not in the inventory" in capsys.readouterr().err

    database = open_database(db_url)
    with database.engine.begin() as conn:
        conn.execute(
            text("UPDATE asn_inventory SET total_session_count = 999 WHERE asn_number = :asn"),
            {"asn": cymru_asn},
        )
    database.dispose()
    assert main(["asn", "rebuild-counts", "--db", db_url, "--dry-run", "--json"]) == 0
    drift = json.loads(capsys.readouterr().out)
    assert drift["drift"] == [
        {
            "asn": cymru_asn,
            "stored_ips": len(cymru_ips),
            "actual_ips": len(cymru_ips),
            "stored_sessions": 999,
            "actual_sessions": shown["total_session_count"],
        }
    ]
    assert main(["asn", "rebuild-counts", "--db", db_url]) == 0
    assert "1 ASNs drifted (corrected)" in capsys.readouterr().out
    assert main(["asn", "rebuild-counts", "--db", db_url]) == 0
    assert capsys.readouterr().out.startswith("no drift")
    assert summary["inventory_size"] == scalar(db_url, "SELECT count(*) FROM asn_inventory")


def test_db_upgrade_creates_an_empty_inventory(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["asn", "top", "--db", db_url]) == 1
    assert re.search(r"no database at|has no inventory yet", capsys.readouterr().err)
    assert main(["db", "upgrade", "--db", db_url]) == 0
    assert "is at revision" in capsys.readouterr().out
    assert main(["asn", "top", "--db", db_url]) == 0
    assert capsys.readouterr().out.strip() == "the ASN inventory is empty"

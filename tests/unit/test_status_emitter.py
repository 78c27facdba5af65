"""The JSON status file: atomic rewrites, schema, counts, secrets, rate and ETA, rendering."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cowrieprocessor.status_emitter import (
    DEFAULT_STATUS_NAME,
    STATUS_SCHEMA_VERSION,
    StatusEmitter,
    StatusFileError,
    format_status,
    read_status,
    scrub,
)

SCHEMA_FIELDS = {
    "schema_version",
    "phase",
    "started_at",
    "updated_at",
    "ips_processed",
    "ips_total",
    "rate_ips_per_s",
    "eta_seconds",
    "stats",
    "inventory_size",
    "last_error",
    "pid",
    "hostname",
}
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class FakeClock:
    """A monotonic clock and a wall clock that move only when told to."""

    seconds: float = 1000.0

    def monotonic(self) -> float:
        return self.seconds

    def now(self) -> datetime:
        return START + timedelta(seconds=self.seconds - 1000.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@dataclass
class StatsSnapshot:
    """Shaped like ``CascadeStats``."""

    total_ips: int = 10
    cache_hits: int = 4
    maxmind_hits: int = 5
    cymru_hits: int = 1
    greynoise_hits: int = 0
    errors: int = 0
    asn_records_created: int = 3
    asn_records_updated: int = 1
    asn_operation_duration_ms: float = 12.5
    asn_unique_seen: set[int] = field(default_factory=lambda: {13335, 15169, 3320})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emitter(tmp_path: Path, clock: FakeClock) -> StatusEmitter:
    return StatusEmitter(tmp_path, monotonic=clock.monotonic, now=clock.now)


# ---------------------------------------------------------------- writing


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    emitter = StatusEmitter(tmp_path)
    emitter.update(phase="enriching", ips_processed=0, ips_total=500)
    stop = threading.Event()
    seen: list[int] = []
    broken: list[str] = []

    def read_in_a_loop() -> None:
        while not stop.is_set():
            text = emitter.path.read_text(encoding="utf-8")
            try:
                seen.append(json.loads(text)["ips_processed"])
            except (json.JSONDecodeError, KeyError) as exc:
                broken.append(f"{exc}: {text!r}")

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        for number in range(1, 501):
            emitter.update(ips_processed=number, stats={"asn_unique_seen": set(range(number))})
    finally:
        stop.set()
        reader.join()

    assert broken == []
    assert len(set(seen)) > 1
    assert seen == sorted(seen)
    assert read_status(tmp_path)["ips_processed"] == 500
    assert sorted(path.name for path in tmp_path.iterdir()) == [DEFAULT_STATUS_NAME]


def test_the_file_holds_every_schema_field(emitter: StatusEmitter, clock: FakeClock) -> None:
    clock.advance(3)
    written = emitter.update(phase="ingesting", ips_total=40)

    data = read_status(emitter.path)

    assert data == written
    assert set(data) == SCHEMA_FIELDS
    assert data["schema_version"] == STATUS_SCHEMA_VERSION
    assert data["phase"] == "ingesting"
    assert data["started_at"] == "2025-03-01T12:00:00.000Z"
    assert data["updated_at"] == "2025-03-01T12:00:03.000Z"
    assert (data["ips_processed"], data["ips_total"]) == (0, 40)
    assert (data["stats"], data["inventory_size"], data["last_error"]) == ({}, None, None)
    assert (data["pid"], data["hostname"]) == (os.getpid(), socket.gethostname())


def test_updates_merge_into_the_earlier_state(emitter: StatusEmitter) -> None:
    emitter.update(phase="enriching", ips_total=100, inventory_size=7)
    emitter.update(ips_processed=30, last_error="cymru timed out")

    data = emitter.update(ips_processed=60)

    assert (data["phase"], data["ips_total"], data["inventory_size"]) == ("enriching", 100, 7)
    assert (data["ips_processed"], data["last_error"]) == (60, "cymru timed out")


def test_the_file_is_readable_by_monitors(emitter: StatusEmitter) -> None:
    emitter.update()

    assert stat.S_IMODE(emitter.path.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        pytest.param(
            StatsSnapshot(),
            {
                "total_ips": 10,
                "cache_hits": 4,
                "maxmind_hits": 5,
                "cymru_hits": 1,
                "greynoise_hits": 0,
                "errors": 0,
                "asn_records_created": 3,
                "asn_records_updated": 1,
                "asn_operation_duration_ms": 12.5,
                "asn_unique_seen": 3,
            },
            id="dataclass",
        ),
        pytest.param(
            {"asn_unique_seen": frozenset({1, 2}), "nested": {"seen": {7}}, "ok": True},
            {"asn_unique_seen": 2, "nested": {"seen": 1}, "ok": True},
            id="mapping",
        ),
        pytest.param(
            {"ratio": float("nan"), "sources": ("maxmind", "cymru")},
            {"ratio": None, "sources": ["maxmind", "cymru"]},
            id="json-safe",
        ),
    ],
)
def test_stats_are_written_with_sets_as_counts(
    emitter: StatusEmitter, stats: object, expected: dict[str, Any]
) -> None:
    emitter.update(stats=stats)

    assert read_status(emitter.path)["stats"] == expected


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    emitter = StatusEmitter(tmp_path, secrets=["gn-api-key-123", "pg-pass", ""])

    emitter.update(
        last_error="GreyNoise 401 for key gn-api-key-123 via postgresql://u:pg-pass@db/x",
        stats={"note pg-pass": "gn-api-key-123"},
    )

    text = emitter.path.read_text(encoding="utf-8")
    assert "gn-api-key-123" not in text
    assert "pg-pass" not in text
    data = read_status(tmp_path)
    assert data["last_error"] == "GreyNoise 401 for key *** via postgresql://u:***@db/x"
    assert data["stats"] == {"note ***": "***"}


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param("key=abc", ["abc"], "key=***", id="one"),
        pytest.param("abc abcdef", ["abc", "abcdef"], "*** ***", id="longest-first"),
        pytest.param("nothing here", [], "nothing here", id="no-secrets"),
        pytest.param("empty", [""], "empty", id="empty-secret-ignored"),
        pytest.param("a-a-a", ["a"], "***-***-***", id="every-occurrence"),
    ],
)
def test_scrub(text: str, secrets: list[str], expected: str) -> None:
    assert scrub(text, secrets) == expected


# ---------------------------------------------------------------- rate and ETA


@pytest.mark.parametrize(
    ("elapsed", "fields", "expected"),
    [
        pytest.param(10.0, {"ips_processed": 100, "ips_total": 1000}, (10.0, 90.0), id="midway"),
        pytest.param(4.0, {"ips_processed": 100}, (25.0, None), id="total-unknown"),
        pytest.param(5.0, {"ips_processed": 0, "ips_total": 50}, (0.0, None), id="no-progress"),
        pytest.param(0.0, {"ips_processed": 10, "ips_total": 50}, (0.0, None), id="no-time-yet"),
        pytest.param(
            8.0, {"ips_processed": 60, "ips_total": 50}, (7.5, 0.0), id="more-than-announced"
        ),
        pytest.param(
            10.0,
            {"phase": "finished", "ips_processed": 50, "ips_total": 50},
            (5.0, 0.0),
            id="finished",
        ),
        pytest.param(
            10.0,
            {"phase": "failed", "ips_processed": 20, "ips_total": 50},
            (2.0, None),
            id="failed",
        ),
    ],
)
def test_rate_and_eta_follow_the_clock(
    emitter: StatusEmitter,
    clock: FakeClock,
    elapsed: float,
    fields: dict[str, Any],
    expected: tuple[float, float | None],
) -> None:
    rate, eta = expected
    clock.advance(elapsed)

    data = emitter.update(**fields)

    assert data["rate_ips_per_s"] == pytest.approx(rate)
    assert data["eta_seconds"] == (None if eta is None else pytest.approx(eta))


def test_finish_writes_the_final_phase(emitter: StatusEmitter, clock: FakeClock) -> None:
    emitter.update(phase="enriching", ips_total=10)
    clock.advance(2)

    emitter.finish("failed", last_error="database went away")

    data = read_status(emitter.path)
    assert (data["phase"], data["last_error"], data["eta_seconds"]) == (
        "failed",
        "database went away",
        None,
    )


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"ips_done": 3}, "unknown status fields", id="unknown-field"),
        pytest.param({"phase": "sleeping"}, "unknown phase", id="unknown-phase"),
        pytest.param({"ips_processed": -1}, "must not be negative", id="negative"),
        pytest.param({"ips_total": "many"}, "must be an integer", id="not-a-number"),
        pytest.param({"inventory_size": True}, "must be an integer", id="bool"),
    ],
)
def test_bad_updates_are_rejected_and_lose_nothing(
    emitter: StatusEmitter, fields: dict[str, Any], message: str
) -> None:
    before = emitter.update(phase="enriching", ips_processed=5)

    with pytest.raises(ValueError, match=message):
        emitter.update(**fields)

    assert read_status(emitter.path) == before
    assert emitter.update()["ips_processed"] == 5


def test_finish_accepts_only_final_phases(emitter: StatusEmitter) -> None:
    with pytest.raises(ValueError, match="finishes as"):
        emitter.finish("enriching")


def test_a_directory_that_cannot_exist_is_a_status_file_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")

    with pytest.raises(StatusFileError, match="cannot create its directory"):
        StatusEmitter(blocker / "status")


def test_a_vanished_directory_is_a_status_file_error(tmp_path: Path) -> None:
    directory = tmp_path / "status"
    emitter = StatusEmitter(directory)
    directory.rmdir()

    with pytest.raises(StatusFileError, match="cannot write") as raised:
        emitter.update()

    assert raised.value.path == directory / DEFAULT_STATUS_NAME


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "does not exist", id="missing"),
        pytest.param('{"schema_version": 1, "phase": "enr', "not valid JSON", id="partial"),
        pytest.param("", "not valid JSON", id="empty"),
        pytest.param(b"\xff\xfe{", "not valid JSON", id="not-utf8"),
        pytest.param("[1, 2]", "does not hold a JSON object", id="list"),
        pytest.param('{"phase": "enriching"}', "no integer schema_version", id="no-version"),
        pytest.param('{"schema_version": "1"}', "no integer schema_version", id="text-version"),
        pytest.param(
            json.dumps({"schema_version": STATUS_SCHEMA_VERSION + 1}),
            "reads up to",
            id="newer-schema",
        ),
    ],
)
def test_read_status_rejects_what_is_not_a_status(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / DEFAULT_STATUS_NAME
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(StatusFileError, match=message) as raised:
        read_status(tmp_path)

    assert raised.value.path == path


def test_read_status_takes_a_file_or_its_directory(tmp_path: Path) -> None:
    emitter = StatusEmitter(tmp_path, name="worker-2.json")
    emitter.update(phase="ingesting")

    assert read_status(emitter.path)["phase"] == "ingesting"
    assert read_status(str(emitter.path))["phase"] == "ingesting"
    with pytest.raises(StatusFileError, match="does not exist"):
        read_status(tmp_path)


# ---------------------------------------------------------------- rendering


def _status(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": STATUS_SCHEMA_VERSION,
        "phase": "enriching",
        "started_at": "2025-03-01T12:00:00.000Z",
        "updated_at": "2025-03-01T12:01:00.000Z",
        "ips_processed": 2500,
        "ips_total": 10000,
        "rate_ips_per_s": 41.666,
        "eta_seconds": 3725.0,
        "stats": {"maxmind_hits": 2400, "asn_unique_seen": 312},
        "inventory_size": 1812,
        "last_error": "cymru: timed out",
        "pid": 4242,
        "hostname": "sensor-7",
    }
    data.update(changes)
    return data


def test_format_status_shows_progress_rate_eta_and_stats() -> None:
    now = datetime(2025, 3, 1, 12, 1, 3, tzinfo=UTC)

    text = format_status(_status(), now=now)

    assert text.splitlines() == [
        "Phase:         enriching (updated 3s ago)",
        "Progress:      2,500 / 10,000 IPs (25.0%)",
        "Rate:          41.7 IPs/s",
        "ETA:           1:02:05",
        "ASN inventory: 1,812 ASNs",
        "Last error:    cymru: timed out",
        "Started:       2025-03-01T12:00:00.000Z",
        "Process:       pid 4242 on sensor-7",
        "Stats:",
        "  asn_unique_seen  312",
        "  maxmind_hits     2400",
    ]


@pytest.mark.parametrize(
    ("changes", "seconds_later", "expected"),
    [
        pytest.param({}, 125, "updated 2m 5s ago", id="minutes"),
        pytest.param({}, 3725, "updated 1h 2m ago", id="hours"),
        pytest.param({}, -5, "updated 0s ago", id="clock-skew"),
        pytest.param({"updated_at": "yesterday"}, 0, "unknown time", id="bad-time"),
        pytest.param({"ips_total": None}, 0, "2,500 IPs (total not known yet)", id="no-total"),
        pytest.param({"ips_total": 0, "ips_processed": 0}, 0, "0 / 0 IPs (n/a)", id="zero"),
        pytest.param({"eta_seconds": None}, 0, "ETA:           unknown", id="no-eta"),
        pytest.param({"last_error": None}, 0, "Last error:    none", id="no-error"),
        pytest.param({"inventory_size": None}, 0, "ASN inventory: unknown", id="no-size"),
    ],
)
def test_format_status_cases(changes: dict[str, Any], seconds_later: int, expected: str) -> None:
    now = datetime(2025, 3, 1, 12, 1, 0, tzinfo=UTC) + timedelta(seconds=seconds_later)

    assert expected in format_status(_status(**changes), now=now)


def test_format_status_renders_what_the_emitter_wrote(
    emitter: StatusEmitter, clock: FakeClock
) -> None:
    emitter.update(phase="enriching", ips_total=200, inventory_size=9)
    clock.advance(10)
    emitter.update(ips_processed=50, stats=StatsSnapshot())

    text = format_status(read_status(emitter.path), now=clock.now() + timedelta(seconds=4))

    assert "Progress:      50 / 200 IPs (25.0%)" in text
    assert "Rate:          5.0 IPs/s" in text
    assert "ETA:           0:00:30" in text
    assert "updated 4s ago" in text
    assert "  asn_unique_seen            3" in text

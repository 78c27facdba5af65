"""Properties of the reader: no input makes it raise, and every line is accounted for."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cowrieprocessor.ingest import (
    CowrieEvent,
    IngestCounters,
    LineProblem,
    expand_inputs,
    read_events,
)

LIMIT = 512  # a small line limit, so that huge strings cross it often

FIELDS = ["eventid", "session", "src_ip", "timestamp", "sensor", "username", "password", "input"]
EVENTIDS = ["cowrie.login.failed", "cowrie.login.success", "cowrie.command.input", "x"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)

valid_fields: dict[str, st.SearchStrategy[Any]] = {
    "eventid": st.sampled_from(EVENTIDS),
    "session": st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
    "src_ip": st.ip_addresses().map(str),
    "timestamp": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    "sensor": st.text(max_size=10),
    "username": st.text(max_size=10),
    "password": st.text(max_size=10),
    "input": st.text(max_size=10),
}

# Each field is valid, absent, or replaced by any JSON value (often of the wrong type).
event_objects = st.fixed_dictionaries(
    {},
    optional={field: valid_fields[field] | json_values | st.just(None) for field in FIELDS}
    | {"message": st.text(max_size=LIMIT + 50)},
)

json_lines = event_objects.map(lambda obj: json.dumps(obj, ensure_ascii=False).encode())
text_lines = st.text(alphabet=st.characters(codec="utf-8") | st.just("\x00"), max_size=60).map(
    lambda text: text.replace("\n", " ").encode()
)
surrogate_lines = st.text(
    alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.sampled_from('{}"'),
    max_size=10,
).map(lambda text: text.encode("utf-8", "surrogatepass"))
byte_lines = st.binary(max_size=80)
huge_lines = st.integers(min_value=LIMIT - 40, max_value=LIMIT + 40).map(
    lambda size: json.dumps({"message": "x" * size}).encode()
)
any_line = json_lines | text_lines | surrogate_lines | byte_lines | huge_lines


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ingest-properties")


def line_count(data: bytes) -> int:
    """Lines as the reader numbers them: split on b"\\n", a last unterminated one counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def read_bytes(
    work_dir: Path, data: bytes
) -> tuple[list[CowrieEvent | LineProblem], IngestCounters]:
    log = work_dir / "cowrie.json"
    log.write_bytes(data)
    counters = IngestCounters()
    items = list(read_events(expand_inputs([str(log)]), counters=counters, max_line_bytes=LIMIT))
    return items, counters


def assert_accounted(
    data: bytes, items: list[CowrieEvent | LineProblem], counters: IngestCounters
) -> None:
    snapshot = counters.snapshot()
    assert snapshot.lines == line_count(data)
    assert snapshot.events + snapshot.problems + snapshot.blank_lines == snapshot.lines
    assert len(items) == snapshot.events + snapshot.problems
    assert sum(isinstance(item, CowrieEvent) for item in items) == snapshot.events
    numbers = [item.line for item in items]
    assert numbers == sorted(set(numbers))
    assert all(1 <= number <= snapshot.lines for number in numbers)


def events_of(items: list[CowrieEvent | LineProblem]) -> Iterator[CowrieEvent]:
    return (item for item in items if isinstance(item, CowrieEvent))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(any_line, max_size=12), ending=st.sampled_from([b"\n", b"\r\n"]))
def test_any_lines_never_raise_and_are_all_accounted(
    work_dir: Path, lines: list[bytes], ending: bytes
) -> None:
    data = ending.join(lines)
    # Content that starts with the gzip signature is read as gzip (a broken one is one
    # "unreadable data" problem, see test_truncated_gzip_keeps_what_was_read_and_goes_on).
    assume(not data.startswith(b"\x1f\x8b"))
    items, counters = read_bytes(work_dir, data)
    assert_accounted(data, items, counters)
    for event in events_of(items):
        assert event.timestamp.utcoffset() == timedelta(0)
        assert str(ipaddress.ip_address(event.src_ip)) == event.src_ip


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=3 * LIMIT))
def test_random_bytes_never_raise(work_dir: Path, data: bytes) -> None:
    items, counters = read_bytes(work_dir, data)
    assert_accounted(data, items, counters)


@settings(max_examples=100, deadline=None)
@given(
    session=st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
    address=st.ip_addresses(),
    when=st.datetimes(
        min_value=datetime(1970, 1, 2),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
    password=st.text(max_size=20),
)
def test_valid_events_round_trip(
    work_dir: Path,
    session: str,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    when: datetime,
    password: str,
) -> None:
    expected = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        expected = address.ipv4_mapped
    line = {
        "eventid": "cowrie.login.failed",
        "session": session,
        "src_ip": address.exploded,
        "timestamp": when.isoformat(),
        "username": "root",
        "password": password,
    }
    items, _ = read_bytes(work_dir, json.dumps(line).encode() + b"\n")
    assert items == [
        CowrieEvent(
            source=str(work_dir / "cowrie.json"),
            line=1,
            eventid="cowrie.login.failed",
            session=session,
            src_ip=str(expected),
            timestamp=when.astimezone(UTC),
            username="root",
            password_given=True,
        )
    ]

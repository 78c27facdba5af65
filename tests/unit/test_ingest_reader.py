"""The streaming Cowrie log reader: input specs, line problems and counters."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cowrieprocessor import ingest
from cowrieprocessor.ingest import (
    STDIN_NAME,
    CowrieEvent,
    IngestCounters,
    InputError,
    InputSource,
    LineProblem,
    ProblemReason,
    expand_inputs,
    read_events,
)

BASE_EVENT: dict[str, Any] = {
    "eventid": "cowrie.session.connect",
    "session": "173332e506ca",
    "src_ip": "88.223.26.58",
    "timestamp": "2018-05-06T17:44:05.866769Z",
    "sensor": "920497a79896",
    "message": "New connection",
}


def event_line(**changes: Any) -> bytes:
    """A JSON line: the base event with ``changes`` applied (``...`` removes a key)."""
    data = {**BASE_EVENT, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def write(path: Path, *lines: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def read_all(
    specs: list[str], *, max_line_bytes: int = ingest.MAX_LINE_BYTES
) -> tuple[list[CowrieEvent | LineProblem], IngestCounters]:
    counters = IngestCounters()
    items = list(
        read_events(expand_inputs(specs), counters=counters, max_line_bytes=max_line_bytes)
    )
    return items, counters


def only(items: list[CowrieEvent | LineProblem]) -> CowrieEvent | LineProblem:
    assert len(items) == 1, items
    return items[0]


def test_public_names() -> None:
    assert set(ingest.__all__) == {name for name in dir(ingest) if not name.startswith("_")} - {
        "reader",
        "sessions",
    }
    for name in ingest.__all__:
        assert getattr(ingest, name) is not None


PROBLEM_CASES = [
    pytest.param(b'{"eventid": ', ProblemReason.INVALID_JSON, id="truncated-json"),
    pytest.param(b"not json at all", ProblemReason.INVALID_JSON, id="plain-text"),
    pytest.param(b"[" * 100_000, ProblemReason.INVALID_JSON, id="deep-nesting"),
    pytest.param(b'{"n": 1' + b"0" * 5000 + b"}", ProblemReason.INVALID_JSON, id="huge-integer"),
    pytest.param(b"[1, 2]", ProblemReason.NOT_AN_OBJECT, id="array"),
    pytest.param(b'"text"', ProblemReason.NOT_AN_OBJECT, id="string"),
    pytest.param(b"null", ProblemReason.NOT_AN_OBJECT, id="null"),
    pytest.param(
        event_line(message="x").replace(b'"x"', b'"\xff\xfe"'),
        ProblemReason.INVALID_UTF8,
        id="invalid-utf8",
    ),
    pytest.param(
        event_line(message="x").replace(b'"x"', b'"\xed\xa0\x80"'),
        ProblemReason.INVALID_UTF8,
        id="encoded-surrogate",
    ),
    pytest.param(
        event_line(message="x").replace(b'"x"', b'"a\x00b"'), ProblemReason.NUL_BYTE, id="nul"
    ),
    pytest.param(event_line(eventid=...), ProblemReason.MISSING_EVENTID, id="no-eventid"),
    pytest.param(event_line(eventid=""), ProblemReason.MISSING_EVENTID, id="empty-eventid"),
    pytest.param(event_line(eventid=7), ProblemReason.WRONG_TYPE, id="eventid-number"),
    pytest.param(event_line(session=...), ProblemReason.MISSING_SESSION, id="no-session"),
    pytest.param(event_line(session=None), ProblemReason.MISSING_SESSION, id="null-session"),
    pytest.param(event_line(session="a b"), ProblemReason.INVALID_SESSION, id="session-space"),
    pytest.param(event_line(session="a" * 65), ProblemReason.INVALID_SESSION, id="session-long"),
    pytest.param(event_line(session=["x"]), ProblemReason.WRONG_TYPE, id="session-list"),
    pytest.param(event_line(src_ip=...), ProblemReason.MISSING_SRC_IP, id="no-src-ip"),
    pytest.param(event_line(src_ip=""), ProblemReason.MISSING_SRC_IP, id="empty-src-ip"),
    pytest.param(event_line(src_ip="999.1.1.1"), ProblemReason.INVALID_SRC_IP, id="src-ip-range"),
    pytest.param(event_line(src_ip="fe80::1%eth0"), ProblemReason.INVALID_SRC_IP, id="zoned"),
    pytest.param(event_line(src_ip=3232235777), ProblemReason.WRONG_TYPE, id="src-ip-number"),
    pytest.param(event_line(timestamp=...), ProblemReason.MISSING_TIMESTAMP, id="no-timestamp"),
    pytest.param(
        event_line(timestamp="yesterday"), ProblemReason.INVALID_TIMESTAMP, id="timestamp-text"
    ),
    pytest.param(
        event_line(timestamp="0001-01-01T00:00:00+05:00"),
        ProblemReason.INVALID_TIMESTAMP,
        id="timestamp-before-year-1-utc",
    ),
    pytest.param(
        event_line(timestamp="2018-05-06T17:44:05.866769"),
        ProblemReason.TIMESTAMP_WITHOUT_TIMEZONE,
        id="naive-timestamp",
    ),
    pytest.param(
        event_line(timestamp="2018-05-06"),
        ProblemReason.TIMESTAMP_WITHOUT_TIMEZONE,
        id="date-only",
    ),
    pytest.param(event_line(timestamp=1525628645), ProblemReason.WRONG_TYPE, id="epoch-number"),
    pytest.param(event_line(sensor=5), ProblemReason.WRONG_TYPE, id="sensor-number"),
    pytest.param(event_line(sensor="s" * 129), ProblemReason.INVALID_SENSOR, id="sensor-long"),
    pytest.param(event_line(sensor="a\u0000b"), ProblemReason.INVALID_SENSOR, id="sensor-nul"),
    pytest.param(
        event_line(eventid="cowrie.login.failed", username=["root"]),
        ProblemReason.WRONG_TYPE,
        id="username-list",
    ),
    pytest.param(
        event_line(eventid="cowrie.login.failed", username="root", password=1234),
        ProblemReason.WRONG_TYPE,
        id="password-number",
    ),
    pytest.param(
        event_line(eventid="cowrie.command.input", input={"cmd": "ls"}),
        ProblemReason.WRONG_TYPE,
        id="command-object",
    ),
]


@pytest.mark.parametrize(("line", "reason"), PROBLEM_CASES)
def test_problem_reasons(tmp_path: Path, line: bytes, reason: ProblemReason) -> None:
    log = write(tmp_path / "cowrie.json", event_line(), line, event_line(session="beef"))
    items, counters = read_all([str(log)])
    assert [type(item) for item in items] == [CowrieEvent, LineProblem, CowrieEvent]
    problem = items[1]
    assert isinstance(problem, LineProblem)
    assert (problem.source, problem.line, problem.reason) == (str(log), 2, reason)
    assert counters.snapshot().problems_by_reason == {reason: 1}
    assert counters.events == 2


def test_problem_detail_names_the_field_never_the_value(tmp_path: Path) -> None:
    secret = "hunter2-secret"
    log = write(
        tmp_path / "cowrie.json",
        event_line(eventid="cowrie.login.failed", username=secret, password=[secret]),
    )
    problem = only(read_all([str(log)])[0])
    assert isinstance(problem, LineProblem)
    assert str(problem) == f"{log}:1: wrong field type (password)"
    assert secret not in repr(problem)


def test_every_problem_reason_has_a_case() -> None:
    covered = {param.values[1] for param in PROBLEM_CASES}
    # READ_ERROR and LINE_TOO_LONG come from the stream, tested below.
    assert covered | {ProblemReason.READ_ERROR, ProblemReason.LINE_TOO_LONG} == set(ProblemReason)


ACCEPTED_CASES = [
    pytest.param({}, "88.223.26.58", datetime(2018, 5, 6, 17, 44, 5, 866769, UTC), id="plain"),
    pytest.param({"src_ip": "::ffff:192.0.2.7"}, "192.0.2.7", None, id="ipv4-mapped-becomes-ipv4"),
    pytest.param({"src_ip": "2001:DB8:0::1"}, "2001:db8::1", None, id="ipv6-canonical"),
    pytest.param(
        {"timestamp": "2018-05-06T19:44:05+02:00"},
        "88.223.26.58",
        datetime(2018, 5, 6, 17, 44, 5, tzinfo=UTC),
        id="offset-converted-to-utc",
    ),
    pytest.param({"sensor": ""}, "88.223.26.58", None, id="empty-sensor"),
    pytest.param({"extra": [1, {"a": None}], "isError": 0}, "88.223.26.58", None, id="extras"),
]


@pytest.mark.parametrize(("changes", "ip", "when"), ACCEPTED_CASES)
def test_accepted_events(
    tmp_path: Path, changes: dict[str, Any], ip: str, when: datetime | None
) -> None:
    log = write(tmp_path / "cowrie.json", event_line(**changes))
    event = only(read_all([str(log)])[0])
    assert isinstance(event, CowrieEvent)
    assert event.src_ip == ip
    assert event.timestamp.tzinfo is UTC
    if when is not None:
        assert event.timestamp == when
    assert (event.source, event.line, event.session) == (str(log), 1, "173332e506ca")


def test_login_event_keeps_username_and_only_whether_a_password_was_given(tmp_path: Path) -> None:
    log = write(
        tmp_path / "cowrie.json",
        event_line(eventid="cowrie.login.failed", username="root", password="zz\u0000secretpw"),
        event_line(eventid="cowrie.login.success", username="admin", password=...),
        event_line(eventid="cowrie.command.input", input="uname -a"),
        event_line(eventid="cowrie.client.version", username=42, input=7),
    )
    items, counters = read_all([str(log)])
    assert counters.problems == 0
    first, second, third, fourth = items
    assert isinstance(first, CowrieEvent)
    assert (first.username, first.password_given) == ("root", True)
    assert "secretpw" not in repr(first)
    assert isinstance(second, CowrieEvent)
    assert (second.username, second.password_given) == ("admin", False)
    assert isinstance(third, CowrieEvent)
    assert third.command == "uname -a"
    assert isinstance(fourth, CowrieEvent)  # login/command fields ignored on other events
    assert (fourth.username, fourth.command) == (None, None)


def test_blank_lines_line_endings_and_bom(tmp_path: Path) -> None:
    log = tmp_path / "cowrie.json"
    log.write_bytes(
        b"\xef\xbb\xbf"
        + event_line()
        + b"\r\n\n   \t\r\n"
        + event_line(session="b2")
        + b"\n\n"
        + event_line(session="c3")  # last line without newline
    )
    items, counters = read_all([str(log)])
    assert [(item.line, type(item)) for item in items] == [
        (1, CowrieEvent),
        (4, CowrieEvent),
        (6, CowrieEvent),
    ]
    snapshot = counters.snapshot()
    assert (snapshot.lines, snapshot.blank_lines, snapshot.events, snapshot.problems) == (
        6,
        3,
        3,
        0,
    )


def test_first_problems_are_kept_with_file_and_line(tmp_path: Path) -> None:
    lines = [event_line() if n % 2 else b"garbage" for n in range(30)]
    log = write(tmp_path / "cowrie.json", *lines)
    _, counters = read_all([str(log)])
    snapshot = counters.snapshot()
    assert snapshot.problems == 15
    assert [(p.source, p.line) for p in snapshot.examples] == [
        (str(log), line) for line in range(1, 21, 2)
    ]
    assert counters.snapshot() is not snapshot
    assert snapshot.problems_by_reason == {ProblemReason.INVALID_JSON: 15}


def test_counters_keep_a_chosen_number_of_examples(tmp_path: Path) -> None:
    log = write(tmp_path / "cowrie.json", *[b"{"] * 5)
    counters = IngestCounters(max_examples=2)
    list(read_events(expand_inputs([str(log)]), counters=counters))
    assert [p.line for p in counters.snapshot().examples] == [1, 2]


def test_line_over_the_limit_is_a_problem(tmp_path: Path) -> None:
    long_line = event_line(message="m" * 500)
    log = write(tmp_path / "cowrie.json", event_line(), long_line, event_line(session="b2"))
    items, _ = read_all([str(log)], max_line_bytes=len(long_line) - 1)
    assert [(item.line, getattr(item, "reason", None)) for item in items] == [
        (1, None),
        (2, ProblemReason.LINE_TOO_LONG),
        (3, None),
    ]
    items, _ = read_all([str(log)], max_line_bytes=len(long_line))
    assert all(isinstance(item, CowrieEvent) for item in items)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_five_megabyte_line_is_skipped_in_bounded_memory(tmp_path: Path, compressed: bool) -> None:
    huge = event_line(message="x" * (5 * 1024 * 1024))
    data = event_line() + b"\n" + huge + b"\n" + event_line(session="b2") + b"\n"
    log = tmp_path / ("cowrie.json.gz" if compressed else "cowrie.json")
    log.write_bytes(gzip.compress(data) if compressed else data)
    del huge, data
    tracemalloc.start()
    try:
        items, counters = read_all([str(log)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(item.line, type(item)) for item in items] == [
        (1, CowrieEvent),
        (2, LineProblem),
        (3, CowrieEvent),
    ]
    assert counters.snapshot().problems_by_reason == {ProblemReason.LINE_TOO_LONG: 1}
    assert peak < 3 * ingest.MAX_LINE_BYTES


def test_gzip_is_recognised_by_content(tmp_path: Path) -> None:
    (tmp_path / "cowrie.json.2018-05-06.gz").write_bytes(gzip.compress(event_line() + b"\n"))
    (tmp_path / "cowrie.json.2018-05-07").write_bytes(gzip.compress(event_line() + b"\n"))
    (tmp_path / "cowrie.json.2018-05-08.gz").write_bytes(event_line() + b"\n")  # not gzip
    sources = expand_inputs([str(tmp_path)])
    assert [(Path(s.name).name, s.compressed) for s in sources] == [
        ("cowrie.json.2018-05-06.gz", True),
        ("cowrie.json.2018-05-07", True),
        ("cowrie.json.2018-05-08.gz", False),
    ]
    items = list(read_events(sources))
    assert len(items) == 3
    assert all(isinstance(item, CowrieEvent) for item in items)


def test_truncated_gzip_keeps_what_was_read_and_goes_on(tmp_path: Path) -> None:
    body = b"".join(event_line(session=f"s{n}") + b"\n" for n in range(2000))
    broken = tmp_path / "a" / "cowrie.json.1.gz"
    broken.parent.mkdir()
    broken.write_bytes(gzip.compress(body)[:-200])
    good = write(tmp_path / "b" / "cowrie.json", event_line())
    items, counters = read_all([str(broken), str(good)])
    problems = [item for item in items if isinstance(item, LineProblem)]
    assert len(problems) == 1
    assert problems[0].reason is ProblemReason.READ_ERROR
    assert problems[0].source == str(broken)
    assert problems[0].line == counters.events  # the line after the last good one
    assert items[-1] == CowrieEvent(
        source=str(good),
        line=1,
        eventid="cowrie.session.connect",
        session="173332e506ca",
        src_ip="88.223.26.58",
        timestamp=datetime(2018, 5, 6, 17, 44, 5, 866769, UTC),
        sensor="920497a79896",
    )
    assert counters.lines == counters.events + counters.problems


def test_directory_is_searched_recursively_in_reading_order(tmp_path: Path) -> None:
    write(tmp_path / "cowrie.json", event_line())
    write(tmp_path / "cowrie.json.2018-05-07", event_line())
    write(tmp_path / "cowrie.json.2018-05-06", event_line())
    write(tmp_path / "sub" / "cowrie.json.2018-01-01", event_line())
    write(tmp_path / "notes.txt", b"not a log")
    write(tmp_path / "cowrie.log", b"text log")
    (tmp_path / "cowrie.json.d").mkdir()
    names = [Path(s.name).relative_to(tmp_path).as_posix() for s in expand_inputs([str(tmp_path)])]
    assert names == [
        "cowrie.json.2018-05-06",
        "cowrie.json.2018-05-07",
        "cowrie.json",
        "sub/cowrie.json.2018-01-01",
    ]


def test_globs_and_duplicates(tmp_path: Path) -> None:
    first = write(tmp_path / "x" / "cowrie.json.1", event_line())
    second = write(tmp_path / "y" / "z" / "cowrie.json.2", event_line())
    sources = expand_inputs([str(tmp_path / "**" / "cowrie.json.*"), str(first)])
    assert [s.path for s in sources] == [first, second]
    assert expand_inputs([str(tmp_path / "x" / "cowrie.json.?")]) == [
        InputSource(name=str(first), path=first)
    ]


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_standard_input(monkeypatch: pytest.MonkeyPatch, compressed: bool) -> None:
    data = event_line() + b"\n\xff\n" + event_line(session="b2") + b"\n"
    piped = gzip.compress(data) if compressed else data
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(piped))))
    sources = expand_inputs(["-", "-"])
    assert sources == [InputSource(name=STDIN_NAME)]
    items, _ = read_all(["-"])
    assert [(item.source, item.line, type(item)) for item in items] == [
        (STDIN_NAME, 1, CowrieEvent),
        (STDIN_NAME, 2, LineProblem),
        (STDIN_NAME, 3, CowrieEvent),
    ]
    assert not sys.stdin.closed


INPUT_ERROR_CASES = [
    pytest.param("missing.json", "no such file or directory: {path}", id="missing-file"),
    pytest.param("nothing-*.json", "no file matches {path}", id="glob-no-match"),
    pytest.param("empty-dir", "no cowrie.json* files in directory {path}", id="empty-directory"),
    pytest.param("fifo", "not a regular file: {path}", id="fifo"),
]


@pytest.mark.parametrize(("name", "message"), INPUT_ERROR_CASES)
def test_input_errors_name_the_path(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "empty-dir").mkdir()
    write(tmp_path / "empty-dir" / "other.log", b"x")
    os.mkfifo(tmp_path / "fifo")
    path = str(tmp_path / name)
    with pytest.raises(InputError) as raised:
        expand_inputs([str(write(tmp_path / "ok" / "cowrie.json", b"")), path])
    assert str(raised.value) == message.format(path=path)
    assert raised.value.path == path


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        log = write(tmp_path / "cowrie.json", event_line())
        log.chmod(0)
        message = _input_error_message([str(log)])
    else:
        # Root reads any file: a child process that has become "nobody" reads instead,
        # in a directory it may enter (pytest's own temporary directories are private).
        with tempfile.TemporaryDirectory(dir="/tmp") as private:
            directory = Path(private)
            directory.chmod(0o755)
            log = write(directory / "cowrie.json", event_line())
            log.chmod(0)
            message = _input_error_message_as_nobody([str(log)])
    assert message == f"cannot read {log}: Permission denied"


def _input_error_message(specs: list[str]) -> str:
    with pytest.raises(InputError) as raised:
        expand_inputs(specs)
    return str(raised.value)


def _input_error_message_as_nobody(specs: list[str]) -> str:
    nobody = 65534
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        os.close(read_end)
        answer = "the child failed before reading"
        try:
            os.setgid(nobody)
            os.setuid(nobody)
            expand_inputs(specs)
            answer = "no error"
        except InputError as exc:
            answer = str(exc)
        finally:
            os.write(write_end, answer.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(child, 0)
    return answer


def test_empty_spec_list_gives_no_sources() -> None:
    assert expand_inputs([]) == []
    assert list(read_events([])) == []

"""Streaming reader of Cowrie JSON logs: plain files, gzip files and standard input.

Lines are read one at a time as bytes, so a multi-gigabyte log never sits in
memory, and a single line longer than ``max_line_bytes`` is skipped while it is
read. Every non-blank line becomes either a :class:`CowrieEvent` or a
:class:`LineProblem`; nothing is dropped without being counted, and no line,
however malformed, stops the run.

Decisions an operator may want to know:

- A raw NUL byte in a line is a problem (``NUL byte``). An escaped ``\\u0000``
  inside a JSON string (an attacker's password, say) is valid JSON and the
  event is kept; passwords are never kept anyway, only whether one was given.
- A timestamp without a time zone is a problem, never guessed to be UTC.
- A field of the wrong JSON type (a number where text belongs) is ``wrong field
  type``; ``null`` counts as missing.
- Data that cannot be read at all (a truncated or corrupt gzip file, an I/O
  error) is one ``unreadable data`` problem at the line where reading stopped;
  the rest of that source is skipped and the next source is read.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cowrieprocessor.enrichment.addresses import canonical_ip
from cowrieprocessor.enrichment.errors import InvalidIPError
from cowrieprocessor.ingest._inputs import (
    DIRECTORY_PATTERN,
    STDIN_NAME,
    InputError,
    InputSource,
    LineStream,
    expand_inputs,
)

__all__ = [
    "DIRECTORY_PATTERN",
    "MAX_LINE_BYTES",
    "STDIN_NAME",
    "CowrieEvent",
    "EventOrProblem",
    "IngestCounters",
    "IngestSummary",
    "InputError",
    "InputSource",
    "LineProblem",
    "ProblemReason",
    "expand_inputs",
    "read_events",
]

logger = logging.getLogger(__name__)

#: Longest accepted line, in bytes, without its line ending.
MAX_LINE_BYTES = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOGIN_EVENTS = frozenset({"cowrie.login.success", "cowrie.login.failed"})
_COMMAND_EVENTS = frozenset({"cowrie.command.input", "cowrie.command.failed"})
_MAX_SENSOR_CHARS = 128
_MAX_TIMESTAMP_CHARS = 64
_MAX_ADDRESS_CHARS = 64
_DISCARD_CHUNK = 64 * 1024


class ProblemReason(StrEnum):
    """Why a line did not become an event."""

    LINE_TOO_LONG = "line too long"
    NUL_BYTE = "NUL byte"
    INVALID_UTF8 = "invalid UTF-8"
    INVALID_JSON = "invalid JSON"
    NOT_AN_OBJECT = "not a JSON object"
    WRONG_TYPE = "wrong field type"
    MISSING_EVENTID = "missing eventid"
    MISSING_SESSION = "missing session"
    INVALID_SESSION = "invalid session"
    MISSING_SRC_IP = "missing src_ip"
    INVALID_SRC_IP = "invalid src_ip"
    MISSING_TIMESTAMP = "missing timestamp"
    INVALID_TIMESTAMP = "invalid timestamp"
    TIMESTAMP_WITHOUT_TIMEZONE = "timestamp without timezone"
    INVALID_SENSOR = "invalid sensor"
    READ_ERROR = "unreadable data"


@dataclass(frozen=True, slots=True)
class CowrieEvent:
    """The parts of one Cowrie event that the summaries and the inventory need.

    ``src_ip`` is in canonical form and ``timestamp`` is aware UTC. Passwords are
    never kept: ``password_given`` only says whether a login event carried one.
    ``command`` is the ``input`` of ``cowrie.command.*`` events.
    """

    source: str
    line: int
    eventid: str
    session: str
    src_ip: str
    timestamp: datetime
    sensor: str | None = None
    username: str | None = None
    password_given: bool = False
    command: str | None = None


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line that did not become an event; ``detail`` names a field, never a value."""

    source: str
    line: int
    reason: ProblemReason
    detail: str = ""

    def __str__(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        return f"{self.source}:{self.line}: {self.reason}{suffix}"


EventOrProblem = CowrieEvent | LineProblem


@dataclass(frozen=True)
class IngestSummary:
    """A snapshot of :class:`IngestCounters`; ``lines == events + problems + blank_lines``."""

    sources: int
    lines: int
    blank_lines: int
    events: int
    problems: int
    problems_by_reason: dict[ProblemReason, int]
    examples: tuple[LineProblem, ...]


class IngestCounters:
    """Running tally of a read, updated by :func:`read_events` as it goes.

    Keeps the first ``max_examples`` problems (with source and line) for the
    report; :meth:`snapshot` returns a frozen copy for progress bars and summaries.
    """

    def __init__(self, *, max_examples: int = 10) -> None:
        self.sources = 0
        self.lines = 0
        self.blank_lines = 0
        self.events = 0
        self._max_examples = max_examples
        self._problems: Counter[ProblemReason] = Counter()
        self._examples: list[LineProblem] = []

    @property
    def problems(self) -> int:
        return self._problems.total()

    def record(self, item: EventOrProblem | None) -> None:
        """Count one line: an event, a problem, or ``None`` for a blank line."""
        self.lines += 1
        if item is None:
            self.blank_lines += 1
        elif isinstance(item, CowrieEvent):
            self.events += 1
        else:
            self._problems[item.reason] += 1
            if len(self._examples) < self._max_examples:
                self._examples.append(item)

    def snapshot(self) -> IngestSummary:
        return IngestSummary(
            sources=self.sources,
            lines=self.lines,
            blank_lines=self.blank_lines,
            events=self.events,
            problems=self.problems,
            problems_by_reason=dict(self._problems),
            examples=tuple(self._examples),
        )


def read_events(
    sources: Iterable[InputSource],
    *,
    counters: IngestCounters | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[EventOrProblem]:
    """Yield an event or a problem for every non-blank line of ``sources``, in order.

    Pass ``counters`` to follow the tally while reading. Never raises for bad
    data: unreadable input becomes a ``READ_ERROR`` problem.
    """
    tally = counters if counters is not None else IngestCounters()
    for source in sources:
        tally.sources += 1
        yield from _read_source(source, tally, max_line_bytes)


def _read_source(
    source: InputSource, tally: IngestCounters, limit: int
) -> Iterator[EventOrProblem]:
    number = 0
    try:
        with source.open() as stream:
            for raw in _raw_lines(stream, limit):
                number += 1
                item = _parse_line(source.name, number, raw, limit)
                tally.record(item)
                if item is not None:
                    yield item
    except (OSError, EOFError, zlib.error) as exc:
        logger.warning("stopped reading %s at line %s: %s", source.name, number + 1, exc)
        problem = LineProblem(source.name, number + 1, ProblemReason.READ_ERROR, str(exc)[:200])
        tally.record(problem)
        yield problem


def _raw_lines(stream: LineStream, limit: int) -> Iterator[bytes | None]:
    """Yield each line as bytes, or ``None`` for a line longer than ``limit``."""
    size = limit + 2  # room for "\r\n"
    while True:
        chunk = stream.readline(size)
        if not chunk:
            return
        if chunk.endswith(b"\n") or len(chunk) < size:
            yield chunk
            continue
        while True:  # discard the rest of the over-long line without keeping it
            part = stream.readline(_DISCARD_CHUNK)
            if not part or part.endswith(b"\n"):
                break
        yield None


def _parse_line(name: str, number: int, raw: bytes | None, limit: int) -> EventOrProblem | None:
    try:
        data = _json_object(raw, limit, first=number == 1)
        return None if data is None else _event(name, number, data)
    except _RejectedError as rejected:
        return LineProblem(name, number, rejected.reason, rejected.detail)


def _json_object(raw: bytes | None, limit: int, *, first: bool) -> dict[str, Any] | None:
    """Decode one raw line into a JSON object; ``None`` for a blank line."""
    body = raw.rstrip(b"\r\n") if raw is not None else None
    if body is None or len(body) > limit:
        raise _RejectedError(ProblemReason.LINE_TOO_LONG)
    if first and body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    if not body.strip():
        return None
    if b"\x00" in body:
        raise _RejectedError(ProblemReason.NUL_BYTE)
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise _RejectedError(ProblemReason.INVALID_UTF8) from None
    except (ValueError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise _RejectedError(ProblemReason.INVALID_JSON, detail) from None
    if not isinstance(data, dict):
        raise _RejectedError(ProblemReason.NOT_AN_OBJECT)
    return data


class _RejectedError(Exception):
    """Internal: why the line being parsed is refused."""

    def __init__(self, reason: ProblemReason, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _event(name: str, number: int, data: dict[str, Any]) -> CowrieEvent:
    eventid = _text(data, "eventid", ProblemReason.MISSING_EVENTID)
    session = _text(data, "session", ProblemReason.MISSING_SESSION)
    if not _SESSION_ID.fullmatch(session):
        raise _RejectedError(ProblemReason.INVALID_SESSION, "session")
    address = _text(data, "src_ip", ProblemReason.MISSING_SRC_IP)
    src_ip = _canonical(address) if len(address) <= _MAX_ADDRESS_CHARS else None
    if src_ip is None:
        raise _RejectedError(ProblemReason.INVALID_SRC_IP, "src_ip")
    username: str | None = None
    password_given = False
    if eventid in _LOGIN_EVENTS:
        username = _optional_text(data, "username")
        password_given = _optional_text(data, "password") is not None
    command = _optional_text(data, "input") if eventid in _COMMAND_EVENTS else None
    return CowrieEvent(
        source=name,
        line=number,
        eventid=eventid,
        session=session,
        src_ip=src_ip,
        timestamp=_timestamp(data),
        sensor=_sensor(data),
        username=username,
        password_given=password_given,
        command=command,
    )


@functools.lru_cache(maxsize=4096)
def _canonical(address: str) -> str | None:
    """Canonical form of ``address`` or ``None``; cached, as a session repeats its address."""
    try:
        return canonical_ip(address, source="cowrie")
    except InvalidIPError:
        return None


def _text(data: dict[str, Any], field: str, missing: ProblemReason) -> str:
    value = _optional_text(data, field)
    if not value:
        raise _RejectedError(missing, field)
    return value


def _optional_text(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is None or isinstance(value, str):
        return value
    raise _RejectedError(ProblemReason.WRONG_TYPE, field)


def _timestamp(data: dict[str, Any]) -> datetime:
    text = _text(data, "timestamp", ProblemReason.MISSING_TIMESTAMP)
    if len(text) > _MAX_TIMESTAMP_CHARS:
        raise _RejectedError(ProblemReason.INVALID_TIMESTAMP, "timestamp")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _RejectedError(ProblemReason.INVALID_TIMESTAMP, "timestamp") from None
    if value.utcoffset() is None:
        raise _RejectedError(ProblemReason.TIMESTAMP_WITHOUT_TIMEZONE, "timestamp")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise _RejectedError(ProblemReason.INVALID_TIMESTAMP, "timestamp") from None


def _sensor(data: dict[str, Any]) -> str | None:
    sensor = _optional_text(data, "sensor")
    if not sensor:
        return None
    if len(sensor) > _MAX_SENSOR_CHARS or not sensor.isprintable():
        raise _RejectedError(ProblemReason.INVALID_SENSOR, "sensor")
    return sensor

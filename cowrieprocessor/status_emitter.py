"""A JSON status file for simple monitors, rewritten atomically after every batch.

A monitor (a cron job, a Nagios check, ``watch cat``) reads one small file and never sees a
half-written one: each update goes to a temporary file in the same directory, is flushed and
fsynced, and then replaces the old file with ``os.replace``.

The file (schema version :data:`STATUS_SCHEMA_VERSION`) holds one JSON object:

==================  ========================================================================
``schema_version``  integer, this schema: ``1``
``phase``           ``starting``, ``ingesting``, ``enriching``, ``finished``, ``failed``
                    or ``interrupted``
``started_at``      ISO-8601 UTC time the emitter was created, ``2025-01-31T12:00:00.000Z``
``updated_at``      ISO-8601 UTC time of this write
``ips_processed``   integer, IPs done so far
``ips_total``       integer or ``null`` when not yet known
``rate_ips_per_s``  float, ``ips_processed`` over the time since the start
``eta_seconds``     float, or ``null`` when unknown (no total, no progress yet, or failed)
``stats``           object: the enrichment counters; sets are written as their size, so
                    ``asn_unique_seen`` is a count
``inventory_size``  integer or ``null``: rows in ``asn_inventory``
``last_error``      string or ``null``; secrets are replaced by ``***``
``pid``             integer, the writing process
``hostname``        string, the writing host
==================  ========================================================================
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_STATUS_NAME",
    "PHASES",
    "STATUS_SCHEMA_VERSION",
    "StatusEmitter",
    "StatusFileError",
    "format_status",
    "read_status",
    "scrub",
]

STATUS_SCHEMA_VERSION = 1
DEFAULT_STATUS_NAME = "enrichment.json"
PHASES = ("starting", "ingesting", "enriching", "finished", "failed", "interrupted")
_FINAL_PHASES = frozenset({"finished", "failed", "interrupted"})
_UPDATABLE = frozenset(
    {"phase", "ips_processed", "ips_total", "stats", "inventory_size", "last_error"}
)
_FILE_MODE = 0o644


class StatusFileError(Exception):
    """A status file that cannot be written, or read back as a status."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"status file {path}: {reason}")
        self.path = path


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every (non-empty) secret replaced by ``***``, longest secrets first.

    >>> scrub("GET /v3/community/1.2.3.4 key=abc123 failed", ["abc123"])
    'GET /v3/community/1.2.3.4 key=*** failed'
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` as JSON data: dataclasses and mappings become objects, sets their size."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {scrub(str(k), secrets): _plain(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, secrets) for item in value]
    return _scalar(value, secrets)


def _scalar(value: Any, secrets: Sequence[str]) -> Any:
    result: Any
    match value:
        case None | bool() | int():
            result = value
        case float():
            result = value if math.isfinite(value) else None
        case set() | frozenset():
            result = len(value)
        case datetime():
            result = _iso(value)
        case Enum():
            result = _scalar(value.value, secrets)
        case _:
            result = scrub(str(value), secrets)
    return result


class StatusEmitter:
    """Keeps the state of one run and rewrites its status file on every :meth:`update`.

    ``secrets`` (API keys, database passwords) are replaced by ``***`` in every string
    written. ``monotonic`` and ``now`` are the clocks, replaceable in tests.

    Raises:
        StatusFileError: the directory cannot be created.
    """

    def __init__(
        self,
        directory: Path,
        name: str = DEFAULT_STATUS_NAME,
        *,
        secrets: Sequence[str] = (),
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.path = Path(directory) / name
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StatusFileError(self.path, f"cannot create its directory: {exc}") from exc
        self._secrets = tuple(secrets)
        self._monotonic = monotonic
        self._now = now
        self._lock = threading.Lock()
        self._started = monotonic()
        self._started_at = _iso(now())
        self._fields: dict[str, Any] = {
            "phase": "starting",
            "ips_processed": 0,
            "ips_total": None,
            "stats": {},
            "inventory_size": None,
            "last_error": None,
        }

    def __repr__(self) -> str:
        return f"StatusEmitter(path={str(self.path)!r}, phase={self._fields['phase']!r})"

    def update(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the status and rewrite the file; returns what was written.

        Raises:
            ValueError: an unknown field or phase, or a negative count.
            StatusFileError: the file cannot be written.
        """
        _check_fields(fields)
        with self._lock:
            self._fields.update(fields)
            document = self._document()
            self._write(document)
        return document

    def finish(self, phase: str = "finished", **fields: Any) -> dict[str, Any]:
        """Write the last status of the run (``finished``, ``failed`` or ``interrupted``).

        Raises:
            ValueError: ``phase`` is not a final phase, or a field is invalid.
            StatusFileError: the file cannot be written.
        """
        if phase not in _FINAL_PHASES:
            raise ValueError(f"a run finishes as one of {sorted(_FINAL_PHASES)}, not {phase!r}")
        return self.update(phase=phase, **fields)

    def _document(self) -> dict[str, Any]:
        processed = int(self._fields["ips_processed"])
        total = self._fields["ips_total"]
        elapsed = self._monotonic() - self._started
        rate = processed / elapsed if elapsed > 0 else 0.0
        document = {
            "schema_version": STATUS_SCHEMA_VERSION,
            "phase": self._fields["phase"],
            "started_at": self._started_at,
            "updated_at": _iso(self._now()),
            "ips_processed": processed,
            "ips_total": total,
            "rate_ips_per_s": round(rate, 3),
            "eta_seconds": _eta(self._fields["phase"], processed, total, rate),
            "stats": self._fields["stats"],
            "inventory_size": self._fields["inventory_size"],
            "last_error": self._fields["last_error"],
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
        }
        plain: dict[str, Any] = _plain(document, self._secrets)
        return plain

    def _write(self, document: Mapping[str, Any]) -> None:
        text = json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"
        directory = self.path.parent
        try:
            handle, temporary = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".tmp", dir=directory
            )
        except OSError as exc:
            raise StatusFileError(self.path, f"cannot write: {exc}") from exc
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            Path(temporary).chmod(_FILE_MODE)
            Path(temporary).replace(self.path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise StatusFileError(self.path, f"cannot write: {exc}") from exc
        _fsync_directory(directory)


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - _UPDATABLE)
    if unknown:
        raise ValueError(f"unknown status fields {unknown}; known: {sorted(_UPDATABLE)}")
    if "phase" in fields and fields["phase"] not in PHASES:
        raise ValueError(f"unknown phase {fields['phase']!r}; known: {list(PHASES)}")
    for name in ("ips_processed", "ips_total", "inventory_size"):
        value = fields.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def _eta(phase: str, processed: int, total: int | None, rate: float) -> float | None:
    if phase == "finished":
        return 0.0
    if phase in ("failed", "interrupted") or total is None or rate <= 0:
        return None
    return round(max(total - processed, 0) / rate, 1)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable where the platform allows it (POSIX)."""
    if os.name != "posix":
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems do not support fsync on a directory
    finally:
        os.close(descriptor)


def read_status(path_or_dir: Path | str) -> dict[str, Any]:
    """The status object in a file, or in ``enrichment.json`` of a directory.

    Raises:
        StatusFileError: no such file, not JSON, not a status object, or a newer schema.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        path = path / DEFAULT_STATUS_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StatusFileError(path, "does not exist (has the run started?)") from exc
    except OSError as exc:
        raise StatusFileError(path, f"cannot be read: {exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StatusFileError(path, f"is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise StatusFileError(path, "does not hold a JSON object")
    version = data.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StatusFileError(path, "has no integer schema_version")
    if version > STATUS_SCHEMA_VERSION:
        raise StatusFileError(
            path, f"has schema_version {version}; this version reads up to {STATUS_SCHEMA_VERSION}"
        )
    return data


def _hms(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _age(updated_at: Any, now: datetime | None) -> str:
    now = now or _utc_now()
    try:
        moment = datetime.fromisoformat(str(updated_at))
    except ValueError:
        return "updated at an unknown time"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = max(0, round((now - moment).total_seconds()))
    if seconds < 60:
        return f"updated {seconds}s ago"
    if seconds < 3600:
        return f"updated {seconds // 60}m {seconds % 60}s ago"
    return f"updated {seconds // 3600}h {seconds // 60 % 60}m ago"


def _progress(processed: Any, total: Any) -> str:
    if not isinstance(processed, int):
        return "unknown"
    if not isinstance(total, int):
        return f"{processed:,} IPs (total not known yet)"
    share = f"{100 * processed / total:.1f}%" if total else "n/a"
    return f"{processed:,} / {total:,} IPs ({share})"


def _number(value: Any, template: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "unknown"
    return template.format(value)


def format_status(data: Mapping[str, Any], *, now: datetime | None = None) -> str:
    """A human-readable block for a status object (as returned by :func:`read_status`).

    ``now`` (default: the current time) is what the age of the status is measured against.
    """
    eta = data.get("eta_seconds")
    rows = [
        (
            "Phase",
            f"{data.get('phase', 'unknown')} ({_age(data.get('updated_at'), now or _utc_now())})",
        ),
        ("Progress", _progress(data.get("ips_processed"), data.get("ips_total"))),
        ("Rate", _number(data.get("rate_ips_per_s"), "{:,.1f} IPs/s")),
        ("ETA", _hms(eta) if isinstance(eta, int | float) else "unknown"),
        ("ASN inventory", _number(data.get("inventory_size"), "{:,} ASNs")),
        ("Last error", str(data.get("last_error") or "none")),
        ("Started", str(data.get("started_at", "unknown"))),
        ("Process", f"pid {data.get('pid', '?')} on {data.get('hostname', '?')}"),
    ]
    lines = [f"{label + ':':<15}{value}" for label, value in rows]
    stats = data.get("stats")
    if isinstance(stats, Mapping) and stats:
        lines.append("Stats:")
        width = max(len(str(key)) for key in stats)
        lines.extend(f"  {key!s:<{width}}  {value}" for key, value in sorted(stats.items()))
    return "\n".join(lines)

"""Write a small synthetic Cowrie JSON log for the demo.

Every event is made up and says so: the sensor is ``synthetic-demo-sensor``
and each ``message`` starts with ``[synthetic demo data]``. Source addresses
are drawn from the networks of the synthetic GeoLite2 records
(:func:`cowrieprocessor.demo.geodb.demo_records`), so the demo databases know
them. The same arguments always give the same file.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cowrieprocessor.demo.geodb import GeoRecord, demo_ips

__all__ = ["SENSOR", "SampleLog", "write_sample_log"]

SENSOR = "synthetic-demo-sensor"
_LABEL = "[synthetic demo data]"
_HONEYPOT = "192.0.2.10"  # documentation address (TEST-NET-1)
_START = datetime(2024, 1, 1, tzinfo=UTC)
_USERS = ("root", "admin", "user", "test", "oracle", "ubuntu", "pi", "support")
_COMMANDS = ("uname -a", "cat /proc/cpuinfo", "free -m", "ls -la", "w", "id", "nproc")
_CLIENTS = ("SSH-2.0-Go", "SSH-2.0-libssh2_1.8.0", "SSH-2.0-PuTTY_Release_0.70")


@dataclass(frozen=True)
class SampleLog:
    """The log written: where, and what it holds."""

    path: Path
    events: int
    sessions: int
    ips: tuple[str, ...]


def write_sample_log(
    path: Path,
    records: Sequence[GeoRecord],
    *,
    events: int = 2000,
    sessions: int = 300,
    ips: int = 60,
    seed: int = 7,
) -> SampleLog:
    """Write ``events`` events in ``sessions`` sessions from ``ips`` distinct addresses.

    Every address opens at least one session; the rest follow a long tail, as
    on a real honeypot. Each session has a connect and a closed event around
    its client version, logins and commands. Lines are in time order.

    Raises:
        ValueError: the counts cannot fit (fewer sessions than IPs, fewer than
            three events per session) or ``records`` yield too few addresses.
        OSError: the file cannot be written.
    """
    if not 0 < ips <= sessions or events < 3 * sessions:
        raise ValueError(
            f"cannot make {events} events in {sessions} sessions from {ips} IPs "
            "(need 0 < ips <= sessions and at least 3 events per session)"
        )
    rng = random.Random(seed)
    addresses = _distinct_addresses(records, ips, seed)
    owners = _session_owners(addresses, sessions, rng)
    sizes = _session_sizes(sessions, events, rng)
    lines: list[tuple[datetime, int, dict[str, Any]]] = []
    session_ids: set[str] = set()
    for owner, size in zip(owners, sizes, strict=True):
        session_id = _new_session_id(rng, session_ids)
        begin = _START + timedelta(seconds=rng.uniform(0, 86_000))
        for offset, event in enumerate(_session_events(owner, session_id, begin, size, rng)):
            lines.append((begin, offset, event))
    lines.sort(key=lambda item: (item[2]["timestamp"], item[0], item[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as stream:
        for _, _, event in lines:
            stream.write(json.dumps(event, sort_keys=True) + "\n")
    temporary.replace(path)
    return SampleLog(path, len(lines), sessions, tuple(addresses))


def _distinct_addresses(records: Sequence[GeoRecord], count: int, seed: int) -> list[str]:
    found = list(dict.fromkeys(demo_ips(records, count * 4, seed)))
    if len(found) < count:
        raise ValueError(f"the records yield only {len(found)} distinct addresses, not {count}")
    return found[:count]


def _session_owners(addresses: list[str], sessions: int, rng: random.Random) -> list[str]:
    weights = [1.0 / (rank + 1) for rank in range(len(addresses))]
    owners = list(addresses)
    owners += rng.choices(addresses, weights=weights, k=sessions - len(addresses))
    rng.shuffle(owners)
    return owners


def _session_sizes(sessions: int, events: int, rng: random.Random) -> list[int]:
    sizes = [3] * sessions
    for index in rng.choices(range(sessions), k=events - 3 * sessions):
        sizes[index] += 1
    return sizes


def _new_session_id(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = f"{rng.getrandbits(48):012x}"
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def _session_events(
    ip: str, session: str, begin: datetime, size: int, rng: random.Random
) -> list[dict[str, Any]]:
    """``size`` events: connect, client version, logins or commands, closed."""
    moment = begin
    logged_in = False
    kinds = ["connect", "version"]
    for _ in range(size - 3):
        if logged_in and rng.random() < 0.6:
            kinds.append("command")
        else:
            logged_in = rng.random() < 0.15
            kinds.append("success" if logged_in else "failed")
    kinds.append("closed")
    events = []
    for kind in kinds:
        events.append(_event(kind, ip, session, moment, rng))
        moment += timedelta(seconds=rng.uniform(0.2, 4.0))
    return events


def _event(
    kind: str, ip: str, session: str, moment: datetime, rng: random.Random
) -> dict[str, Any]:
    stamp = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
    base: dict[str, Any] = {"session": session, "src_ip": ip, "sensor": SENSOR, "timestamp": stamp}
    if kind == "connect":
        port = rng.randrange(1024, 65535)
        return base | {
            "eventid": "cowrie.session.connect",
            "message": f"{_LABEL} New connection: {ip}:{port} ({_HONEYPOT}:2222)",
            "src_port": port,
            "dst_ip": _HONEYPOT,
            "dst_port": 2222,
            "protocol": "ssh",
        }
    if kind == "version":
        version = rng.choice(_CLIENTS)
        message = f"{_LABEL} Remote SSH version: {version}"
        return base | {"eventid": "cowrie.client.version", "version": version, "message": message}
    if kind in ("success", "failed"):
        user = rng.choice(_USERS)
        return base | {
            "eventid": f"cowrie.login.{kind}",
            "username": user,
            "password": "synthetic-demo-password",
            "message": f"{_LABEL} login attempt [{user}] {kind}",
        }
    if kind == "command":
        command = rng.choice(_COMMANDS)
        message = f"{_LABEL} CMD: {command}"
        return base | {"eventid": "cowrie.command.input", "input": command, "message": message}
    return base | {"eventid": "cowrie.session.closed", "message": f"{_LABEL} Connection lost"}

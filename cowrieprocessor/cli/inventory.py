"""The inventory commands: ``asn top|show|rebuild-counts``, ``ip show`` and ``db upgrade``.

They read the database directly; only ``rebuild-counts`` (without ``--dry-run``)
and ``db upgrade`` write. A database that was never initialised is reported as
such instead of being created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from cowrieprocessor.cli.errors import CommandError, UsageError
from cowrieprocessor.cli.runtime import Console
from cowrieprocessor.cli.summary import format_table
from cowrieprocessor.db.engine import Database, DatabaseConfigError, open_database, redact_url
from cowrieprocessor.db.migrate import current_revision, upgrade_database
from cowrieprocessor.db.models import ASNInventory, IPInventory
from cowrieprocessor.enrichment.addresses import canonical_ip
from cowrieprocessor.enrichment.asn_inventory import rebuild_asn_counts
from cowrieprocessor.enrichment.errors import InvalidIPError
from cowrieprocessor.enrichment.freshness import SOURCES, fetched_at

__all__ = [
    "IP_LIST_LIMIT",
    "asn_show",
    "asn_top",
    "db_upgrade",
    "format_age",
    "ip_show",
    "parse_asn",
    "rebuild_counts",
]

#: IPs listed by ``asn show``.
IP_LIST_LIMIT = 50


def format_age(moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was, in its largest unit.

    >>> now = datetime(2026, 1, 8, 12, tzinfo=UTC)
    >>> format_age(datetime(2026, 1, 5, 11, tzinfo=UTC), now), format_age(None, now)
    ('3d ago', 'never')
    """
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def parse_asn(text: str) -> int:
    """``'AS64512'``, ``'as64512'`` or ``'64512'`` to 64512.

    Raises:
        UsageError: not an AS number.
    """
    digits = text.strip().removeprefix("AS").removeprefix("as")
    if not digits.isdigit() or not 0 <= int(digits) <= 0xFFFFFFFF:
        raise UsageError(f"not an AS number: {text!r}")
    return int(digits)


@contextmanager
def existing_database(url: str) -> Iterator[Database]:
    """Open a database that must already hold the inventory.

    Raises:
        UsageError: the URL is unusable.
        CommandError: the database does not exist or was never initialised.
    """
    _require_sqlite_file(url)
    try:
        database = open_database(url)
    except DatabaseConfigError as exc:
        raise UsageError(str(exc)) from exc
    try:
        if current_revision(database) is None:
            raise CommandError(
                f"database {database.display_url} has no inventory yet "
                "(run 'cowrieprocessor enrich' or 'cowrieprocessor db upgrade')"
            )
        yield database
    finally:
        database.dispose()


def _require_sqlite_file(url: str) -> None:
    try:
        parsed = make_url(url)
    except ArgumentError:
        return  # open_database reports the malformed URL
    name = parsed.database or ""
    on_disk = name not in ("", ":memory:") and not name.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and on_disk and not Path(name).exists():
        raise CommandError(f"no database at {redact_url(parsed)}")


def _emit(console: Console, as_json: bool, data: Any, text: str) -> None:
    console.out(json.dumps(data, indent=2, default=str) if as_json else text)


def asn_top(console: Console, url: str, *, by: str, limit: int, as_json: bool) -> int:
    """The ASNs with most sessions (or IPs) of all time."""
    order = ASNInventory.total_session_count if by == "sessions" else ASNInventory.unique_ip_count
    with existing_database(url) as database, database.sessions() as session:
        rows = session.scalars(
            select(ASNInventory).order_by(order.desc(), ASNInventory.asn_number).limit(limit)
        ).all()
    data = [_asn_json(row) for row in rows]
    table = format_table(
        ("ASN", "organization", "country", "RIR", "IPs", "sessions", "last seen"),
        (
            (
                f"AS{r.asn_number}",
                r.organization_name,
                r.organization_country,
                r.rir_registry,
                r.unique_ip_count,
                r.total_session_count,
                r.last_seen.strftime("%Y-%m-%d"),
            )
            for r in rows
        ),
    )
    _emit(console, as_json, data, table if rows else "the ASN inventory is empty")
    return 0


def asn_show(console: Console, url: str, asn_text: str, *, as_json: bool) -> int:
    """One ASN with its counts and its first ``IP_LIST_LIMIT`` IPs by sessions."""
    asn = parse_asn(asn_text)
    with existing_database(url) as database, database.sessions() as session:
        row = session.get(ASNInventory, asn)
        if row is None:
            raise CommandError(f"AS{asn} is not in the inventory")
        ips = session.scalars(
            select(IPInventory)
            .where(IPInventory.current_asn == asn)
            .order_by(IPInventory.session_count.desc(), IPInventory.ip_address)
            .limit(IP_LIST_LIMIT)
        ).all()
        total = _count_ips(session, asn)
    data = _asn_json(row) | {
        "ips": [_ip_brief(ip) for ip in ips],
        "ips_listed": len(ips),
        "ips_total": total,
    }
    _emit(console, as_json, data, _asn_text(row, ips, total))
    return 0


def _count_ips(session: Session, asn: int) -> int:
    query = select(func.count()).select_from(IPInventory).where(IPInventory.current_asn == asn)
    return int(session.execute(query).scalar_one())


def _asn_json(row: ASNInventory) -> dict[str, Any]:
    return {
        "asn": row.asn_number,
        "organization": row.organization_name,
        "country": row.organization_country,
        "rir": row.rir_registry,
        "unique_ip_count": row.unique_ip_count,
        "total_session_count": row.total_session_count,
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
    }


def _ip_brief(row: IPInventory) -> dict[str, Any]:
    return {
        "ip": row.ip_address,
        "country": row.geo_country,
        "session_count": row.session_count,
        "last_seen": row.last_seen.isoformat(),
    }


def _asn_text(row: ASNInventory, ips: Sequence[IPInventory], total: int) -> str:
    lines = [
        f"AS{row.asn_number}  {row.organization_name or '(no organization known)'}",
        f"  country        {row.organization_country or '-'}",
        f"  RIR            {row.rir_registry or '-'}",
        f"  IPs            {row.unique_ip_count:,}",
        f"  sessions       {row.total_session_count:,}",
        f"  first seen     {row.first_seen.isoformat()}",
        f"  last seen      {row.last_seen.isoformat()}",
        "",
    ]
    table = format_table(
        ("IP", "country", "sessions", "last seen"),
        ((ip.ip_address, ip.geo_country, ip.session_count, ip.last_seen.isoformat()) for ip in ips),
    )
    lines.extend("  " + line for line in table.splitlines())
    if total > len(ips):
        lines.append(f"  (showing {len(ips)} of {total:,} IPs, those with most sessions)")
    return "\n".join(lines)


def ip_show(console: Console, url: str, ip_text: str, *, as_json: bool) -> int:
    """Everything the inventory holds about one IP, with the age of each source's data."""
    try:
        ip = canonical_ip(ip_text, source="input")
    except InvalidIPError as exc:
        raise UsageError(f"not an IP address: {ip_text!r}") from exc
    with existing_database(url) as database, database.sessions() as session:
        row = session.get(IPInventory, ip)
        if row is None:
            raise CommandError(f"{ip} is not in the inventory")
        asn = session.get(ASNInventory, row.current_asn) if row.current_asn is not None else None
    now = datetime.now(UTC)
    sources = {name: dict(row.enrichment.get(name) or {}) for name in SOURCES}
    data = {
        "ip": row.ip_address,
        "asn": row.current_asn,
        "asn_organization": asn.organization_name if asn else row.asn_org,
        "country": row.geo_country,
        "session_count": row.session_count,
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "asn_last_verified": row.asn_last_verified.isoformat() if row.asn_last_verified else None,
        "sources": {
            name: entry | {"age_seconds": _age_seconds(entry, now)} if entry else None
            for name, entry in sources.items()
        },
    }
    _emit(console, as_json, data, _ip_text(data, sources, now))
    return 0


def _age_seconds(entry: Mapping[str, Any], now: datetime) -> float | None:
    moment = fetched_at(entry)
    return round((now - moment).total_seconds(), 1) if moment else None


def _ip_text(data: Mapping[str, Any], sources: Mapping[str, dict[str, Any]], now: datetime) -> str:
    asn = f"AS{data['asn']} {data['asn_organization'] or ''}" if data["asn"] is not None else "-"
    lines = [
        f"{data['ip']}",
        f"  ASN            {asn.rstrip()}",
        f"  country        {data['country']}",
        f"  sessions       {data['session_count']:,}",
        f"  first seen     {data['first_seen']}",
        f"  last seen      {data['last_seen']}",
    ]
    for name, entry in sources.items():
        if not entry:
            lines.append(f"  {name}: no data")
            continue
        lines.append(f"  {name}: fetched {format_age(fetched_at(entry), now)}")
        for key, value in sorted(entry.items()):
            if key != "fetched_at" and value not in (None, ""):
                lines.append(f"    {key:<16} {value}")
    return "\n".join(lines)


def rebuild_counts(console: Console, url: str, *, dry_run: bool, as_json: bool) -> int:
    """Recompute every ASN's counts from ``ip_inventory`` and report the drift."""
    with existing_database(url) as database, database.sessions() as session:
        drift = rebuild_asn_counts(session, apply=not dry_run)
        if not dry_run:
            session.commit()
    data = {
        "dry_run": dry_run,
        "drifted": len(drift),
        "drift": [
            {
                "asn": item.asn,
                "stored_ips": item.stored_ips,
                "actual_ips": item.actual_ips,
                "stored_sessions": item.stored_sessions,
                "actual_sessions": item.actual_sessions,
            }
            for item in drift
        ],
    }
    if not drift:
        text = "no drift: every ASN's counts match ip_inventory"
    else:
        verb = "would be corrected" if dry_run else "corrected"
        table = format_table(
            ("ASN", "IPs stored", "IPs actual", "sessions stored", "sessions actual"),
            (
                (f"AS{d.asn}", d.stored_ips, d.actual_ips, d.stored_sessions, d.actual_sessions)
                for d in drift
            ),
        )
        text = f"{len(drift)} ASNs drifted ({verb}):\n{table}"
    _emit(console, as_json, data, text)
    return 0


def db_upgrade(console: Console, url: str) -> int:
    """Apply the pending migrations and say which revision the database is at."""
    try:
        database = open_database(url)
    except DatabaseConfigError as exc:
        raise UsageError(str(exc)) from exc
    try:
        revision = upgrade_database(database)
    finally:
        database.dispose()
    console.out(f"database {database.display_url} is at revision {revision}")
    return 0

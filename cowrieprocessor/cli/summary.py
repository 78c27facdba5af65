"""The summary of one ``enrich`` run: a frozen record, its table and its JSON form.

"Top ASNs of this run" ranks the ASNs of the IPs seen in this run by the
sessions those IPs opened in this run (not by the all-time counts of the
inventory, which ``asn top`` shows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cowrieprocessor.db.models import ASNInventory, IPInventory

__all__ = ["ASNRow", "RunSummary", "format_summary", "format_table", "top_asns_of_run"]

TOP_ASNS = 10
_IN_CHUNK = 500


@dataclass(frozen=True)
class ASNRow:
    """One ASN of a ranking: its IPs and sessions in the scope of the ranking."""

    asn: int
    organization: str | None
    country: str | None
    ips: int
    sessions: int


@dataclass(frozen=True)
class RunSummary:
    """What one run read, looked up and wrote."""

    database: str
    events: int
    sessions: int
    unique_ips: int
    bad_lines: int
    cache_hits: int
    maxmind_hits: int
    cymru_hits: int
    greynoise_hits: int
    errors: int
    asn_records_created: int
    asn_records_updated: int
    asn_unique_seen: int
    asn_operation_duration_ms: float
    inventory_size: int
    duration_s: float
    top_asns: tuple[ASNRow, ...] = ()
    bad_line_examples: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The JSON form printed by ``--json`` (rounded durations, lists for tuples)."""
        data = asdict(self)
        data["asn_operation_duration_ms"] = round(self.asn_operation_duration_ms, 3)
        data["duration_s"] = round(self.duration_s, 3)
        data["top_asns"] = [asdict(row) for row in self.top_asns]
        data["bad_line_examples"] = list(self.bad_line_examples)
        data["warnings"] = list(self.warnings)
        return data


def top_asns_of_run(
    session: Session, ip_sessions: Mapping[str, int], limit: int = TOP_ASNS
) -> list[ASNRow]:
    """Rank the ASNs of the IPs in ``ip_sessions`` by those IPs' sessions of this run.

    ``ip_sessions`` maps each IP of the run to the sessions it opened in the run.
    Ties are broken by IPs, then by AS number.
    """
    ips_per_asn: dict[int, int] = {}
    sessions_per_asn: dict[int, int] = {}
    names: dict[int, tuple[str | None, str | None]] = {}
    addresses = sorted(ip_sessions)
    for start in range(0, len(addresses), _IN_CHUNK):
        chunk = addresses[start : start + _IN_CHUNK]
        rows = session.execute(
            select(
                IPInventory.ip_address,
                ASNInventory.asn_number,
                ASNInventory.organization_name,
                ASNInventory.organization_country,
            )
            .join(ASNInventory, ASNInventory.asn_number == IPInventory.current_asn)
            .where(IPInventory.ip_address.in_(chunk))
        )
        for ip, asn, organization, country in rows:
            ips_per_asn[asn] = ips_per_asn.get(asn, 0) + 1
            sessions_per_asn[asn] = sessions_per_asn.get(asn, 0) + ip_sessions[ip]
            names[asn] = (organization, country)
    ranked = sorted(ips_per_asn, key=lambda asn: (-sessions_per_asn[asn], -ips_per_asn[asn], asn))
    return [
        ASNRow(asn, *names[asn], ips=ips_per_asn[asn], sessions=sessions_per_asn[asn])
        for asn in ranked[:limit]
    ]


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Text columns under a rule; columns holding only numbers are right-aligned.

    >>> print(format_table(("ASN", "IPs"), [("AS64512", 1200), ("AS7", None)]))
    ASN      IPs
    -------  -----
    AS64512  1,200
    AS7          -
    """
    raw = [list(row) for row in rows]
    numeric = [
        all(
            row[i] is None or (isinstance(row[i], int | float) and not isinstance(row[i], bool))
            for row in raw
        )
        for i in range(len(headers))
    ]
    cells = [[_cell(value) for value in row] for row in raw]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        parts = [
            value.rjust(width) if numeric[i] else value.ljust(width)
            for i, (value, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(values: list[object]) -> bool:
    """A column of numbers (``None`` allowed), with at least one number."""
    numbers = [v for v in values if v is not None]
    return bool(numbers) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in numbers
    )


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def format_summary(summary: RunSummary) -> str:
    """The summary table printed at the end of a run."""
    lines = [
        "Summary",
        f"  database                 {summary.database}",
        f"  events                   {summary.events:,}",
        f"  sessions                 {summary.sessions:,}",
        f"  unique IPs               {summary.unique_ips:,}",
        f"  bad lines                {summary.bad_lines:,}",
    ]
    lines.extend(f"    {example}" for example in summary.bad_line_examples)
    lines += [
        f"  cache hits               {summary.cache_hits:,}",
        f"  hits: maxmind            {summary.maxmind_hits:,}",
        f"        cymru              {summary.cymru_hits:,}",
        f"        greynoise          {summary.greynoise_hits:,}",
        f"  errors                   {summary.errors:,}",
        f"  ASNs created / updated   {summary.asn_records_created:,} / "
        f"{summary.asn_records_updated:,}",
        f"  unique ASNs in this run  {summary.asn_unique_seen:,}",
        f"  time in ASN operations   {summary.asn_operation_duration_ms:,.1f} ms",
        f"  ASN inventory size       {summary.inventory_size:,}",
        f"  duration                 {summary.duration_s:,.1f} s",
    ]
    if summary.top_asns:
        lines += ["", f"Top {len(summary.top_asns)} ASNs of this run by sessions"]
        table = format_table(
            ("ASN", "organization", "country", "IPs", "sessions"),
            (
                (f"AS{row.asn}", row.organization, row.country, row.ips, row.sessions)
                for row in summary.top_asns
            ),
        )
        lines.extend("  " + line for line in table.splitlines())
    return "\n".join(lines)

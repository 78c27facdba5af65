"""Pure parsers of Team Cymru IP-to-ASN answers (bulk whois rows and DNS TXT).

Nothing here touches the network; every function takes text and returns typed
values, so the formats are tested on their own and against real samples.

Bulk whois, verbose mode, one line per IP after a ``Bulk mode; ...`` header::

    AS | IP | BGP Prefix | CC | Registry | Allocated | AS Name

DNS TXT answers of ``origin.asn.cymru.com`` / ``origin6.asn.cymru.com``::

    ASN(s) | BGP Prefix | CC | Registry | Allocated

and of ``AS<n>.asn.cymru.com``::

    ASN | CC | Registry | Allocated | AS Name

AS names may contain ``|`` and commas, so a line is split on its first 6 (bulk)
or 4 (AS answer) pipes only and the rest is the name.

How values are normalized:

- ``NA`` in the AS column means an unrouted address: ``asn`` is ``None``.
  ``NA`` as prefix or AS name is ``None`` too. (``NA`` as a *country* is
  Namibia and is kept.)
- When a field lists several origin ASNs (``701 1239 3549``, a prefix announced
  by more than one AS), the first one listed is taken; all are kept in
  :attr:`OriginAnswer.asns`.
- An empty Allocated field is ``None``; a non-empty one must be ``YYYY-MM-DD``.
- Registries are upper-cased RIR names: ``arin`` -> ``ARIN``, ``ripencc`` ->
  ``RIPE``, ``apnic`` -> ``APNIC``, ``lacnic`` -> ``LACNIC``, ``afrinic`` ->
  ``AFRINIC``; any other value becomes ``None``.
- AS names are sanitized by :func:`sanitize_name`.

:class:`CymruResult`, the client's result, and its JSON form kept in
``ip_inventory.enrichment`` live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Self

# DNS answer parsing and the field parsers live in a private module; the names
# below are re-exported here, where callers import them from.
from cowrieprocessor.enrichment._cymru_dns import (
    MAX_NAME_LENGTH,
    REGISTRY_NAMES,
    ASAnswer,
    OriginAnswer,
    as_qname,
    most_specific,
    normalize_registry,
    origin_qname,
    parse_as_txt,
    parse_asns,
    parse_country,
    parse_date,
    parse_origin_txt,
    parse_prefix,
    sanitize_name,
    unquote_txt,
)
from cowrieprocessor.enrichment.addresses import parse_ip

__all__ = [
    "MAX_NAME_LENGTH",
    "ASAnswer",
    "BulkRow",
    "CymruResult",
    "OriginAnswer",
    "ParsedBulk",
    "as_qname",
    "most_specific",
    "normalize_registry",
    "origin_qname",
    "parse_as_txt",
    "parse_bulk_line",
    "parse_bulk_response",
    "parse_origin_txt",
    "sanitize_name",
    "unquote_txt",
]

_SOURCE = "cymru"


@dataclass(frozen=True, slots=True)
class BulkRow:
    """One parsed row of a bulk whois answer; ``ip_address`` is canonical."""

    ip_address: str
    asn: int | None
    asn_org: str | None
    country_code: str | None
    registry: str | None
    prefix: str | None
    allocation_date: date | None


@dataclass(frozen=True, slots=True)
class CymruResult:
    """What Team Cymru knows about one address.

    ``asn`` is ``None`` for an unrouted address (an ``NA`` row); ``registry``
    is one of ARIN, RIPE, APNIC, LACNIC, AFRINIC or ``None``.
    """

    ip_address: str
    asn: int | None
    asn_org: str | None
    country_code: str | None
    registry: str | None
    prefix: str | None
    allocation_date: date | None
    fetched_at: datetime

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None or self.fetched_at.utcoffset() is None:
            raise ValueError("fetched_at must be timezone-aware")

    @property
    def cached_at(self) -> datetime:
        """When the answer was fetched (same as ``fetched_at``)."""
        return self.fetched_at

    def to_enrichment(self) -> dict[str, Any]:
        """The JSON-safe form kept in ``ip_inventory.enrichment["cymru"]``."""
        return {
            "ip_address": self.ip_address,
            "asn": self.asn,
            "asn_org": self.asn_org,
            "country_code": self.country_code,
            "registry": self.registry,
            "prefix": self.prefix,
            "allocation_date": self.allocation_date.isoformat() if self.allocation_date else None,
            "fetched_at": self.fetched_at.isoformat(),
        }

    @classmethod
    def from_enrichment(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a result from :meth:`to_enrichment` output.

        Raises:
            ValueError: a key is missing or a value has the wrong type or form.
        """
        try:
            asn = data["asn"]
            if asn is not None and (type(asn) is not int or asn < 0):
                raise ValueError(f"asn must be a non-negative integer, got {asn!r}")
            registry = _optional_str(data, "registry")
            if registry is not None and registry not in REGISTRY_NAMES:
                raise ValueError(f"unknown registry {registry!r}")
            allocated = _optional_str(data, "allocation_date")
            fetched = datetime.fromisoformat(_required_str(data, "fetched_at"))
            if fetched.tzinfo is not None:
                fetched = fetched.astimezone(UTC)
            return cls(
                ip_address=_required_str(data, "ip_address"),
                asn=asn,
                asn_org=_optional_str(data, "asn_org"),
                country_code=_optional_str(data, "country_code"),
                registry=registry,
                prefix=_optional_str(data, "prefix"),
                allocation_date=date.fromisoformat(allocated) if allocated else None,
                fetched_at=fetched,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed {_SOURCE} enrichment: {exc!r}") from exc

    @classmethod
    def from_row(cls, row: BulkRow, fetched_at: datetime) -> Self:
        """The result of one parsed bulk whois row."""
        return cls(
            ip_address=row.ip_address,
            asn=row.asn,
            asn_org=row.asn_org,
            country_code=row.country_code,
            registry=row.registry,
            prefix=row.prefix,
            allocation_date=row.allocation_date,
            fetched_at=fetched_at,
        )


@dataclass(frozen=True, slots=True)
class ParsedBulk:
    """The rows of a bulk answer, how many non-empty lines were not rows, and
    the first of those (cut to 80 characters) for messages."""

    rows: tuple[BulkRow, ...]
    skipped: int
    first_skipped: str | None = None


def parse_bulk_response(text: str) -> ParsedBulk:
    """Parse a whole bulk whois answer; malformed lines are counted, never raised.

    The ``Bulk mode;`` header, a column-title line and blank lines are skipped
    without being counted.

    >>> parse_bulk_response("Bulk mode; whois.cymru.com [x]\\nnot a row\\n").skipped
    1
    """
    rows: list[BulkRow] = []
    skipped: list[str] = []
    for line in text.splitlines():
        if _is_preamble(line):
            continue
        try:
            rows.append(parse_bulk_line(line))
        except ValueError:
            skipped.append(line)
    first = skipped[0].strip()[:80] if skipped else None
    return ParsedBulk(rows=tuple(rows), skipped=len(skipped), first_skipped=first)


def parse_bulk_line(line: str) -> BulkRow:
    """Parse one ``AS | IP | BGP Prefix | CC | Registry | Allocated | AS Name`` row.

    Raises:
        ValueError: the line is truncated or a field is malformed.
    """
    fields = line.split("|", 6)
    if len(fields) != 7:
        raise ValueError(f"expected 7 fields, got {len(fields)}")
    asn_text, ip_text, prefix, country, registry, allocated, name = fields
    asns = parse_asns(asn_text)
    return BulkRow(
        ip_address=str(parse_ip(ip_text.strip(), source=_SOURCE)),
        asn=asns[0] if asns else None,
        asn_org=sanitize_name(name),
        country_code=parse_country(country),
        registry=normalize_registry(registry),
        prefix=parse_prefix(prefix),
        allocation_date=parse_date(allocated),
    )


def _required_str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data[key]
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string or null, got {value!r}")
    return value


def _is_preamble(line: str) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("Bulk mode;"):
        return True
    titles = [field.strip() for field in stripped.split("|", 2)[:2]]
    return titles == ["AS", "IP"]

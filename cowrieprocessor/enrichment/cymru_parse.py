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

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Self

from cowrieprocessor.enrichment.addresses import parse_ip
from cowrieprocessor.enrichment.text import clean_text

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

#: AS names longer than this are cut to this many characters.
MAX_NAME_LENGTH = 512

_SOURCE = "cymru"
_MAX_ASN = 2**32 - 1
_REGISTRIES = {
    "arin": "ARIN",
    "ripencc": "RIPE",
    "ripe": "RIPE",
    "apnic": "APNIC",
    "lacnic": "LACNIC",
    "afrinic": "AFRINIC",
}
_REGISTRY_NAMES = frozenset(_REGISTRIES.values())
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(\d{3}|.)")


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
            if registry is not None and registry not in _REGISTRY_NAMES:
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


@dataclass(frozen=True, slots=True)
class OriginAnswer:
    """One TXT answer of the origin zones; ``asn`` is the first of ``asns``."""

    asns: tuple[int, ...]
    prefix: str | None
    country_code: str | None
    registry: str | None
    allocation_date: date | None

    @property
    def asn(self) -> int | None:
        return self.asns[0] if self.asns else None


@dataclass(frozen=True, slots=True)
class ASAnswer:
    """One TXT answer of ``AS<n>.asn.cymru.com``."""

    asn: int
    country_code: str | None
    registry: str | None
    allocation_date: date | None
    name: str | None


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
    asns = _parse_asns(asn_text)
    return BulkRow(
        ip_address=str(parse_ip(ip_text.strip(), source=_SOURCE)),
        asn=asns[0] if asns else None,
        asn_org=sanitize_name(name),
        country_code=_parse_country(country),
        registry=normalize_registry(registry),
        prefix=_parse_prefix(prefix),
        allocation_date=_parse_date(allocated),
    )


def parse_origin_txt(text: str) -> OriginAnswer:
    """Parse an origin answer ``ASN(s) | prefix | CC | registry | allocated``.

    The text may carry the DNS quoting of dnspython's ``to_text()``.

    Raises:
        ValueError: the answer is truncated or a field is malformed.
    """
    fields = unquote_txt(text).split("|")
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields in an origin answer, got {len(fields)}")
    asn_text, prefix, country, registry, allocated = fields
    return OriginAnswer(
        asns=_parse_asns(asn_text),
        prefix=_parse_prefix(prefix),
        country_code=_parse_country(country),
        registry=normalize_registry(registry),
        allocation_date=_parse_date(allocated),
    )


def parse_as_txt(text: str) -> ASAnswer:
    """Parse an AS answer ``ASN | CC | registry | allocated | AS name``.

    Split on the first 4 pipes only: the name may contain ``|``.

    Raises:
        ValueError: the answer is truncated or a field is malformed.
    """
    fields = unquote_txt(text).split("|", 4)
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields in an AS answer, got {len(fields)}")
    asn_text, country, registry, allocated, name = fields
    asns = _parse_asns(asn_text)
    if len(asns) != 1:
        raise ValueError(f"expected one ASN, got {asn_text.strip()!r}")
    return ASAnswer(
        asn=asns[0],
        country_code=_parse_country(country),
        registry=normalize_registry(registry),
        allocation_date=_parse_date(allocated),
        name=sanitize_name(name),
    )


def most_specific(answers: Iterable[OriginAnswer]) -> OriginAnswer | None:
    """The answer with the longest prefix; ties go to the lowest first ASN.

    DNS does not order the records of an answer, so the choice depends only on
    their content.
    """

    def key(answer: OriginAnswer) -> tuple[int, int, str]:
        length = ipaddress.ip_network(answer.prefix).prefixlen if answer.prefix else -1
        first = answer.asn if answer.asn is not None else _MAX_ASN + 1
        return (-length, first, answer.prefix or "")

    ordered = sorted(answers, key=key)
    return ordered[0] if ordered else None


def sanitize_name(text: str) -> str | None:
    """Clean an AS name with the project's text rule (:func:`~.text.clean_text`, at most
    :data:`MAX_NAME_LENGTH` characters); ``NA`` or nothing left gives ``None``.

    >>> sanitize_name(" ACME\\x00 Net, US ")
    'ACME Net, US'
    """
    cleaned = clean_text(text, limit=MAX_NAME_LENGTH).rstrip()
    if not cleaned or cleaned == "NA":
        return None
    return cleaned


def normalize_registry(text: str) -> str | None:
    """``arin`` -> ``ARIN``, ``ripencc`` -> ``RIPE``...; unknown or empty -> None."""
    return _REGISTRIES.get(text.strip().lower())


def unquote_txt(text: str) -> str:
    """Undo dnspython's ``to_text()`` quoting (``"a" "b"`` -> ``ab``); plain text is kept.

    >>> unquote_txt('"15169 | US"')
    '15169 | US'

    Raises:
        ValueError: the text starts with a quote but is not a sequence of
            quoted strings.
    """
    stripped = text.strip()
    if not stripped.startswith('"'):
        return text
    parts = _QUOTED.findall(stripped)
    if not parts or _QUOTED.sub("", stripped).strip():
        raise ValueError("badly quoted TXT string")
    joined = "".join(_ESCAPE.sub(_unescape, part) for part in parts)
    try:
        # ``\DDD`` escapes are bytes: undo them, then decode the bytes as UTF-8.
        return joined.encode("latin-1").decode("utf-8", errors="replace")
    except UnicodeEncodeError:
        return joined


def origin_qname(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The absolute origin-zone name of an address (reversed octets or nibbles).

    >>> origin_qname(ipaddress.ip_address("216.90.108.31"))
    '31.108.90.216.origin.asn.cymru.com.'
    """
    if isinstance(address, ipaddress.IPv4Address):
        return ".".join(reversed(str(address).split("."))) + ".origin.asn.cymru.com."
    nibbles = address.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + ".origin6.asn.cymru.com."


def as_qname(asn: int) -> str:
    """The absolute name of an AS answer: ``AS23028.asn.cymru.com.``."""
    return f"AS{asn}.asn.cymru.com."


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


def _parse_asns(text: str) -> tuple[int, ...]:
    stripped = text.strip()
    if stripped == "NA":
        return ()
    parts = stripped.split()
    if not parts or not all(part.isascii() and part.isdigit() for part in parts):
        raise ValueError(f"not an ASN: {stripped[:40]!r}")
    numbers = tuple(int(part) for part in parts)
    if any(number > _MAX_ASN for number in numbers):
        raise ValueError(f"ASN out of range: {stripped[:40]!r}")
    return numbers


def _parse_prefix(text: str) -> str | None:
    stripped = text.strip()
    if stripped == "NA":
        return None
    if "/" not in stripped:
        raise ValueError(f"not a prefix: {stripped[:50]!r}")
    return str(ipaddress.ip_network(stripped, strict=False))


def _parse_country(text: str) -> str | None:
    stripped = text.strip()
    if not stripped:
        return None
    if not _COUNTRY.fullmatch(stripped):
        raise ValueError(f"not a country code: {stripped[:10]!r}")
    return stripped.upper()


def _parse_date(text: str) -> date | None:
    stripped = text.strip()
    if not stripped:
        return None
    if not _DATE.fullmatch(stripped):
        raise ValueError(f"not a YYYY-MM-DD date: {stripped[:20]!r}")
    return date.fromisoformat(stripped)


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return chr(int(escaped) & 0xFF) if escaped.isdigit() else escaped

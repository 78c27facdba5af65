"""Team Cymru DNS TXT answers, and the field parsers they share with bulk rows.

Re-exported by :mod:`cowrieprocessor.enrichment.cymru_parse`, whose docstring
describes the formats and how values are normalized; import from there.
Nothing here touches the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from cowrieprocessor.enrichment.text import clean_text

__all__ = [
    "MAX_NAME_LENGTH",
    "REGISTRY_NAMES",
    "ASAnswer",
    "OriginAnswer",
    "as_qname",
    "most_specific",
    "normalize_registry",
    "origin_qname",
    "parse_as_txt",
    "parse_asns",
    "parse_country",
    "parse_date",
    "parse_origin_txt",
    "parse_prefix",
    "sanitize_name",
    "unquote_txt",
]

#: AS names longer than this are cut to this many characters.
MAX_NAME_LENGTH = 512

_MAX_ASN = 2**32 - 1
_REGISTRIES = {
    "arin": "ARIN",
    "ripencc": "RIPE",
    "ripe": "RIPE",
    "apnic": "APNIC",
    "lacnic": "LACNIC",
    "afrinic": "AFRINIC",
}
#: The normalized registry names :func:`normalize_registry` can return.
REGISTRY_NAMES = frozenset(_REGISTRIES.values())
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_ESCAPE = re.compile(r"\\(\d{3}|.)")


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
        asns=parse_asns(asn_text),
        prefix=parse_prefix(prefix),
        country_code=parse_country(country),
        registry=normalize_registry(registry),
        allocation_date=parse_date(allocated),
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
    asns = parse_asns(asn_text)
    if len(asns) != 1:
        raise ValueError(f"expected one ASN, got {asn_text.strip()!r}")
    return ASAnswer(
        asn=asns[0],
        country_code=parse_country(country),
        registry=normalize_registry(registry),
        allocation_date=parse_date(allocated),
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


def parse_asns(text: str) -> tuple[int, ...]:
    """The ASNs of a space-separated AS field; ``NA`` (unrouted) gives ``()``.

    Raises:
        ValueError: a part is not a number or is above 2**32 - 1.
    """
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


def parse_prefix(text: str) -> str | None:
    """A BGP prefix in canonical form; ``NA`` gives ``None``.

    Raises:
        ValueError: the text is not a network with a ``/`` length.
    """
    stripped = text.strip()
    if stripped == "NA":
        return None
    if "/" not in stripped:
        raise ValueError(f"not a prefix: {stripped[:50]!r}")
    return str(ipaddress.ip_network(stripped, strict=False))


def parse_country(text: str) -> str | None:
    """A two-letter country code, upper-cased; empty gives ``None``.

    Raises:
        ValueError: the text is not two ASCII letters.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not _COUNTRY.fullmatch(stripped):
        raise ValueError(f"not a country code: {stripped[:10]!r}")
    return stripped.upper()


def parse_date(text: str) -> date | None:
    """A ``YYYY-MM-DD`` allocation date; empty gives ``None``.

    Raises:
        ValueError: the text is not a valid ``YYYY-MM-DD`` date.
    """
    stripped = text.strip()
    if not stripped:
        return None
    if not _DATE.fullmatch(stripped):
        raise ValueError(f"not a YYYY-MM-DD date: {stripped[:20]!r}")
    return date.fromisoformat(stripped)


def _unescape(match: re.Match[str]) -> str:
    escaped = match.group(1)
    return chr(int(escaped) & 0xFF) if escaped.isdigit() else escaped

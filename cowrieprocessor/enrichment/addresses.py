"""Validation and canonical form of IP addresses at the enrichment boundary."""

from __future__ import annotations

import ipaddress

from cowrieprocessor.enrichment.errors import InvalidIPError

__all__ = ["IPAddress", "canonical_ip", "is_public", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAX_TEXT = 64


def parse_ip(text: str, *, source: str = "input") -> IPAddress:
    """Parse ``text`` into an address; IPv4-mapped IPv6 becomes its IPv4 address.

    Surrounding whitespace is ignored. Zoned IPv6 (``fe80::1%eth0``), leading
    zeros in IPv4 octets and anything else :mod:`ipaddress` refuses raise
    :class:`InvalidIPError`.

    >>> parse_ip("::ffff:192.0.2.1")
    IPv4Address('192.0.2.1')
    """
    if not isinstance(text, str) or len(text) > _MAX_TEXT:
        raise InvalidIPError(f"not an IP address: {_shown(text)}", source=source)
    candidate = text.strip()
    if "%" in candidate:
        raise InvalidIPError(f"zoned IPv6 addresses are not accepted: {_shown(text)}", source=source)
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError as exc:
        raise InvalidIPError(f"not an IP address: {_shown(text)}", source=source) from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def canonical_ip(text: str, *, source: str = "input") -> str:
    """Return the canonical text form used as ``ip_inventory.ip_address``.

    >>> canonical_ip("2001:DB8:0:0::1")
    '2001:db8::1'
    """
    return str(parse_ip(text, source=source))


def is_public(address: IPAddress) -> bool:
    """True when the address may be sent to an online source.

    Private, loopback, link-local, multicast, reserved, unspecified, shared
    (CGNAT) and documentation ranges are not public.
    """
    return address.is_global and not address.is_multicast


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

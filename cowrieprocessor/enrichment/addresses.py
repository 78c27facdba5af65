"""Validation and canonical form of IP addresses at the enrichment boundary."""

from __future__ import annotations

import bisect
import ipaddress
import socket

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
        raise InvalidIPError(
            f"zoned IPv6 addresses are not accepted: {_shown(text)}", source=source
        )
    if ":" not in candidate:
        # Fast path for dotted quads, as ipaddress parses octets in pure Python.
        # Only the C library's own canonical spelling is taken, so anything a libc
        # tolerates beyond ipaddress (leading zeros, ...) still goes the slow way.
        try:
            packed = socket.inet_pton(socket.AF_INET, candidate)
        except (OSError, ValueError):
            pass
        else:
            if socket.inet_ntop(socket.AF_INET, packed) == candidate:
                return ipaddress.IPv4Address(int.from_bytes(packed, "big"))
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


# Ranges never sent to an online source (IANA special-purpose registries, plus
# multicast and the reserved class E space). Kept as sorted integer bounds so the
# check is one bisect instead of a walk over ``ipaddress``'s network lists.
_NOT_PUBLIC_V4 = (
    "0.0.0.0/8",  # "this network"
    "10.0.0.0/8",  # private
    "100.64.0.0/10",  # shared address space (CGNAT)
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.88.99.0/24",  # deprecated 6to4 relay anycast
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, limited broadcast
)
_NOT_PUBLIC_V6 = (
    "::/3",  # reserved by the IETF: unspecified, loopback, mapped, NAT64, discard, ...
    "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
    "100::/64",  # discard-only
    "2001::/23",  # IETF protocol assignments (Teredo, ORCHIDv2, benchmarking, ...)
    "2001:db8::/32",  # documentation
    "3fff::/20",  # documentation
    "5f00::/16",  # segment routing SIDs
    "fc00::/7",  # unique local
    "fe80::/10",  # link-local
    "fec0::/10",  # deprecated site-local
    "ff00::/8",  # multicast
    "4000::/2",  # reserved by the IETF (only 2000::/3 is global unicast)
    "8000::/1",  # reserved by the IETF, unique local, link-local, site-local, multicast
)


def _bounds(networks: tuple[str, ...]) -> tuple[list[int], list[int]]:
    # Collapsed first: a range nested in another would hide the rest of the outer one
    # from the bisect (``65::1`` lies in ``::/8`` after the start of ``64:ff9b:1::/48``).
    ranges = [
        (int(n.network_address), int(n.broadcast_address))
        for n in map(ipaddress.ip_network, networks)
    ]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return [start for start, _ in merged], [end for _, end in merged]


_BOUNDS = {4: _bounds(_NOT_PUBLIC_V4), 6: _bounds(_NOT_PUBLIC_V6)}


def is_public(address: IPAddress) -> bool:
    """True when the address may be sent to an online source.

    Private, loopback, link-local, multicast, reserved, unspecified, shared
    (CGNAT), benchmarking and documentation ranges are not public.

    >>> is_public(parse_ip("8.8.8.8")), is_public(parse_ip("192.0.2.1"))
    (True, False)
    """
    starts, ends = _BOUNDS[address.version]
    value = int(address)
    index = bisect.bisect_right(starts, value) - 1
    return index < 0 or value > ends[index]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""Properties of IP validation and of the cascade's address gate.

Any text either becomes the canonical form :mod:`ipaddress` would print (and
stays so when parsed again) or is refused with :class:`InvalidIPError`; no
other exception escapes. ``is_public`` is deliberately stricter than Python's
``is_global``: besides everything Python calls private, loopback, link-local,
multicast, reserved or unspecified, it also keeps shared (CGNAT), benchmarking,
documentation, 6to4-relay, IETF-protocol and segment-routing ranges away from
the online sources.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cowrieprocessor.db import Base, IPInventory, open_database
from cowrieprocessor.enrichment.addresses import IPAddress, canonical_ip, is_public, parse_ip
from cowrieprocessor.enrichment.cascade_enricher import CascadeEnricher, IPOutcome
from cowrieprocessor.enrichment.errors import InvalidIPError
from tests.support.fakes import (
    FakeCymru,
    FakeGreyNoise,
    FakeMaxMind,
    cymru_result,
    greynoise_result,
    maxmind_result,
)

BOUNDED = settings(max_examples=50, deadline=None)

VALID = [
    "8.8.8.8",
    "1.1.1.1",
    "2001:4860:4860::8888",
    "2606:4700::1111",
    "::ffff:9.9.9.9",
    " 8.8.4.4\n",
]
BOGONS = [
    "10.0.0.1",
    "127.0.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.1.1",
    "192.0.2.1",
    "224.0.0.5",
    "255.255.255.255",
    "0.0.0.0",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "2001:db8::1",
    "ff02::1",
    "::ffff:10.0.0.1",
]
INVALID = [
    "",
    " ",
    "not-an-ip",
    "300.1.1.1",
    "010.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "fe80::1%eth0",
    "1.2.3.4\x00",
    "\x001.2.3.4",
    "8.8.8.8/32",
    "1" * 100,
    "::ffff:010.1.1.1",
    "\u0661.\u0661.\u0661.\u0661",  # Arabic-Indic digits
]


def python_says(text: str) -> IPAddress:
    """The independent reading: :mod:`ipaddress` on the stripped text, IPv4-mapped unwrapped."""
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def reading(text: str) -> IPAddress | None:
    """What the rule says ``text`` is: at most 64 characters, no zone, else as Python reads it."""
    if len(text) > 64 or "%" in text:
        return None
    try:
        return python_says(text)
    except ValueError:
        return None


def check_text(text: str) -> None:
    expected = reading(text)
    if expected is None:
        with pytest.raises(InvalidIPError) as caught:
            canonical_ip(text)
        assert caught.value.source == "input"
        return
    canonical = canonical_ip(text)
    assert canonical == str(expected)
    assert canonical_ip(canonical) == canonical
    assert parse_ip(text) == expected


ip_texts = st.ip_addresses().map(str)
decorated = st.tuples(
    st.sampled_from(["", " ", "\t", "\n", "\x00", "%eth0", "0", "::", "/24"]),
    ip_texts,
    st.sampled_from(["", " ", "\r\n", "\x00", "%1", "0", ".1"]),
).map("".join)
mapped = st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}")
leading_zero = st.lists(st.integers(0, 255), min_size=4, max_size=4).map(
    lambda parts: ".".join(f"0{parts[0]}" if i == 0 else str(p) for i, p in enumerate(parts))
)
any_text = st.text(max_size=80) | st.text(alphabet="0123456789abcdefABCDEF:.%", max_size=50)
long_text = st.integers(65, 5000).map(lambda n: ("1.2.3.4" + " " * n)[: n + 7])


@BOUNDED
@given(st.one_of(any_text, ip_texts, decorated, mapped, leading_zero, long_text))
def test_text_is_canonical_or_refused(text: str) -> None:
    check_text(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("::ffff:1.2.3.4", "1.2.3.4", id="ipv4-mapped"),
        pytest.param("::FFFF:102:304", "1.2.3.4", id="ipv4-mapped-hex"),
        pytest.param("2001:DB8:0:0::1", "2001:db8::1", id="ipv6-compressed-lowercase"),
        pytest.param("  8.8.8.8\t", "8.8.8.8", id="surrounding-whitespace"),
        pytest.param("0:0:0:0:0:0:0:1", "::1", id="loopback-long-form"),
        pytest.param("::ffff:0:1.2.3.4", "::ffff:0:102:304", id="ipv4-translated-is-not-mapped"),
    ],
)
def test_canonical_forms(text: str, expected: str) -> None:
    assert canonical_ip(text) == expected
    assert canonical_ip(expected) == expected


@pytest.mark.parametrize("text", INVALID, ids=[repr(t)[:30] for t in INVALID])
def test_refused_with_invalid_ip_error(text: str) -> None:
    with pytest.raises(InvalidIPError):
        parse_ip(text)


@pytest.mark.parametrize(
    "value", [None, b"1.2.3.4", 16909060, ["1.2.3.4"]], ids=["none", "bytes", "int", "list"]
)
def test_non_text_is_refused(value: Any) -> None:
    with pytest.raises(InvalidIPError):
        parse_ip(value)


def test_error_message_shows_a_bounded_repr() -> None:
    with pytest.raises(InvalidIPError) as caught:
        parse_ip("x" * 10_000)
    assert len(str(caught.value)) < 120


def python_not_public(address: IPAddress) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


@BOUNDED
@given(st.ip_addresses())
def test_nothing_python_calls_special_is_public(address: IPAddress) -> None:
    if python_not_public(address):
        assert not is_public(address)


@pytest.mark.parametrize(
    ("text", "public"),
    [
        pytest.param("8.8.8.8", True, id="google-dns"),
        pytest.param("1.1.1.1", True, id="cloudflare-dns"),
        pytest.param("45.33.32.156", True, id="linode"),
        pytest.param("100.63.255.255", True, id="just-below-cgnat"),
        pytest.param("100.128.0.0", True, id="just-above-cgnat"),
        pytest.param("223.255.255.255", True, id="last-before-multicast"),
        pytest.param("2001:4860:4860::8888", True, id="google-dns-v6"),
        pytest.param("2a00:1450:4001::1", True, id="global-unicast-v6"),
        pytest.param("2002:808:808::1", True, id="6to4-of-public"),
        pytest.param("10.1.2.3", False, id="rfc1918-10"),
        pytest.param("172.16.0.1", False, id="rfc1918-172"),
        pytest.param("192.168.0.1", False, id="rfc1918-192"),
        pytest.param("100.64.0.1", False, id="cgnat"),
        pytest.param("127.0.0.1", False, id="loopback"),
        pytest.param("169.254.169.254", False, id="link-local"),
        pytest.param("0.0.0.0", False, id="unspecified"),
        pytest.param("0.1.2.3", False, id="this-network"),
        pytest.param("192.0.0.9", False, id="ietf-protocol"),
        pytest.param("192.0.2.1", False, id="test-net-1"),
        pytest.param("198.51.100.1", False, id="test-net-2"),
        pytest.param("203.0.113.1", False, id="test-net-3"),
        pytest.param("198.18.0.1", False, id="benchmarking"),
        pytest.param("192.88.99.1", False, id="6to4-relay"),
        pytest.param("224.0.0.1", False, id="multicast"),
        pytest.param("240.0.0.1", False, id="class-e"),
        pytest.param("255.255.255.255", False, id="broadcast"),
        pytest.param("::", False, id="v6-unspecified"),
        pytest.param("::1", False, id="v6-loopback"),
        pytest.param("::ffff:8.8.8.8", False, id="v6-mapped-unparsed"),
        pytest.param("64:ff9b::808:808", False, id="nat64"),
        pytest.param("65::1", False, id="v6-reserved-after-nat64-local"),
        pytest.param("ff::1", False, id="v6-reserved-end-of-0000-8"),
        pytest.param("100::1", False, id="v6-discard"),
        pytest.param("100:1::1", False, id="v6-reserved-0100-8"),
        pytest.param("2001::1", False, id="teredo"),
        pytest.param("2001:db8::1", False, id="v6-documentation"),
        pytest.param("3fff::1", False, id="v6-documentation-2024"),
        pytest.param("4000::1", False, id="v6-reserved-4000-3"),
        pytest.param("8000::1", False, id="v6-reserved-8000-3"),
        pytest.param("5f00::1", False, id="srv6-sid"),
        pytest.param("fc00::1", False, id="unique-local"),
        pytest.param("fe80::1", False, id="v6-link-local"),
        pytest.param("fec0::1", False, id="site-local"),
        pytest.param("ff02::1", False, id="v6-multicast"),
    ],
)
def test_known_addresses(text: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(text)) is public


# The cascade over mixed input, on an in-memory SQLite database.

mixed_inputs = st.lists(
    st.one_of(
        st.sampled_from(VALID + BOGONS + INVALID),
        st.ip_addresses().map(str),
        st.text(max_size=20),
        decorated,
    ),
    max_size=30,
)


def sent_to_sources(maxmind: FakeMaxMind, cymru: FakeCymru, greynoise: FakeGreyNoise) -> list[str]:
    bulk = [ip for call in cymru.bulk_calls for ip in call]
    return [*maxmind.calls, *cymru.single_calls, *bulk, *greynoise.calls]


@BOUNDED
@given(mixed_inputs, st.integers(1, 7))
def test_cascade_sends_only_public_valid_addresses(texts: list[str], batch_size: int) -> None:
    readings = {text: reading(text) for text in texts}
    valid = {str(a) for a in readings.values() if a is not None}
    maxmind = FakeMaxMind({ip: maxmind_result(ip, 64500) for ip in sorted(valid)[::2]})
    cymru = FakeCymru({ip: cymru_result(ip, 64501) for ip in valid})
    greynoise = FakeGreyNoise({ip: greynoise_result(ip) for ip in valid})
    db = open_database("sqlite:///:memory:")
    Base.metadata.create_all(db.engine)
    try:
        with db.sessions() as session:
            enricher = CascadeEnricher(maxmind, cymru, greynoise, session)
            report = enricher.enrich_ips(texts, batch_size=batch_size)
            stored = set(session.scalars(select(IPInventory.ip_address)))
    finally:
        db.dispose()

    for ip in sent_to_sources(maxmind, cymru, greynoise):
        assert ip in valid
        assert is_public(ipaddress.ip_address(ip))
        assert not python_not_public(ipaddress.ip_address(ip))
    # Every public address was asked once; every address, public or not, was stored.
    assert sorted(maxmind.calls) == sorted(ip for ip in valid if is_public(parse_ip(ip)))
    assert stored == valid
    invalid = {text for text, address in readings.items() if address is None}
    assert set(report.outcomes) == valid | invalid
    for text in invalid:
        assert report.outcomes[text] is IPOutcome.INVALID
        assert "input" in report.causes[text]
    for ip in valid:
        skipped = report.outcomes[ip] is IPOutcome.SKIPPED
        assert skipped is not is_public(parse_ip(ip))
    assert enricher.get_stats().errors == sum(1 for text in texts if text in invalid)
    assert report.count(IPOutcome.ERROR) == 0

"""``parse_ip``'s IPv4 fast path changes speed only, never the outcome.

Every input is compared with a reference written directly on :mod:`ipaddress`:
both accept with an equal address of the same type, or both refuse with the
same :class:`InvalidIPError` message and ``source``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cowrieprocessor.enrichment.addresses import IPAddress, parse_ip
from cowrieprocessor.enrichment.errors import InvalidIPError

SOURCE = "fast-path-test"


def _bounded_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def reference(text: Any) -> IPAddress | str:
    """The address, or the refusal message, that plain ``ipaddress`` logic gives."""
    if not isinstance(text, str) or len(text) > 64:
        return f"not an IP address: {_bounded_repr(text)}"
    candidate = text.strip()
    if "%" in candidate:
        return f"zoned IPv6 addresses are not accepted: {_bounded_repr(text)}"
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return f"not an IP address: {_bounded_repr(text)}"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def assert_same_as_reference(text: Any) -> None:
    expected = reference(text)
    if isinstance(expected, str):
        with pytest.raises(InvalidIPError) as caught:
            parse_ip(text, source=SOURCE)
        assert caught.value.args == (expected,)
        assert caught.value.source == SOURCE
    else:
        result = parse_ip(text, source=SOURCE)
        assert type(result) is type(expected)
        assert result == expected


DIGITS = "0123456789"
# Arabic-Indic three, full-width three, Arabic-Indic one, Devanagari four.
odd_digits = st.sampled_from(["\u0663", "\uff13", "\u0661", "\u096a"])
number = st.integers(0, 999).map(str)
zero_padded = st.tuples(st.integers(1, 2), st.integers(0, 999)).map(
    lambda pair: "0" * pair[0] + str(pair[1])
)
digit_run = st.text(alphabet=DIGITS, min_size=0, max_size=4)
with_odd_digit = st.tuples(digit_run, odd_digits, digit_run).map("".join)
part = st.one_of(number, number, number, zero_padded, digit_run, with_odd_digit)
padding = st.sampled_from(["", "", "", " ", "\t", "\n", "\r\n", "\u3000"])
ipv4_ish = st.tuples(padding, st.lists(part, min_size=3, max_size=5), padding).map(
    lambda pieces: pieces[0] + ".".join(pieces[1]) + pieces[2]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


@settings(max_examples=300, deadline=None)
@given(ipv4_ish)
def test_ipv4_like_text_matches_reference(text: str) -> None:
    assert_same_as_reference(text)


EDGE_CASES = [
    "0.0.0.0",
    "255.255.255.255",
    "203.0.113.7",
    "256.1.1.1",
    "1.2.3",
    "1.2.3.4.5",
    "01.2.3.4",
    "1.2.3.04",
    "1.2.3.0",
    "0x1.2.3.4",
    "1..2.3",
    " 1.2.3.4 ",
    "1.2.3.4\n",
    "\u0661.2.3.4",
    "1.2.3.4%eth0",
    "",
    "::ffff:1.2.3.4",
    "2001:db8::1",
    "1.2.3.-4",
    "+1.2.3.4",
    "1.2.3.4 5",
    "1.2.3.4\x00",
    "1.2.3.\ud800",
    "1.2.3.4" + " " * 57,
    "1.2.3.4" + " " * 58,
]


@pytest.mark.parametrize("text", EDGE_CASES, ids=[repr(t)[:30] for t in EDGE_CASES])
def test_edge_cases_match_reference(text: str) -> None:
    assert_same_as_reference(text)


@pytest.mark.parametrize("value", [None, 16909060, b"1.2.3.4", b"\x01\x02\x03\x04"])
def test_non_text_matches_reference(value: Any) -> None:
    assert_same_as_reference(value)


def test_fast_path_gives_a_plain_ipv4_address() -> None:
    result = parse_ip("203.0.113.7")
    assert type(result) is ipaddress.IPv4Address
    assert result == ipaddress.IPv4Address("203.0.113.7")
    assert str(result) == "203.0.113.7"

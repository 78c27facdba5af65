"""Team Cymru client: parsers, bulk whois over loopback sockets, DNS at the seam."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.resolver
import dns.rrset
import pytest

from cowrieprocessor.enrichment.addresses import is_public, parse_ip
from cowrieprocessor.enrichment.cymru_client import (
    CymruClient,
    CymruResult,
    DnsTxtResolver,
    SocketWhoisExchange,
    translate_dns_error,
)
from cowrieprocessor.enrichment.cymru_parse import (
    MAX_NAME_LENGTH,
    BulkRow,
    OriginAnswer,
    as_qname,
    most_specific,
    origin_qname,
    parse_as_txt,
    parse_bulk_line,
    parse_bulk_response,
    parse_origin_txt,
    sanitize_name,
    unquote_txt,
)
from cowrieprocessor.enrichment.errors import InvalidIPError, SourceUnavailableError
from cowrieprocessor.enrichment.stats import ClientStats
from tests.support.whois_server import (
    GARBAGE_LINES,
    Fault,
    WhoisServer,
    canned_responder,
    generated_responder,
    rows_responder,
    synthetic_row,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
ROW_8888 = (
    "15169   | 8.8.8.8          | 8.8.8.0/24          | US | arin     | 2023-12-28 | GOOGLE, US"
)
ROW_1111 = (
    "13335   | 1.1.1.1          | 1.1.1.0/24          | AU | apnic    | 2011-08-11 "
    "| CLOUDFLARENET, US"
)
ORIGIN_31 = "31.108.90.216.origin.asn.cymru.com."
AS23028 = "AS23028.asn.cymru.com."


class FakeClock:
    """A settable UTC clock."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class FakeResolver:
    """A TxtResolver answering from a table; an Exception value is raised."""

    def __init__(self, answers: Mapping[str, list[str] | Exception]) -> None:
        self.answers = dict(answers)
        self.queries: list[str] = []

    def resolve_txt(self, qname: str) -> list[str]:
        self.queries.append(qname)
        answer = self.answers.get(qname, [])
        if isinstance(answer, Exception):
            raise answer
        return list(answer)


def public_ips(count: int) -> list[str]:
    base = int(ipaddress.IPv4Address("11.0.0.0"))
    ips = [str(ipaddress.IPv4Address(base + 7 * i)) for i in range(count)]
    assert all(is_public(parse_ip(ip)) for ip in ips)
    return ips


def bulk_client(
    srv: WhoisServer,
    *,
    batch_size: int = 500,
    retries: int = 2,
    backoff: float = 0.5,
    read_timeout: float = 2.0,
    cache_ttl: timedelta = timedelta(days=90),
    clock: FakeClock | None = None,
) -> tuple[CymruClient, list[float]]:
    """A client of ``srv`` with short timeouts; the list records the retry sleeps."""
    sleeps: list[float] = []
    client = CymruClient(
        host=srv.host,
        port=srv.port,
        dns=FakeResolver({}),
        batch_size=batch_size,
        connect_timeout=0.5,
        read_timeout=read_timeout,
        retries=retries,
        backoff=backoff,
        cache_ttl=cache_ttl,
        clock=clock,
        sleep=sleeps.append,
    )
    return client, sleeps


# --- bulk row parser -----------------------------------------------------------------------

ROW_CASES = [
    pytest.param(
        "NA      | 2801:10:c000::                           | NA                  | CO | lacnic   "
        "| 2013-10-29 | NA",
        BulkRow("2801:10:c000::", None, None, "CO", "LACNIC", None, date(2013, 10, 29)),
        id="na-row",
    ),
    pytest.param(
        "6079    | 207.229.165.18   | 207.229.128.0/18    | US | arin     |            "
        "| RCN-AS - RCN, US",
        BulkRow("207.229.165.18", 6079, "RCN-AS - RCN, US", "US", "ARIN", "207.229.128.0/18", None),
        id="empty-allocated",
    ),
    pytest.param(
        "4134    | 115.1.2.3        | 115.0.0.0/14        | KR | apnic    | 2008-07-01 "
        "| CHINANET-BACKBONE No.31,Jin-rong Street, CN",
        BulkRow(
            "115.1.2.3",
            4134,
            "CHINANET-BACKBONE No.31,Jin-rong Street, CN",
            "KR",
            "APNIC",
            "115.0.0.0/14",
            date(2008, 7, 1),
        ),
        id="commas-in-name",
    ),
    pytest.param(
        "1234 | 8.8.4.4 | 8.8.4.0/24 | FI | ripencc | 1993-09-01 | FORTUM-AS | Fortum, FI",
        BulkRow(
            "8.8.4.4", 1234, "FORTUM-AS | Fortum, FI", "FI", "RIPE", "8.8.4.0/24", date(1993, 9, 1)
        ),
        id="pipe-in-name",
    ),
    pytest.param(
        "2497    | 2001:240:10c:1::ca20:9d1d                | 2001:240::/32       | JP | apnic    "
        "| 2000-03-08 | IIJ Internet Initiative Japan Inc., JP",
        BulkRow(
            "2001:240:10c:1::ca20:9d1d",
            2497,
            "IIJ Internet Initiative Japan Inc., JP",
            "JP",
            "APNIC",
            "2001:240::/32",
            date(2000, 3, 8),
        ),
        id="ipv6",
    ),
    pytest.param(
        "15169 | 2001:4860:4860:0:0:0:0:8888 | 2001:4860:0::/32 | us | ARIN | 2005-03-14 "
        "| GOOGLE, US",
        BulkRow(
            "2001:4860:4860::8888",
            15169,
            "GOOGLE, US",
            "US",
            "ARIN",
            "2001:4860::/32",
            date(2005, 3, 14),
        ),
        id="ipv6-canonicalized",
    ),
    pytest.param(
        "64500 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000-01-01 | ACME\x00 Net\x1b, \x01US\x7f\x85",
        BulkRow("8.8.8.8", 64500, "ACME Net, US", "US", "ARIN", "8.8.8.0/24", date(2000, 1, 1)),
        id="nul-and-controls-in-name",
    ),
    pytest.param(
        "64500 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000-01-01 | TAB\tNAME, US\r",
        BulkRow("8.8.8.8", 64500, "TAB NAME, US", "US", "ARIN", "8.8.8.0/24", date(2000, 1, 1)),
        id="tab-and-cr-in-name",
    ),
    pytest.param(
        "64500 | 8.8.8.8 | 8.8.8.0/24 | ZZ | other | 2000-01-01 | X",
        BulkRow("8.8.8.8", 64500, "X", "ZZ", None, "8.8.8.0/24", date(2000, 1, 1)),
        id="unknown-registry",
    ),
    pytest.param(
        "64500 | 8.8.8.8 | 8.8.8.0/24 |    | AFRINIC |  |  ",
        BulkRow("8.8.8.8", 64500, None, None, "AFRINIC", "8.8.8.0/24", None),
        id="empty-country-date-name",
    ),
    pytest.param(
        "701 1239 | 8.8.8.8 | 8.8.8.0/24 | NA | afrinic | 2000-01-01 | NAMIBIA-NET",
        BulkRow("8.8.8.8", 701, "NAMIBIA-NET", "NA", "AFRINIC", "8.8.8.0/24", date(2000, 1, 1)),
        id="several-asns-first-taken-na-country-kept",
    ),
]


@pytest.mark.parametrize(("line", "expected"), ROW_CASES)
def test_parse_bulk_line(line: str, expected: BulkRow) -> None:
    assert parse_bulk_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("15169   | 74.125.225.229   | 74.125", id="truncated"),
        pytest.param("this is not a row", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(
            "AS15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000-01-01 | X", id="asn-prefixed"
        ),
        pytest.param(
            "4294967296 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000-01-01 | X", id="asn-too-big"
        ),
        pytest.param("15169 | 8.8.8.888 | 8.8.8.0/24 | US | arin | 2000-01-01 | X", id="bad-ip"),
        pytest.param("15169 | 8.8.8.8 | 8.8.8.0/33 | US | arin | 2000-01-01 | X", id="bad-prefix"),
        pytest.param(
            "15169 | 8.8.8.8 | 8.8.8.0 | US | arin | 2000-01-01 | X", id="prefix-no-length"
        ),
        pytest.param(
            "15169 | 8.8.8.8 | 8.8.8.0/24 | USA | arin | 2000-01-01 | X", id="bad-country"
        ),
        pytest.param(
            "15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000/01/01 | X", id="bad-date-form"
        ),
        pytest.param("15169 | 8.8.8.8 | 8.8.8.0/24 | US | arin | 2000-02-30 | X", id="bad-date"),
        pytest.param("\x00\x01 | | | | | | \x7f", id="binary"),
    ],
)
def test_parse_bulk_line_rejects(line: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_bulk_line(line)


@pytest.mark.parametrize("line", GARBAGE_LINES)
def test_garbage_lines_of_the_test_server_are_not_rows(line: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_bulk_line(line)


def test_parse_bulk_response_skips_header_and_counts_garbage() -> None:
    text = "\r\n".join(
        [
            "Bulk mode; whois.cymru.com [2024-10-15 05:46:42 +0000]",
            "AS      | IP               | BGP Prefix          | CC | Registry | Allocated "
            "| AS Name",
            "",
            ROW_8888,
            "15169   | 74.125.225.229   | 74.125",
            "Error: no ASN or IP match on line 3.",
            ROW_1111,
        ]
    )
    parsed = parse_bulk_response(text + "\r\n")
    assert [row.ip_address for row in parsed.rows] == ["8.8.8.8", "1.1.1.1"]
    assert parsed.rows[1].registry == "APNIC"
    assert parsed.skipped == 2
    assert parsed.first_skipped == "15169   | 74.125.225.229   | 74.125"


def test_parse_bulk_response_of_nothing() -> None:
    parsed = parse_bulk_response("")
    assert parsed.rows == ()
    assert parsed.skipped == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("  GOOGLE, US  ", "GOOGLE, US", id="stripped"),
        pytest.param("NA", None, id="na"),
        pytest.param(" \x00\x1f ", None, id="only-controls"),
        pytest.param("A\x00B\nC\u0085D", "AB CD", id="c0-and-c1-removed"),  # newline -> space
        pytest.param("Café Net, FR", "Café Net, FR", id="non-ascii-kept"),
        pytest.param("Bad\ud800 Net", "Bad Net", id="lone-surrogate-removed"),
        pytest.param("x" * 2000, "x" * MAX_NAME_LENGTH, id="truncated"),
    ],
)
def test_sanitize_name(raw: str, expected: str | None) -> None:
    assert sanitize_name(raw) == expected


# --- DNS TXT parsers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "23028 | 216.90.108.0/24 | US | arin | 1998-09-25",
            OriginAnswer((23028,), "216.90.108.0/24", "US", "ARIN", date(1998, 9, 25)),
            id="plain",
        ),
        pytest.param(
            '"15169 | 74.125.225.0/24 | US | arin | 2007-03-13"',
            OriginAnswer((15169,), "74.125.225.0/24", "US", "ARIN", date(2007, 3, 13)),
            id="dnspython-quoted",
        ),
        pytest.param(
            '"15169 | 74.125.225.0/24 " "| US | arin | 2007-03-13"',
            OriginAnswer((15169,), "74.125.225.0/24", "US", "ARIN", date(2007, 3, 13)),
            id="quoted-two-strings",
        ),
        pytest.param(
            "701 1239 3549 | 216.90.108.0/24 | US | arin | ",
            OriginAnswer((701, 1239, 3549), "216.90.108.0/24", "US", "ARIN", None),
            id="several-asns-no-date",
        ),
    ],
)
def test_parse_origin_txt(text: str, expected: OriginAnswer) -> None:
    answer = parse_origin_txt(text)
    assert answer == expected
    assert answer.asn == expected.asns[0]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("23028 | 216.90.108.0/24 | US", id="truncated"),
        pytest.param("23028 | 216.90.108.0/24 | US | arin | 1998-09-25 | extra", id="six-fields"),
        pytest.param('"23028 | 216.90.108.0/24 | US | arin', id="unclosed-quote"),
        pytest.param("x | 216.90.108.0/24 | US | arin | 1998-09-25", id="bad-asn"),
    ],
)
def test_parse_origin_txt_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_origin_txt(text)


def test_parse_as_txt_keeps_pipes_in_name() -> None:
    answer = parse_as_txt("1234 | EU | ripencc | 1993-09-01 | FORTUM-AS | Fortum, FI")
    assert (answer.asn, answer.country_code, answer.registry) == (1234, "EU", "RIPE")
    assert answer.allocation_date == date(1993, 9, 1)
    assert answer.name == "FORTUM-AS | Fortum, FI"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1234 | EU | ripencc | 1993-09-01", id="no-name"),
        pytest.param("1234 5678 | EU | ripencc | 1993-09-01 | X", id="two-asns"),
        pytest.param("NA | EU | ripencc | 1993-09-01 | X", id="na-asn"),
    ],
)
def test_parse_as_txt_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_as_txt(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain | text", "plain | text", id="plain-untouched"),
        pytest.param('"a \\"b\\" \\\\ c"', 'a "b" \\ c', id="escaped-quote-backslash"),
        pytest.param('"Caf\\195\\169"', "Café", id="utf8-bytes"),
    ],
)
def test_unquote_txt(text: str, expected: str) -> None:
    assert unquote_txt(text) == expected


def test_query_names() -> None:
    assert origin_qname(parse_ip("216.90.108.31")) == ORIGIN_31
    six = parse_ip("2001:db8::1")
    expected = six.reverse_pointer.removesuffix("ip6.arpa") + "origin6.asn.cymru.com."
    assert origin_qname(six) == expected
    assert expected == "1." + "0." * 23 + "8.b.d.0.1.0.0.2.origin6.asn.cymru.com."
    assert as_qname(23028) == AS23028


def test_most_specific_prefix_wins_in_any_order() -> None:
    wide = OriginAnswer((3561,), "216.88.0.0/14", "US", "ARIN", None)
    narrow = OriginAnswer((23028,), "216.90.108.0/24", "US", "ARIN", None)
    narrow_other = OriginAnswer((64500,), "216.90.108.0/24", "US", "ARIN", None)
    assert most_specific([wide, narrow]) == narrow
    assert most_specific([narrow_other, narrow, wide]) == narrow
    assert most_specific([narrow, narrow_other]) == narrow
    assert most_specific([]) is None


# --- result --------------------------------------------------------------------------------

FULL = CymruResult(
    "8.8.8.8", 15169, "GOOGLE, US", "US", "ARIN", "8.8.8.0/24", date(2023, 12, 28), T0
)
UNROUTED = CymruResult("2801:10:c000::", None, None, "CO", "LACNIC", None, None, T0)


@pytest.mark.parametrize("result", [FULL, UNROUTED], ids=["full", "unrouted"])
def test_result_round_trip(result: CymruResult) -> None:
    data = json.loads(json.dumps(result.to_enrichment()))
    assert data["fetched_at"] == "2025-01-01T12:00:00+00:00"
    assert CymruResult.from_enrichment(data) == result
    assert result.cached_at == result.fetched_at


@pytest.mark.parametrize(
    ("change", "key"),
    [
        pytest.param({"asn": "15169"}, "asn", id="asn-string"),
        pytest.param({"asn": True}, "asn", id="asn-bool"),
        pytest.param({"asn": -1}, "asn", id="asn-negative"),
        pytest.param({"registry": "ripencc"}, "registry", id="registry-raw"),
        pytest.param({"allocation_date": "2023-13-01"}, "date", id="bad-date"),
        pytest.param({"fetched_at": "2025-01-01T12:00:00"}, "aware", id="naive-fetched-at"),
        pytest.param({"ip_address": None}, "ip_address", id="ip-null"),
        pytest.param({"prefix": 24}, "prefix", id="prefix-int"),
    ],
)
def test_from_enrichment_rejects(change: dict[str, object], key: str) -> None:
    data = {**FULL.to_enrichment(), **change}
    with pytest.raises(ValueError, match=r".") as info:
        CymruResult.from_enrichment(data)
    assert key in str(info.value) or key == "date"


def test_from_enrichment_normalizes_to_utc() -> None:
    data = {**FULL.to_enrichment(), "fetched_at": "2025-01-01T14:00:00+02:00"}
    result = CymruResult.from_enrichment(data)
    assert result == FULL
    assert result.fetched_at.tzinfo is UTC


def test_from_enrichment_rejects_missing_key() -> None:
    data = FULL.to_enrichment()
    del data["prefix"]
    with pytest.raises(ValueError, match="prefix"):
        CymruResult.from_enrichment(data)


# --- bulk whois over loopback ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("batch_size", "connections"),
    [(1000, 1), (5000, 1), (500, 2), (300, 4), (999, 2)],
    ids=["batch-1000", "batch-5000", "batch-500", "batch-300", "batch-999"],
)
def test_bulk_connections_per_batch(batch_size: int, connections: int) -> None:
    ips = public_ips(1000)
    with WhoisServer() as srv:
        client, _ = bulk_client(srv, batch_size=batch_size, read_timeout=5.0)
        results = client.bulk_lookup(ips)
    assert srv.connections == connections == math.ceil(len(ips) / batch_size)
    assert list(results) == ips
    assert srv.received_ips == ips
    assert all(len(query) <= batch_size for query in srv.queries)
    assert results[ips[5]].prefix == str(ipaddress.ip_network(f"{ips[5]}/24", strict=False))
    assert client.stats() == ClientStats(lookups=1000, hits=1000)


def test_bulk_request_follows_the_protocol() -> None:
    with WhoisServer(rows_responder({"8.8.8.8": ROW_8888})) as srv:
        client, _ = bulk_client(srv)
        results = client.bulk_lookup(["8.8.8.8"])
    assert srv.requests == ["begin\nverbose\n8.8.8.8\nend\n"]
    assert results["8.8.8.8"] == CymruResult(
        "8.8.8.8", 15169, "GOOGLE, US", "US", "ARIN", "8.8.8.0/24", date(2023, 12, 28),
        results["8.8.8.8"].fetched_at,
    )  # fmt: skip


BOGONS = [
    "10.0.0.1",
    "192.168.1.1",
    "172.16.5.4",
    "127.0.0.1",
    "100.64.0.1",
    "198.51.100.7",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "fe80::1",
    "fc00::1",
    "2001:db8::1",
    "::ffff:10.0.0.1",
]


def test_bulk_never_sends_non_public_addresses() -> None:
    public = ["8.8.8.8", "1.1.1.1"]
    with WhoisServer(rows_responder({"8.8.8.8": ROW_8888, "1.1.1.1": ROW_1111})) as srv:
        client, _ = bulk_client(srv)
        results = client.bulk_lookup([*BOGONS[:7], public[0], *BOGONS[7:], public[1]])
    assert srv.received_ips == public
    assert sorted(results) == sorted(public)
    assert client.stats().lookups == 2


def test_bulk_of_only_bogons_opens_no_connection() -> None:
    with WhoisServer() as srv:
        client, _ = bulk_client(srv)
        assert client.bulk_lookup(BOGONS) == {}
    assert srv.connections == 0


@pytest.mark.parametrize("bad", ["not-an-ip", "8.8.8.256", "", "fe80::1%eth0"])
def test_bulk_rejects_invalid_input_before_sending(bad: str) -> None:
    with WhoisServer() as srv:
        client, _ = bulk_client(srv)
        with pytest.raises(InvalidIPError) as info:
            client.bulk_lookup(["8.8.8.8", bad, "1.1.1.1"])
    assert info.value.source == "cymru"
    assert srv.connections == 0


def test_bulk_deduplicates_by_canonical_form() -> None:
    asked = [
        "8.8.8.8",
        " 8.8.8.8 ",
        "::ffff:8.8.8.8",
        "2001:4860:4860:0::8888",
        "2001:4860:4860::8888",
    ]
    with WhoisServer() as srv:
        client, _ = bulk_client(srv)
        results = client.bulk_lookup(asked)
    assert srv.queries == [["8.8.8.8", "2001:4860:4860::8888"]]
    assert list(results) == ["8.8.8.8", "2001:4860:4860::8888"]


def test_bulk_ignores_unasked_rows_and_keeps_the_first_duplicate() -> None:
    second = ROW_8888.replace("15169", "64501").replace("GOOGLE, US", "OTHER")
    text = "\n".join(["Bulk mode; whois.cymru.com [x]", ROW_1111, ROW_8888, second]) + "\n"
    with WhoisServer(lambda _ips: text) as srv:
        client, _ = bulk_client(srv)
        results = client.bulk_lookup(["8.8.8.8"])
    assert list(results) == ["8.8.8.8"]
    assert results["8.8.8.8"].asn == 15169


def test_bulk_missing_address_is_absent_and_not_asked_again() -> None:
    with WhoisServer(rows_responder({"8.8.8.8": ROW_8888})) as srv:
        client, _ = bulk_client(srv)
        first = client.bulk_lookup(["8.8.8.8", "9.9.9.9"])
        second = client.bulk_lookup(["9.9.9.9", "8.8.8.8"])
    assert list(first) == ["8.8.8.8"]
    assert list(second) == ["8.8.8.8"]
    assert srv.connections == 1
    assert client.stats() == ClientStats(lookups=4, hits=2, misses=2)


def test_bulk_unrouted_row_gives_result_without_asn_and_is_cached() -> None:
    na_row = "NA      | 45.0.0.1         | NA                  | CO | lacnic   | 2013-10-29 | NA"
    with WhoisServer(rows_responder({"45.0.0.1": na_row})) as srv:
        client, _ = bulk_client(srv)
        first = client.bulk_lookup(["45.0.0.1"])
        second = client.bulk_lookup(["45.0.0.1"])
    assert first == second
    result = first["45.0.0.1"]
    assert (result.asn, result.prefix, result.asn_org) == (None, None, None)
    assert (result.country_code, result.registry) == ("CO", "LACNIC")
    assert srv.connections == 1


@pytest.mark.parametrize(
    ("fault", "connections"),
    [(Fault.REFUSE, 0), (Fault.NEVER_ANSWER, 3), (Fault.CLOSE_MID_RESPONSE, 3)],
    ids=["refused", "never-answers", "closes-mid-response"],
)
def test_bulk_retries_then_fails(fault: Fault, connections: int) -> None:
    started = time.monotonic()
    with WhoisServer(fault=fault) as srv:
        client, sleeps = bulk_client(srv, retries=2, backoff=0.5, read_timeout=0.2)
        with pytest.raises(SourceUnavailableError, match="after 3 attempt") as info:
            client.bulk_lookup(["8.8.8.8", "1.1.1.1"])
    assert time.monotonic() - started < 2.0
    assert srv.connections == connections
    assert sleeps == [0.5, 1.0]
    assert info.value.source == "cymru"
    assert isinstance(info.value.__cause__, SourceUnavailableError)
    assert client.stats() == ClientStats(lookups=2, errors=2)


def test_bulk_without_retries_tries_once() -> None:
    with WhoisServer(fault=Fault.CLOSE_MID_RESPONSE) as srv:
        client, sleeps = bulk_client(srv, retries=0)
        with pytest.raises(SourceUnavailableError, match="mid-answer"):
            client.bulk_lookup(["8.8.8.8"])
    assert (srv.connections, sleeps) == (1, [])


def test_bulk_recovers_when_a_retry_succeeds() -> None:
    faults = [Fault.CLOSE_MID_RESPONSE, Fault.NEVER_ANSWER]
    with WhoisServer(rows_responder({"8.8.8.8": ROW_8888}), faults=faults) as srv:
        client, sleeps = bulk_client(srv, backoff=0.25, read_timeout=0.5)
        results = client.bulk_lookup(["8.8.8.8"])
    assert results["8.8.8.8"].asn == 15169
    assert srv.connections == 3
    assert sleeps == [0.25, 0.5]


def test_failed_batch_keeps_earlier_batches() -> None:
    faults = [Fault.NONE, *[Fault.CLOSE_MID_RESPONSE] * 3]
    with WhoisServer(faults=faults) as srv:
        client, _ = bulk_client(srv, batch_size=1, retries=2)
        with pytest.raises(SourceUnavailableError):
            client.bulk_lookup(["8.8.8.8", "1.1.1.1"])
        results = client.bulk_lookup(["8.8.8.8", "1.1.1.1"])
    assert list(results) == ["8.8.8.8", "1.1.1.1"]
    assert srv.queries == [["8.8.8.8"], ["1.1.1.1"], ["1.1.1.1"], ["1.1.1.1"], ["1.1.1.1"]]


def test_bulk_answer_without_any_row_is_a_failure() -> None:
    text = "Bulk mode; whois.cymru.com [x]\nError: query limit exceeded\n"
    with WhoisServer(canned_responder(text)) as srv:
        client, sleeps = bulk_client(srv)
        with pytest.raises(SourceUnavailableError, match=r"no readable row.*query limit"):
            client.bulk_lookup(["8.8.8.8"])
    assert (srv.connections, len(sleeps)) == (3, 2)


def test_bulk_header_only_answer_finds_nothing() -> None:
    with WhoisServer(canned_responder("Bulk mode; whois.cymru.com [x]\n")) as srv:
        client, _ = bulk_client(srv)
        assert client.bulk_lookup(["8.8.8.8"]) == {}
    assert client.stats() == ClientStats(lookups=1, misses=1)


def test_bulk_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="iterable"):
        CymruClient(dns=FakeResolver({})).bulk_lookup("8.8.8.8")


def test_bulk_skips_garbage_rows_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with WhoisServer(fault=Fault.GARBAGE) as srv:
        client, _ = bulk_client(srv)
        with caplog.at_level(logging.WARNING, logger="cowrieprocessor.enrichment.cymru_client"):
            results = client.bulk_lookup(["8.8.8.8", "2a00:1450::1"])
    assert list(results) == ["8.8.8.8", "2a00:1450::1"]
    assert results["2a00:1450::1"].prefix == "2a00:1450::/48"
    # header + 2 rows: one garbage line before each
    assert "skipped 3 malformed line(s), kept 2 row(s)" in caplog.text


def test_socket_exchange_refuses_an_oversized_answer() -> None:
    with WhoisServer() as srv:
        exchange = SocketWhoisExchange(srv.host, srv.port, 0.5, 1.0, max_bytes=200)
        with pytest.raises(SourceUnavailableError, match="larger than 200 bytes"):
            exchange.exchange(["begin", "verbose", *public_ips(20), "end"])


def test_socket_exchange_returns_the_text() -> None:
    with WhoisServer(generated_responder(lambda ip: synthetic_row(ip, asn=7))) as srv:
        text = SocketWhoisExchange(srv.host, srv.port).exchange(["begin", "9.9.9.9", "end"])
    assert text.startswith("Bulk mode; whois.cymru.com [")
    assert text.endswith("| 9.9.9.9          | 9.9.9.0/24          | US | arin     | 2000-01-01 "
                         "| EXAMPLE-AS Example Net, US\n")  # fmt: skip
    assert srv.queries == [["9.9.9.9"]]


@pytest.mark.parametrize(
    ("batch_size", "retries", "backoff"),
    [(0, 2, 0.5), (500, -1, 0.5), (500, 2, -0.1)],
    ids=["batch-size", "retries", "backoff"],
)
def test_client_rejects_bad_settings(batch_size: int, retries: int, backoff: float) -> None:
    with pytest.raises(ValueError, match=r"."):
        CymruClient(dns=FakeResolver({}), batch_size=batch_size, retries=retries, backoff=backoff)


# --- cache -----------------------------------------------------------------------------------


def test_cache_expires_after_ttl() -> None:
    clock = FakeClock()
    with WhoisServer() as srv:
        client, _ = bulk_client(srv, clock=clock, cache_ttl=timedelta(days=90))
        first = client.bulk_lookup(["8.8.8.8"])
        clock.advance(timedelta(days=89, hours=23))
        assert client.bulk_lookup(["8.8.8.8"]) == first
        assert srv.connections == 1
        clock.advance(timedelta(hours=1))
        again = client.bulk_lookup(["8.8.8.8"])
    assert srv.connections == 2
    assert first["8.8.8.8"].fetched_at == T0
    assert again["8.8.8.8"].fetched_at == T0 + timedelta(days=90)


def test_cache_is_shared_by_bulk_and_dns() -> None:
    resolver = FakeResolver({})
    with WhoisServer() as srv:
        client = CymruClient(host=srv.host, port=srv.port, dns=resolver)
        bulk = client.bulk_lookup(["8.8.8.8"])
        assert client.lookup_asn("8.8.8.8") == bulk["8.8.8.8"]
    assert resolver.queries == []


# --- DNS path through the TxtResolver seam ---------------------------------------------------

TEAM_CYMRU = {
    ORIGIN_31: ["23028 | 216.90.108.0/24 | US | arin | 1998-09-25"],
    AS23028: ["23028 | US | arin | 2002-01-04 | TEAM-CYMRU - Team Cymru Inc., US"],
}


def test_lookup_asn_through_dns() -> None:
    resolver = FakeResolver(TEAM_CYMRU)
    client = CymruClient(dns=resolver, clock=FakeClock())
    result = client.lookup_asn("216.90.108.31")
    assert result == CymruResult(
        "216.90.108.31", 23028, "TEAM-CYMRU - Team Cymru Inc., US", "US", "ARIN",
        "216.90.108.0/24", date(1998, 9, 25), T0,
    )  # fmt: skip
    assert resolver.queries == [ORIGIN_31, AS23028]
    assert client.lookup_asn("::ffff:216.90.108.31") == result
    assert resolver.queries == [ORIGIN_31, AS23028]
    assert client.stats() == ClientStats(lookups=2, hits=2)


def test_lookup_asn_ipv6_uses_origin6() -> None:
    qname = origin_qname(parse_ip("2a00:1450::1"))
    resolver = FakeResolver(
        {
            qname: ['"15169 | 2a00:1450::/32 | IE | ripencc | 2009-10-05"'],
            "AS15169.asn.cymru.com.": ['"15169 | US | arin | 2000-03-30 | GOOGLE, US"'],
        }
    )
    result = CymruClient(dns=resolver).lookup_asn("2A00:1450:0::1")
    assert qname.endswith(".0.5.4.1.0.0.a.2.origin6.asn.cymru.com.")
    assert result is not None
    assert (result.ip_address, result.asn, result.asn_org) == ("2a00:1450::1", 15169, "GOOGLE, US")
    assert (result.prefix, result.registry) == ("2a00:1450::/32", "RIPE")


def test_lookup_asn_not_found_is_none_and_cached() -> None:
    resolver = FakeResolver({})
    client = CymruClient(dns=resolver)
    assert client.lookup_asn("8.8.8.8") is None
    assert client.lookup_asn("8.8.8.8") is None
    assert resolver.queries == ["8.8.8.8.origin.asn.cymru.com."]
    assert client.stats() == ClientStats(lookups=2, misses=2)


def test_lookup_asn_timeout_raises_and_is_not_cached() -> None:
    failure = SourceUnavailableError("DNS query timed out", source="cymru")
    resolver = FakeResolver({ORIGIN_31: failure})
    client = CymruClient(dns=resolver)
    for _ in range(2):
        with pytest.raises(SourceUnavailableError, match="timed out"):
            client.lookup_asn("216.90.108.31")
    assert resolver.queries == [ORIGIN_31, ORIGIN_31]
    assert client.stats() == ClientStats(lookups=2, errors=2)


def test_lookup_asn_name_failure_raises() -> None:
    failure = SourceUnavailableError("DNS query timed out", source="cymru")
    resolver = FakeResolver({**TEAM_CYMRU, AS23028: failure})
    with pytest.raises(SourceUnavailableError):
        CymruClient(dns=resolver).lookup_asn("216.90.108.31")


@pytest.mark.parametrize("reverse", [False, True], ids=["narrow-first", "wide-first"])
def test_lookup_asn_takes_most_specific_prefix(reverse: bool) -> None:
    records = [
        "23028 | 216.90.108.0/24 | US | arin | 1998-09-25",
        "3561 | 216.88.0.0/14 | US | arin | 1998-09-25",
    ]
    resolver = FakeResolver({**TEAM_CYMRU, ORIGIN_31: records[::-1] if reverse else records})
    result = CymruClient(dns=resolver).lookup_asn("216.90.108.31")
    assert result is not None
    assert (result.asn, result.prefix) == (23028, "216.90.108.0/24")


def test_lookup_asn_several_origin_asns_takes_the_first() -> None:
    resolver = FakeResolver(
        {
            ORIGIN_31: ["701 1239 3549 | 216.90.108.0/24 | US | arin | 1998-09-25"],
            "AS701.asn.cymru.com.": ["701 | US | arin | 1990-08-03 | UUNET, US"],
        }
    )
    result = CymruClient(dns=resolver).lookup_asn("216.90.108.31")
    assert result is not None
    assert (result.asn, result.asn_org) == (701, "UUNET, US")
    assert resolver.queries == [ORIGIN_31, "AS701.asn.cymru.com."]


def test_lookup_asn_without_as_name() -> None:
    resolver = FakeResolver({ORIGIN_31: TEAM_CYMRU[ORIGIN_31], AS23028: ["garbage"]})
    result = CymruClient(dns=resolver).lookup_asn("216.90.108.31")
    assert result is not None
    assert (result.asn, result.asn_org) == (23028, None)


def test_lookup_asn_asks_each_as_name_once() -> None:
    other = "32.108.90.216.origin.asn.cymru.com."
    resolver = FakeResolver({**TEAM_CYMRU, other: TEAM_CYMRU[ORIGIN_31]})
    client = CymruClient(dns=resolver)
    client.lookup_asn("216.90.108.31")
    client.lookup_asn("216.90.108.32")
    assert resolver.queries == [ORIGIN_31, AS23028, other]


def test_lookup_asn_unreadable_answer_is_unavailable() -> None:
    resolver = FakeResolver({ORIGIN_31: ["<html>blocked</html>"]})
    with pytest.raises(SourceUnavailableError, match="unreadable origin answer"):
        CymruClient(dns=resolver).lookup_asn("216.90.108.31")


@pytest.mark.parametrize("ip", ["10.1.2.3", "127.0.0.1", "2001:db8::5", "fe80::1"])
def test_lookup_asn_never_asks_for_non_public(ip: str) -> None:
    resolver = FakeResolver({})
    client = CymruClient(dns=resolver)
    assert client.lookup_asn(ip) is None
    assert resolver.queries == []
    assert client.stats() == ClientStats()


def test_lookup_asn_rejects_invalid_input() -> None:
    resolver = FakeResolver({})
    with pytest.raises(InvalidIPError):
        CymruClient(dns=resolver).lookup_asn("216.90.108")
    assert resolver.queries == []


# --- dnspython errors and the default resolver -----------------------------------------------

QUERY = dns.message.make_query("x.example.", "TXT")


def build(cls: type[Exception], *args: object, **kwargs: object) -> Exception:
    """A real exception instance (dnspython's constructors are untyped)."""
    return cls(*args, **kwargs)


DNS_ERRORS = [
    pytest.param(
        build(dns.resolver.NXDOMAIN, qnames=[dns.name.from_text("x.")]), None, id="nxdomain"
    ),
    pytest.param(
        build(dns.resolver.NoAnswer, response=dns.message.make_response(QUERY)),
        None,
        id="noanswer",
    ),
    pytest.param(build(dns.exception.Timeout, timeout=1.0), "timed out", id="timeout"),
    pytest.param(
        build(dns.resolver.LifetimeTimeout, timeout=5.0, errors=[]), "timed out", id="lifetime"
    ),
    pytest.param(
        build(dns.resolver.NoNameservers, request=QUERY, errors=[]),
        "no nameserver",
        id="no-nameservers",
    ),
    pytest.param(build(dns.resolver.NoResolverConfiguration), "no DNS resolver", id="no-config"),
    pytest.param(build(dns.resolver.YXDOMAIN), "failed: YXDOMAIN", id="yxdomain"),
    pytest.param(
        build(ConnectionRefusedError, 111, "Connection refused"),
        "Connection refused",
        id="oserror",
    ),
]


@pytest.mark.parametrize(("exc", "reason"), DNS_ERRORS)
def test_translate_dns_error(exc: Exception, reason: str | None) -> None:
    error = translate_dns_error(exc, "x.example.")
    if reason is None:
        assert error is None
    else:
        assert isinstance(error, SourceUnavailableError)
        assert error.source == "cymru"
        assert reason in str(error)
        assert "x.example." in str(error)


class LoopbackDns:
    """A UDP DNS server on 127.0.0.1 answering TXT queries from a table.

    A name maps to its TXT strings (``[]``: the name exists without TXT), to
    ``"SERVFAIL"``, or to ``"SILENT"`` (never answered); other names are NXDOMAIN.
    """

    def __init__(self, table: Mapping[str, list[str] | str]) -> None:
        self.table = dict(table)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> LoopbackDns:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = self._answer(dns.message.from_wire(data))
            if reply is not None:
                self.sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        entry = self.table.get(question.name.to_text())
        if entry == "SILENT":
            return None
        response = dns.message.make_response(query)
        if entry is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif entry == "SERVFAIL":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif isinstance(entry, list):
            for text in entry:
                rdata = dns.rdtypes.ANY.TXT.TXT(
                    dns.rdataclass.IN, dns.rdatatype.TXT, [text.encode("utf-8")]
                )
                response.answer.append(dns.rrset.from_rdata(question.name, 60, rdata))
        return response


@pytest.fixture
def loopback_dns() -> Iterator[LoopbackDns]:
    table: dict[str, list[str] | str] = {
        **TEAM_CYMRU,
        "empty.example.": [],
        "broken.example.": "SERVFAIL",
        "silent.example.": "SILENT",
    }
    with LoopbackDns(table) as server:
        yield server


def _resolver(server: LoopbackDns) -> DnsTxtResolver:
    return DnsTxtResolver(nameservers=["127.0.0.1"], port=server.port, timeout=0.2, lifetime=0.4)


def test_dns_resolver_reads_txt(loopback_dns: LoopbackDns) -> None:
    assert _resolver(loopback_dns).resolve_txt(AS23028) == TEAM_CYMRU[AS23028]


@pytest.mark.parametrize(
    "qname", ["missing.example.", "empty.example."], ids=["nxdomain", "no-txt"]
)
def test_dns_resolver_not_found_is_empty(loopback_dns: LoopbackDns, qname: str) -> None:
    assert _resolver(loopback_dns).resolve_txt(qname) == []


@pytest.mark.parametrize(
    ("qname", "reason"),
    [("broken.example.", "no nameserver"), ("silent.example.", "timed out")],
    ids=["servfail", "no-answer-at-all"],
)
def test_dns_resolver_failures(loopback_dns: LoopbackDns, qname: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnavailableError, match=reason) as info:
        _resolver(loopback_dns).resolve_txt(qname)
    assert isinstance(info.value.__cause__, dns.exception.DNSException)
    assert time.monotonic() - started < 2.0


def test_lookup_asn_over_real_dns(loopback_dns: LoopbackDns) -> None:
    client = CymruClient(dns=_resolver(loopback_dns))
    result = client.lookup_asn("216.90.108.31")
    assert result is not None
    assert (result.asn, result.asn_org) == (23028, "TEAM-CYMRU - Team Cymru Inc., US")
    assert client.lookup_asn("8.8.8.8") is None

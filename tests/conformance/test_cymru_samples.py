"""Real Team Cymru answers (../shared/data/cymru) through the parsers and the client.

Each bulk whois sample is served verbatim by the loopback whois server and read
back through :meth:`CymruClient.bulk_lookup`; each DNS TXT answer is parsed, and
the DNS path is driven end to end with the real answers at the resolver seam.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from cowrieprocessor.enrichment.addresses import parse_ip
from cowrieprocessor.enrichment.cymru_client import CymruClient, CymruResult
from cowrieprocessor.enrichment.cymru_parse import (
    ASAnswer,
    OriginAnswer,
    origin_qname,
    parse_as_txt,
    parse_bulk_response,
    parse_origin_txt,
)
from tests.support.whois_server import WhoisServer, canned_responder

pytestmark = pytest.mark.shared_data

#: asn, asn_org, country_code, registry, prefix, allocation_date
Row = tuple[int | None, str | None, str | None, str | None, str | None, date | None]

IPWHOIS_IPS = [
    "74.125.225.229",
    "2001:4860:4860::8888",
    "62.239.237.1",
    "2a00:2381:ffff::1",
    "210.107.73.73",
    "2001:240:10c:1::ca20:9d1d",
    "200.57.141.161",
    "2801:10:c000::",
    "196.11.240.215",
    "2001:43f8:7b0::",
    "133.1.2.5",
    "115.1.2.3",
]
TEAM_CYMRU_ROW: Row = (
    23028,
    "TEAM-CYMRU - Team Cymru Inc., US",
    "US",
    "ARIN",
    "68.22.187.0/24",
    date(2002, 3, 15),
)
NA_ROW: Row = (None, None, "CO", "LACNIC", None, date(2013, 10, 29))
BT_V6: Row = (
    2856,
    "BT-UK-AS BTnet UK Regional network, GB",
    "GB",
    "RIPE",
    "2a00:2380::/25",
    date(2007, 8, 29),
)
TESPOK: Row = (37578, "Tespok, KE", "KE", "AFRINIC", "2001:43f8:7b0::/48", date(2013, 3, 22))

BULK_SAMPLES: dict[str, tuple[list[str], dict[str, Row]]] = {
    "bulk_verbose_ipwhois_2017-07-30.txt": (
        IPWHOIS_IPS,
        {
            "74.125.225.229": (
                15169,
                "GOOGLE - Google Inc., US",
                "US",
                "ARIN",
                "74.125.225.0/24",
                date(2007, 3, 13),
            ),
            "2801:10:c000::": NA_ROW,
            "210.107.73.73": (
                3786,
                "LGDACOM LG DACOM Corporation, KR",
                "KR",
                "APNIC",
                "210.107.0.0/17",
                None,
            ),
            "196.11.240.215": (12091, "MTNNS-1, ZA", "ZA", "AFRINIC", "196.11.240.0/24", None),
            "133.1.2.5": (4730, "ODINS Osaka University, JP", "JP", "APNIC", "133.1.0.0/16", None),
            "200.57.141.161": (
                19373,
                "Triara.com, S.A. de C.V., MX",
                "MX",
                "LACNIC",
                "200.57.128.0/20",
                date(2000, 12, 4),
            ),
            "115.1.2.3": (
                4134,
                "CHINANET-BACKBONE No.31,Jin-rong Street, CN",
                "KR",
                "APNIC",
                "115.0.0.0/14",
                date(2008, 7, 1),
            ),
            "2a00:2381:ffff::1": BT_V6,
        },
    ),
    "bulk_verbose_ipwhois_2020-09-15.txt": (
        IPWHOIS_IPS,
        {
            "2001:4860:4860::8888": (
                15169,
                "GOOGLE, US",
                "US",
                "ARIN",
                "2001:4860::/32",
                date(2005, 3, 14),
            ),
            "62.239.237.1": (
                2856,
                "BT-UK-AS BTnet UK Regional network, GB",
                "GB",
                "RIPE",
                "62.239.0.0/16",
                date(2001, 1, 2),
            ),
            "2801:10:c000::": NA_ROW,
            "200.57.141.161": (
                19373,
                "Triara.com, S.A. de C.V., MX",
                "MX",
                "LACNIC",
                "200.57.128.0/20",
                date(2000, 12, 4),
            ),
            "196.11.240.215": (
                12091,
                "MTNNS-1, ZA",
                "ZA",
                "AFRINIC",
                "196.11.240.0/24",
                date(1994, 7, 21),
            ),
            "2001:240:10c:1::ca20:9d1d": (
                2497,
                "IIJ Internet Initiative Japan Inc., JP",
                "JP",
                "APNIC",
                "2001:240::/32",
                date(2000, 3, 8),
            ),
            "2001:43f8:7b0::": TESPOK,
        },
    ),
    "bulk_verbose_ipwhois_2024-10-15.txt": (
        IPWHOIS_IPS,
        {
            "2801:10:c000::": (
                264653,
                "Universidad Catolica de Oriente, CO",
                "CO",
                "LACNIC",
                "2801:10:c000::/48",
                date(2013, 10, 29),
            ),
            "200.57.141.161": (
                19373,
                "Triara.com S.A. de C.V., MX",
                "MX",
                "LACNIC",
                "200.57.128.0/20",
                date(2000, 12, 4),
            ),
            "115.1.2.3": (
                4766,
                "KIXS-AS-KR Korea Telecom, KR",
                "KR",
                "APNIC",
                "115.0.0.0/12",
                date(2008, 7, 1),
            ),
            "2a00:2381:ffff::1": BT_V6,
            "2001:43f8:7b0::": TESPOK,
        },
    ),
    "bulk_verbose_cymru-asnmap_2016-05-02_cidr.txt": (
        [f"68.22.187.{n}" for n in range(8)],
        {f"68.22.187.{n}": TEAM_CYMRU_ROW for n in range(8)},
    ),
    "bulk_verbose_cymru-asnmap_2016-05-02_list.txt": (
        ["68.22.187.5", "207.229.165.18", "198.6.1.65"],
        {
            "68.22.187.5": TEAM_CYMRU_ROW,
            "207.229.165.18": (6079, "RCN-AS - RCN, US", "US", "ARIN", "207.229.128.0/18", None),
            "198.6.1.65": (
                701,
                "UUNET - MCI Communications Services, Inc. d/b/a Verizon Business, US",
                "US",
                "ARIN",
                "198.6.0.0/16",
                None,
            ),
        },
    ),
}


def _row(result: CymruResult) -> Row:
    return (
        result.asn,
        result.asn_org,
        result.country_code,
        result.registry,
        result.prefix,
        result.allocation_date,
    )


@pytest.mark.parametrize("name", sorted(BULK_SAMPLES))
def test_bulk_sample_parses(shared_data: Path, name: str) -> None:
    asked, expected = BULK_SAMPLES[name]
    text = (shared_data / "cymru" / name).read_text(encoding="utf-8")
    parsed = parse_bulk_response(text)
    assert parsed.skipped == 0
    assert [row.ip_address for row in parsed.rows] == asked
    rows = {row.ip_address: row for row in parsed.rows}
    for ip, (asn, org, country, registry, prefix, allocated) in expected.items():
        row = rows[ip]
        assert (row.asn, row.asn_org, row.country_code) == (asn, org, country), ip
        assert (row.registry, row.prefix, row.allocation_date) == (registry, prefix, allocated), ip


@pytest.mark.parametrize("name", sorted(BULK_SAMPLES))
def test_bulk_sample_served_verbatim(shared_data: Path, name: str) -> None:
    asked, expected = BULK_SAMPLES[name]
    text = (shared_data / "cymru" / name).read_text(encoding="utf-8")
    with WhoisServer(canned_responder(text)) as srv:
        client = CymruClient(host=srv.host, port=srv.port, read_timeout=5.0)
        results = client.bulk_lookup(asked)
    assert srv.queries == [asked]
    assert list(results) == asked
    for ip, row in expected.items():
        assert _row(results[ip]) == row, ip
    assert all(result.registry is not None for result in results.values())


# --- DNS TXT answers -------------------------------------------------------------------------

ORIGIN_TEAM_CYMRU = OriginAnswer((23028,), "216.90.108.0/24", "US", "ARIN", date(1998, 9, 25))
ORIGIN6_GOOGLE = OriginAnswer((15169,), "2001:4860::/32", "US", "ARIN", date(2005, 3, 14))

#: In file order: (zone, qname or ip/asn key, expected parse of every text of the entry).
DNS_EXPECTED: list[tuple[str, str, OriginAnswer | ASAnswer]] = [
    ("origin", "31.108.90.216.origin.asn.cymru.com.", ORIGIN_TEAM_CYMRU),
    ("origin", "0.108.90.216.origin.asn.cymru.com.", ORIGIN_TEAM_CYMRU),
    ("origin6", origin_qname(parse_ip("2001:4860:b002::68")), ORIGIN6_GOOGLE),
    (
        "peer",
        "31.108.90.216.peer.asn.cymru.com.",
        OriginAnswer(
            (701, 1239, 3549, 3561, 7132), "216.90.108.0/24", "US", "ARIN", date(1998, 9, 25)
        ),
    ),
    (
        "asn",
        "AS23028.asn.cymru.com.",
        ASAnswer(23028, "US", "ARIN", date(2002, 1, 4), "TEAM-CYMRU - Team Cymru Inc., US"),
    ),
    (
        "asn",
        "AS1234.asn.cymru.com.",
        ASAnswer(1234, "EU", "RIPE", date(1993, 9, 1), "FORTUM-AS | Fortum, FI"),
    ),
    (
        "origin",
        "ip=74.125.225.229",
        OriginAnswer((15169,), "74.125.225.0/24", "US", "ARIN", date(2007, 3, 13)),
    ),
    (
        "asn",
        "asn=15169",
        ASAnswer(15169, "US", "ARIN", date(2007, 3, 13), "GOOGLE - Google Inc., US"),
    ),
    (
        "origin",
        "31.108.90.216.origin.asn.cymru.com",
        OriginAnswer((3561,), "216.88.0.0/14", "US", "ARIN", date(1998, 9, 25)),
    ),
    ("origin6", origin_qname(parse_ip("2001:4860:b002::68")), ORIGIN6_GOOGLE),
]


def _answers(shared_data: Path) -> list[dict[str, Any]]:
    document = json.loads((shared_data / "cymru" / "dns_txt_answers.json").read_text("utf-8"))
    answers: list[dict[str, Any]] = document["answers"]
    return answers


def _key(entry: dict[str, Any]) -> str:
    if entry.get("qname"):
        return str(entry["qname"])
    return f"ip={entry['ip']}" if "ip" in entry else f"asn={entry['asn']}"


def _texts(entry: dict[str, Any]) -> list[str]:
    texts = list(entry.get("txt", []))
    for quoted in ("txt_as_returned_by_dnspython_to_text", "dig_output"):
        if quoted in entry:
            assert entry[quoted].startswith('"')
            texts.append(entry[quoted])
    return texts


@pytest.mark.parametrize("index", range(len(DNS_EXPECTED)), ids=[k for _, k, _ in DNS_EXPECTED])
def test_dns_answer_parses(shared_data: Path, index: int) -> None:
    entries = _answers(shared_data)
    assert len(entries) == len(DNS_EXPECTED)
    zone, key, expected = DNS_EXPECTED[index]
    entry = entries[index]
    assert (entry["zone"], _key(entry)) == (zone, key)
    parse = parse_as_txt if zone == "asn" else parse_origin_txt
    texts = _texts(entry)
    assert texts
    assert [parse(text) for text in texts] == [expected] * len(texts)


class SampleResolver:
    """Answers with the sample TXT strings (the first sample of a name wins)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.answers: dict[str, list[str]] = {}
        for entry in entries:
            qname = entry.get("qname") or (
                f"AS{entry['asn']}.asn.cymru.com." if "asn" in entry else None
            )
            if qname:
                self.answers.setdefault(qname.rstrip(".") + ".", _texts(entry)[:1])
        self.queries: list[str] = []

    def resolve_txt(self, qname: str) -> list[str]:
        self.queries.append(qname)
        return self.answers.get(qname, [])


def test_lookup_asn_with_sample_answers(shared_data: Path) -> None:
    resolver = SampleResolver(_answers(shared_data))
    client = CymruClient(dns=resolver)
    cymru = client.lookup_asn("216.90.108.31")
    google = client.lookup_asn("2001:4860:b002::68")
    assert cymru is not None
    assert google is not None
    assert _row(cymru) == (
        23028,
        "TEAM-CYMRU - Team Cymru Inc., US",
        "US",
        "ARIN",
        "216.90.108.0/24",
        date(1998, 9, 25),
    )
    # the AS15169 answer is the quoted dnspython form
    assert _row(google) == (
        15169,
        "GOOGLE - Google Inc., US",
        "US",
        "ARIN",
        "2001:4860::/32",
        date(2005, 3, 14),
    )
    assert resolver.queries == [
        "31.108.90.216.origin.asn.cymru.com.",
        "AS23028.asn.cymru.com.",
        DNS_EXPECTED[2][1],
        "AS15169.asn.cymru.com.",
    ]

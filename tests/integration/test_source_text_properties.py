"""Hostile text from the sources is stored safely on SQLite and PostgreSQL.

Organization names, cities and GreyNoise names may carry NUL bytes (PostgreSQL
refuses U+0000 in ``text`` and ``jsonb``), control characters, astral-plane
characters or 10,000 characters. The rule of
:mod:`cowrieprocessor.enrichment.text` applies to all of them: no C0/C1 control
character survives (tab and newline become spaces), the text is stripped and
cut to ``MAX_TEXT`` characters, and everything else, non-ASCII included, is
kept. No IP may be lost over it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from cowrieprocessor.db import ASNInventory, Database, IPInventory
from cowrieprocessor.enrichment.cascade_enricher import CascadeEnricher, IPOutcome
from cowrieprocessor.enrichment.text import MAX_TEXT
from tests.support.fakes import (
    FakeCymru,
    FakeGreyNoise,
    FakeMaxMind,
    cymru_result,
    greynoise_result,
    maxmind_result,
)

# 8.8.8.8 and 1.1.1.1 get their ASN from MaxMind, 9.9.9.9 from Cymru.
IPS = ["8.8.8.8", "1.1.1.1", "9.9.9.9"]
ASNS = {"8.8.8.8": 64500, "1.1.1.1": 64501, "9.9.9.9": 64502}

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Everything but lone surrogates (they cannot be encoded; see the surrogate test below).
characters = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"])
hostile = st.sampled_from(
    ["\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\x9f", "\t", "\n", "\r", " ", "\u2028"]
)
astral = st.sampled_from(["\U0001f600", "\U0001d11e", "\U00020000", "\u4e2d\u56fd", "K\u00f6ln"])
pieces = st.lists(st.one_of(characters, hostile, astral, st.text(max_size=8)), max_size=40)
source_text = st.one_of(
    pieces.map("".join),
    st.tuples(pieces.map("".join), st.integers(1000, 10_000)).map(lambda t: t[0] + "\u00e9" * t[1]),
)


def is_control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F


def expected_text(value: str) -> str:
    """The documented rule, written out independently of the implementation."""
    spaced = "".join(" " if char in "\t\n" else char for char in value)
    return "".join(char for char in spaced if not is_control(char)).strip()[:MAX_TEXT]


def _no_surrogates(value: str) -> str:
    return "".join(char for char in value if not 0xD800 <= ord(char) <= 0xDFFF)


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def assert_safe(value: Any) -> None:
    for text in strings_in(value):
        assert not any(is_control(char) for char in text), repr(text[:80])
        assert not any(0xD800 <= ord(char) <= 0xDFFF for char in text), repr(text[:80])
        assert len(text) <= MAX_TEXT


def enrich(database: Database, org: str, city: str, name: str) -> dict[str, IPOutcome]:
    maxmind = FakeMaxMind(
        {
            "8.8.8.8": maxmind_result("8.8.8.8", ASNS["8.8.8.8"], org=org, city=city),
            "1.1.1.1": maxmind_result("1.1.1.1", ASNS["1.1.1.1"], org="PLAIN", city=city),
        }
    )
    cymru = FakeCymru({"9.9.9.9": cymru_result("9.9.9.9", ASNS["9.9.9.9"], org=org)})
    greynoise = FakeGreyNoise({ip: replace(greynoise_result(ip), name=name) for ip in IPS})
    with database.sessions() as session:
        report = CascadeEnricher(maxmind, cymru, greynoise, session).enrich_ips(IPS)
        session.commit()
    return dict(report.outcomes)


def stored(database: Database) -> tuple[dict[str, dict[str, Any]], dict[int, str | None]]:
    with database.sessions() as session:
        ips: dict[str, Any] = dict(
            session.execute(select(IPInventory.ip_address, IPInventory.enrichment)).all()
        )
        orgs = dict(
            session.execute(select(ASNInventory.asn_number, ASNInventory.organization_name)).all()
        )
    return {ip: dict(enrichment) for ip, enrichment in ips.items()}, orgs


def clear(database: Database) -> None:
    with database.sessions() as session:
        session.execute(delete(IPInventory))
        session.execute(delete(ASNInventory))
        session.commit()


def check(database: Database, org: str, city: str, name: str, *, lone: bool = False) -> None:
    """Enrich ``IPS`` with this text from every source and check what was stored.

    With ``lone``, lone surrogates are expected to be dropped as well.
    """
    try:
        outcomes = enrich(database, org, city, name)
        ips, orgs = stored(database)
    finally:
        clear(database)
    if lone:
        org, city, name = (_no_surrogates(text) for text in (org, city, name))
    assert outcomes == dict.fromkeys(IPS, IPOutcome.ENRICHED)
    assert set(ips) == set(IPS)
    assert set(orgs) == set(ASNS.values())
    for enrichment in ips.values():
        assert_safe(enrichment)
        assert enrichment["greynoise"]["name"] == expected_text(name)
    assert_safe([value for value in orgs.values() if value is not None])
    want_org = expected_text(org) or None
    assert orgs[ASNS["8.8.8.8"]] == want_org
    assert orgs[ASNS["9.9.9.9"]] == want_org
    assert orgs[ASNS["1.1.1.1"]] == "PLAIN"
    assert ips["8.8.8.8"]["maxmind"]["asn_org"] == expected_text(org)
    assert ips["8.8.8.8"]["maxmind"]["city"] == expected_text(city)
    assert ips["9.9.9.9"]["cymru"]["asn_org"] == expected_text(org)


@PROPERTY
@given(org=source_text, city=source_text, name=source_text)
def test_hostile_source_text_is_stored_safely(
    database: Database, org: str, city: str, name: str
) -> None:
    check(database, org, city, name)


@pytest.mark.parametrize(
    ("org", "city", "name"),
    [
        pytest.param("EVIL\x00NET", "K\x00\u00f6ln", "\x00", id="nul-bytes"),
        pytest.param("\x00" * 50, "\t\n", "\x1b\x7f\x9f", id="only-controls"),
        pytest.param("A" * 10_000, "\U0001f600" * 10_000, "\u4e2d" * 5000, id="ten-thousand"),
        pytest.param(
            " \u0420\u043e\u0441\u0442\u0435\u043b\u0435\u043a\u043e\u043c ", "", "", id="cyrillic"
        ),
        pytest.param("\U0001f47e\U0001f47e NET", "\U00020000", "bot\u2028net", id="astral"),
        pytest.param("Org\u0085Name\u009b[1m", "x\ry", "a\tb\nc", id="c1-and-newlines"),
    ],
)
def test_known_hostile_text(database: Database, org: str, city: str, name: str) -> None:
    check(database, org, city, name)


@pytest.mark.parametrize(
    "text",
    ["A\ud800B", "\udfff", "n\ud83d"],
    ids=["high-surrogate", "low-surrogate", "unpaired-emoji-half"],
)
def test_lone_surrogates_do_not_lose_the_ip(database: Database, text: str) -> None:
    # A JSON answer may hold "\ud800" escapes: json.loads gives a lone surrogate,
    # which no UTF-8 database accepts. The IP must still be stored.
    check(database, text, text, text, lone=True)


@pytest.mark.parametrize(
    "country",
    ["\u00dfa", "\u00d6\u00dc", "d\x00", "\U0001f600", "DEU", "de"],
    ids=["sharp-s-upper-is-three-letters", "non-ascii-letters", "nul", "astral", "three", "lower"],
)
def test_country_codes_from_sources(database: Database, country: str) -> None:
    maxmind = FakeMaxMind({"8.8.8.8": maxmind_result("8.8.8.8", 64500, country=country)})
    cymru = FakeCymru({"9.9.9.9": cymru_result("9.9.9.9", 64502, country=country)})
    with database.sessions() as session:
        report = CascadeEnricher(maxmind, cymru, None, session).enrich_ips(["8.8.8.8", "9.9.9.9"])
        session.commit()
        countries = set(session.scalars(select(ASNInventory.organization_country)))
        stored_ips = set(session.scalars(select(IPInventory.ip_address)))
    assert report.count(IPOutcome.ENRICHED) == 2
    assert stored_ips == {"8.8.8.8", "9.9.9.9"}
    expected = country.upper() if re.fullmatch("[A-Za-z]{2}", country) else None
    assert countries == {expected}

"""Fake sources for the cascade's seam: canned answers and a record of every call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from cowrieprocessor.enrichment.cymru_client import CymruResult
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseResult
from cowrieprocessor.enrichment.maxmind_client import MaxMindResult

NOW = datetime.now(UTC).replace(microsecond=0)
ResultT = TypeVar("ResultT", MaxMindResult, CymruResult, GreyNoiseResult)


def maxmind_result(
    ip: str,
    asn: int | None,
    *,
    org: str | None = None,
    country: str | None = "US",
    city: str | None = None,
    build: datetime | None = NOW,
) -> MaxMindResult:
    return MaxMindResult(
        ip_address=ip,
        country_code=country,
        country_name=None,
        city=city,
        latitude=None,
        longitude=None,
        asn=asn,
        asn_org=org,
        accuracy_radius=None,
        database_build=build,
        fetched_at=NOW,
    )


def cymru_result(
    ip: str, asn: int | None, *, org: str | None = None, country: str = "US", rir: str = "ARIN"
) -> CymruResult:
    return CymruResult(
        ip_address=ip,
        asn=asn,
        asn_org=org,
        country_code=country,
        registry=rir,
        prefix=None,
        allocation_date=None,
        fetched_at=NOW,
    )


def greynoise_result(ip: str, *, noise: bool = True) -> GreyNoiseResult:
    return GreyNoiseResult(
        ip_address=ip,
        noise=noise,
        riot=False,
        classification="malicious" if noise else None,
        name="unknown",
        link=None,
        last_seen=None,
        message="Success",
        fetched_at=NOW,
    )


@dataclass
class FakeMaxMind:
    answers: Mapping[str, MaxMindResult] = field(default_factory=dict)
    build: datetime | None = NOW
    calls: list[str] = field(default_factory=list)
    fail: Callable[[str], Exception | None] = lambda _ip: None
    clock: Callable[[], datetime] | None = None

    def lookup_ip(self, ip: str) -> MaxMindResult | None:
        self.calls.append(ip)
        error = self.fail(ip)
        if error is not None:
            raise error
        found = self.answers.get(ip)
        return None if found is None else stamped(found, self.clock)

    def database_build_time(self) -> datetime | None:
        return self.build


@dataclass
class FakeCymru:
    answers: Mapping[str, CymruResult] = field(default_factory=dict)
    single_calls: list[str] = field(default_factory=list)
    bulk_calls: list[list[str]] = field(default_factory=list)
    error: Exception | None = None
    clock: Callable[[], datetime] | None = None

    def lookup_asn(self, ip: str) -> CymruResult | None:
        self.single_calls.append(ip)
        if self.error is not None:
            raise self.error
        found = self.answers.get(ip)
        return None if found is None else stamped(found, self.clock)

    def bulk_lookup(self, ips: Iterable[str]) -> dict[str, CymruResult]:
        asked = list(ips)
        self.bulk_calls.append(asked)
        if self.error is not None:
            raise self.error
        return {ip: stamped(self.answers[ip], self.clock) for ip in asked if ip in self.answers}


@dataclass
class FakeGreyNoise:
    answers: Mapping[str, GreyNoiseResult] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    error: Exception | None = None
    quota: int | None = None
    clock: Callable[[], datetime] | None = None

    def lookup_ip(self, ip: str) -> GreyNoiseResult | None:
        self.calls.append(ip)
        if self.error is not None:
            raise self.error
        found = self.answers.get(ip)
        return None if found is None else stamped(found, self.clock)

    def get_remaining_quota(self) -> int | None:
        return self.quota


class Clock:
    """A settable clock shared by the enricher and the fakes."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def stamped(result: ResultT, clock: Callable[[], datetime] | None) -> ResultT:
    """The result as fetched now by ``clock`` (unchanged without a clock)."""
    return result if clock is None else replace(result, fetched_at=clock())

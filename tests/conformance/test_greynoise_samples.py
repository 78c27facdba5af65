"""Real GreyNoise Community API bodies (../shared/data/greynoise), served verbatim on 127.0.0.1.

Each body is read from its file at test time and answered with the status code its
file name carries; the client must map it exactly as the API documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cowrieprocessor.enrichment.errors import (
    EnrichmentError,
    InvalidIPError,
    QuotaExceededError,
)
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseClient, GreyNoiseResult
from cowrieprocessor.enrichment.stats import ClientStats
from tests.support.http_server import HTTPTestServer, static

pytestmark = pytest.mark.shared_data

FETCHED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOT_OBSERVED = "IP not observed scanning the internet or contained in RIOT data set."
STATUS_IN_NAME = re.compile(r"^community_(\d{3})_")


@dataclass(frozen=True)
class Found:
    """A sample that must become this result (ip_address is the IP looked up)."""

    result: GreyNoiseResult


@dataclass(frozen=True)
class Refused:
    """A sample that must raise this error, with this text in its message."""

    ip: str
    error: type[EnrichmentError]
    text: str


def found(
    ip: str,
    *,
    noise: bool,
    riot: bool,
    classification: str | None = None,
    name: str | None = None,
    link: str | None = None,
    last_seen: date | None = None,
    message: str,
) -> Found:
    return Found(
        GreyNoiseResult(ip, noise, riot, classification, name, link, last_seen, message, FETCHED_AT)
    )


EXPECTED: dict[str, Found | Refused] = {
    "community_200_noise_malicious_222.187.238.136.json": found(
        "222.187.238.136",
        noise=True,
        riot=False,
        classification="malicious",
        name="unknown",
        link="https://viz.greynoise.io/ip/222.187.238.136",
        last_seen=date(2021, 6, 23),
        message="Success",
    ),
    "community_200_noise_unknown_192.223.30.35.json": found(
        "192.223.30.35",
        noise=True,
        riot=False,
        classification="unknown",
        name="unknown",
        link="https://viz.greynoise.io/ip/192.223.30.35",
        last_seen=date(2021, 3, 18),
        message="Success",
    ),
    "community_200_riot_8.8.8.8.json": found(
        "8.8.8.8",
        noise=False,
        riot=True,
        classification="benign",
        name="Google Public DNS",
        link="https://viz.greynoise.io/riot/8.8.8.8",
        last_seen=date(2021, 6, 23),
        message="Success",
    ),
    "community_200_riot_docexample_1.2.3.4.json": found(
        "1.2.3.4",
        noise=False,
        riot=True,
        classification="benign",
        name="Cloudflare",
        link="https://viz.greynoise.io/riot/1.2.3.4",
        last_seen=date(2020, 1, 1),
        message="Success",
    ),
    "community_404_docexample_1.2.3.4.json": found(
        "1.2.3.4", noise=False, riot=False, message=NOT_OBSERVED
    ),
    "community_404_not_found_123.123.115.117.json": found(
        "123.123.115.117", noise=False, riot=False, message=NOT_OBSERVED
    ),
    "community_400_invalid_ip_docexample.json": Refused(
        "1.2.3.4", InvalidIPError, "Request is not a valid routable IPv4 address"
    ),
    "community_429_rate_limit.json": Refused(
        "1.2.3.4", QuotaExceededError, "daily rate limit of 100 requests per day"
    ),
}


@pytest.fixture
def samples(shared_data: Path) -> Path:
    return shared_data / "greynoise"


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


def status_of(file_name: str) -> int:
    match = STATUS_IN_NAME.match(file_name)
    assert match is not None, f"no status code in {file_name}"
    return int(match.group(1))


def client_for(server: HTTPTestServer) -> GreyNoiseClient:
    return GreyNoiseClient(
        "conformance-key",
        base_url=server.url,
        timeout=2.0,
        retries=0,
        clock=lambda: FETCHED_AT,
    )


def test_every_sample_is_covered_and_matches_the_readme(samples: Path) -> None:
    on_disk = {path.name for path in samples.glob("*.json")}
    assert on_disk == set(EXPECTED)
    readme = (samples / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([^`]+\.json)` \| (\d{3}) \|", readme, flags=re.MULTILINE))
    assert {name: int(code) for name, code in table.items()} == {
        name: status_of(name) for name in on_disk
    }


@pytest.mark.parametrize(
    "file_name",
    [name for name, expected in EXPECTED.items() if isinstance(expected, Found)],
)
def test_sample_becomes_result(samples: Path, server: HTTPTestServer, file_name: str) -> None:
    expected = EXPECTED[file_name]
    assert isinstance(expected, Found)
    body = (samples / file_name).read_bytes()
    server.handler = static(status_of(file_name), body, {"Content-Type": "application/json"})
    client = client_for(server)

    result = client.lookup_ip(expected.result.ip_address)

    assert result == expected.result
    assert GreyNoiseResult.from_enrichment(result.to_enrichment()) == result
    (request,) = server.requests
    assert request.path == f"/v3/community/{expected.result.ip_address}"
    found_something = result.noise or result.riot
    assert client.stats() == ClientStats(
        lookups=1, hits=int(found_something), misses=int(not found_something)
    )
    client.close()


@pytest.mark.parametrize(
    "file_name",
    [name for name, expected in EXPECTED.items() if isinstance(expected, Refused)],
)
def test_sample_becomes_error(samples: Path, server: HTTPTestServer, file_name: str) -> None:
    expected = EXPECTED[file_name]
    assert isinstance(expected, Refused)
    status = status_of(file_name)
    server.handler = static(status, (samples / file_name).read_bytes())
    client = client_for(server)

    with pytest.raises(expected.error) as caught:
        client.lookup_ip(expected.ip)

    assert type(caught.value) is expected.error
    assert caught.value.http_status == status
    assert expected.text in str(caught.value)
    assert "conformance-key" not in str(caught.value)
    assert client.stats() == ClientStats(lookups=1, errors=1)
    client.close()


def test_rate_limit_sample_stops_further_requests(samples: Path, server: HTTPTestServer) -> None:
    server.handler = static(429, (samples / "community_429_rate_limit.json").read_bytes())
    client = client_for(server)

    for ip in ("222.187.238.136", "8.8.8.8"):
        with pytest.raises(QuotaExceededError):
            client.lookup_ip(ip)

    assert len(server.requests) == 1
    assert client.get_remaining_quota() == 0
    client.close()

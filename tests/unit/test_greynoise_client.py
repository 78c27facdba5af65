"""GreyNoiseClient against a real HTTP server on 127.0.0.1 (and once through httpx's seam)."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest

from cowrieprocessor.enrichment.errors import (
    AuthenticationError,
    EnrichmentError,
    InvalidIPError,
    QuotaExceededError,
    SourceUnavailableError,
)
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseClient, GreyNoiseResult
from cowrieprocessor.enrichment.stats import ClientStats
from tests.support.http_server import HTTPTestServer, Reply, ReplyLike, sequence, static

API_KEY = "gnk-S3cr3t-7f1c0a9e"
START = datetime(2024, 5, 1, 22, 0, tzinfo=UTC)  # a Wednesday, two hours before midnight
SCANNER = "45.148.10.81"
OTHER = "80.82.77.139"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


MakeClient = Callable[..., GreyNoiseClient]


def noise_body(ip: str = SCANNER, **changes: Any) -> bytes:
    data: dict[str, Any] = {
        "ip": ip,
        "noise": True,
        "riot": False,
        "classification": "malicious",
        "name": "unknown",
        "link": f"https://viz.greynoise.io/ip/{ip}",
        "last_seen": "2024-04-30",
        "message": "Success",
    }
    return json.dumps(data | changes).encode()


def not_observed_body(ip: str = SCANNER) -> bytes:
    message = "IP not observed scanning the internet or contained in RIOT data set."
    return json.dumps({"ip": ip, "noise": False, "riot": False, "message": message}).encode()


def message_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    with HTTPTestServer() as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(
    server: HTTPTestServer, clock: FakeClock, sleeps: list[float]
) -> Iterator[MakeClient]:
    clients: list[GreyNoiseClient] = []

    def make(api_key: str | None = API_KEY, **options: Any) -> GreyNoiseClient:
        settings: dict[str, Any] = {
            "base_url": server.url,
            "clock": clock,
            "sleep": sleeps.append,
            "timeout": 2.0,
        }
        client = GreyNoiseClient(api_key, **(settings | options))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# --- status mapping -------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    body: bytes
    noise: bool
    riot: bool
    classification: str | None
    counted_as: str


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Answer(200, noise_body(), True, False, "malicious", "hits"), id="200-noise"),
        pytest.param(
            Answer(
                200,
                noise_body(noise=False, riot=True, classification="benign"),
                False,
                True,
                "benign",
                "hits",
            ),
            id="200-riot",
        ),
        pytest.param(Answer(404, not_observed_body(), False, False, None, "misses"), id="404"),
    ],
)
def test_answers_become_results(
    server: HTTPTestServer, make_client: MakeClient, clock: FakeClock, answer: Answer
) -> None:
    server.handler = static(answer.status, answer.body)
    client = make_client()

    result = client.lookup_ip(SCANNER)

    assert result is not None
    assert (result.ip_address, result.noise, result.riot) == (SCANNER, answer.noise, answer.riot)
    assert result.classification == answer.classification
    assert result.fetched_at == clock.now
    assert [r.path for r in server.requests] == [f"/v3/community/{SCANNER}"]
    assert getattr(client.stats(), answer.counted_as) == 1
    assert client.stats().errors == 0


@pytest.mark.parametrize(
    ("status", "error", "attempts"),
    [
        pytest.param(400, InvalidIPError, 1, id="400"),
        pytest.param(401, AuthenticationError, 1, id="401"),
        pytest.param(403, AuthenticationError, 1, id="403"),
        pytest.param(429, QuotaExceededError, 1, id="429"),
        pytest.param(500, SourceUnavailableError, 3, id="500"),
        pytest.param(502, SourceUnavailableError, 3, id="502"),
        pytest.param(503, SourceUnavailableError, 3, id="503"),
        pytest.param(301, SourceUnavailableError, 1, id="301-unexpected"),
        pytest.param(418, SourceUnavailableError, 1, id="418-unexpected"),
    ],
)
def test_error_statuses_map_to_our_errors(
    server: HTTPTestServer,
    make_client: MakeClient,
    sleeps: list[float],
    *,
    status: int,
    error: type[EnrichmentError],
    attempts: int,
) -> None:
    server.handler = static(status, message_body("refused"))
    client = make_client(retries=2, backoff=0.5)

    with pytest.raises(error) as caught:
        client.lookup_ip(SCANNER)

    assert type(caught.value) is error
    assert caught.value.source == "greynoise"
    assert caught.value.http_status == status
    assert len(server.requests) == attempts
    assert sleeps == [0.5, 1.0][: attempts - 1]
    assert client.stats() == ClientStats(lookups=1, errors=1)


def test_error_message_of_the_body_is_shown(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = static(400, message_body("Request is not a valid routable IPv4 address"))

    with pytest.raises(InvalidIPError, match="not a valid routable IPv4 address"):
        make_client().lookup_ip(SCANNER)


# --- retries, timeouts and broken answers ---------------------------------------------


def test_server_error_then_success_recovers(
    server: HTTPTestServer, make_client: MakeClient, sleeps: list[float]
) -> None:
    server.handler = sequence((500, {}, b"oops"), (200, {}, noise_body()))

    result = make_client(retries=2, backoff=0.25).lookup_ip(SCANNER)

    assert result is not None
    assert result.noise
    assert len(server.requests) == 2
    assert sleeps == [0.25]


def test_backoff_doubles_until_retries_are_spent(
    server: HTTPTestServer, make_client: MakeClient, sleeps: list[float]
) -> None:
    server.handler = static(503)

    with pytest.raises(SourceUnavailableError, match="gave up after 4 attempts"):
        make_client(retries=3, backoff=0.5).lookup_ip(SCANNER)

    assert sleeps == [0.5, 1.0, 2.0]
    assert len(server.requests) == 4


def test_answer_slower_than_the_timeout_is_unavailable(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = lambda method, path, headers: Reply(200, {}, noise_body(), delay=2.0)

    with pytest.raises(SourceUnavailableError, match=r"no answer within 0\.2s") as caught:
        make_client(timeout=0.2, retries=1).lookup_ip(SCANNER)

    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
    assert len(server.requests) == 2


def test_slow_answer_within_the_timeout_is_accepted(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = lambda method, path, headers: Reply(200, {}, noise_body(), delay=0.05)

    result = make_client(timeout=2.0).lookup_ip(SCANNER)

    assert result is not None
    assert result.noise


def test_dropped_connection_is_retried(
    server: HTTPTestServer, make_client: MakeClient, sleeps: list[float]
) -> None:
    server.handler = sequence(Reply(drop=True), (200, {}, noise_body()))

    result = make_client(retries=1).lookup_ip(SCANNER)

    assert result is not None
    assert len(server.requests) == 2
    assert len(sleeps) == 1


def test_refused_connection_is_unavailable(clock: FakeClock, sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = GreyNoiseClient(
        API_KEY, base_url=f"http://127.0.0.1:{port}", retries=1, clock=clock, sleep=sleeps.append
    )

    with pytest.raises(SourceUnavailableError, match="connection failed") as caught:
        client.lookup_ip(SCANNER)

    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(sleeps) == 1
    client.close()


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(200, b"<html>GreyNoise</html>", id="html"),
        pytest.param(200, b"", id="empty"),
        pytest.param(200, b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(200, b"[true, false]", id="json-list"),
        pytest.param(200, json.dumps({"ip": SCANNER}).encode(), id="no-flags"),
        pytest.param(200, noise_body(noise="true"), id="noise-as-string"),
        pytest.param(200, noise_body(riot=None), id="riot-null"),
        pytest.param(200, noise_body(ip=OTHER), id="other-ip"),
        pytest.param(200, b"[" * 100_000, id="too-large"),
        pytest.param(404, b"<html>Not Found</html>", id="404-html"),
    ],
)
def test_unexpected_body_is_unavailable_without_retry(
    server: HTTPTestServer, make_client: MakeClient, status: int, body: bytes
) -> None:
    server.handler = static(status, body)

    with pytest.raises(SourceUnavailableError) as caught:
        make_client(retries=2).lookup_ip(SCANNER)

    assert caught.value.http_status == status
    assert len(server.requests) == 1


# --- quota ----------------------------------------------------------------------------


def test_after_429_nothing_is_sent_until_utc_midnight(
    server: HTTPTestServer, make_client: MakeClient, clock: FakeClock
) -> None:
    server.handler = sequence((429, {}, message_body("daily limit")), (200, {}, noise_body(OTHER)))
    client = make_client()

    with pytest.raises(QuotaExceededError) as caught:
        client.lookup_ip(SCANNER)
    assert caught.value.http_status == 429
    assert "2024-05-02T00:00:00+00:00" in str(caught.value)
    assert client.get_remaining_quota() == 0

    clock.advance(timedelta(hours=1, minutes=59))
    with pytest.raises(QuotaExceededError, match="no requests until"):
        client.lookup_ip(OTHER)
    assert len(server.requests) == 1

    clock.advance(timedelta(minutes=2))
    assert client.get_remaining_quota() is None
    result = client.lookup_ip(OTHER)
    assert result is not None
    assert result.ip_address == OTHER
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "retry_after",
    [
        pytest.param("120", id="seconds"),
        pytest.param("Wed, 01 May 2024 22:02:00 GMT", id="http-date"),
    ],
)
def test_retry_after_is_honoured(
    server: HTTPTestServer, make_client: MakeClient, clock: FakeClock, retry_after: str
) -> None:
    server.handler = sequence((429, {"Retry-After": retry_after}, b"{}"), (200, {}, noise_body()))
    client = make_client()
    with pytest.raises(QuotaExceededError):
        client.lookup_ip(SCANNER)

    clock.advance(timedelta(seconds=119))
    with pytest.raises(QuotaExceededError):
        client.lookup_ip(SCANNER)
    assert len(server.requests) == 1

    clock.advance(timedelta(seconds=2))
    assert client.lookup_ip(SCANNER) is not None
    assert len(server.requests) == 2


def test_daily_budget_counts_requests_per_utc_day(
    server: HTTPTestServer, make_client: MakeClient, clock: FakeClock
) -> None:
    server.handler = lambda method, path, headers: (200, {}, noise_body(path.rsplit("/", 1)[1]))
    client = make_client(daily_budget=2)
    assert client.get_remaining_quota() == 2

    client.lookup_ip("45.148.10.1")
    client.lookup_ip("45.148.10.1")  # from the cache: costs nothing
    assert client.get_remaining_quota() == 1
    client.lookup_ip("45.148.10.2")
    assert client.get_remaining_quota() == 0
    with pytest.raises(QuotaExceededError, match="daily budget of 2") as caught:
        client.lookup_ip("45.148.10.3")
    assert caught.value.http_status is None
    assert len(server.requests) == 2

    clock.advance(timedelta(hours=2))  # past midnight UTC
    assert client.get_remaining_quota() == 2
    assert client.lookup_ip("45.148.10.3") is not None
    assert len(server.requests) == 3


def test_retries_spend_the_daily_budget(server: HTTPTestServer, make_client: MakeClient) -> None:
    server.handler = static(500)

    with pytest.raises(QuotaExceededError):
        make_client(daily_budget=2, retries=5).lookup_ip(SCANNER)

    assert len(server.requests) == 2


def test_budget_holds_under_concurrent_lookups(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = lambda method, path, headers: (200, {}, noise_body(path.rsplit("/", 1)[1]))
    client = make_client(daily_budget=5)
    ips = [f"45.148.10.{n}" for n in range(1, 13)]

    def attempt(ip: str) -> str:
        try:
            client.lookup_ip(ip)
        except QuotaExceededError:
            return "refused"
        return "answered"

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(attempt, ips))

    assert outcomes.count("answered") == 5
    assert len(server.requests) == 5


# --- cache ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [pytest.param(200, noise_body(), id="200"), pytest.param(404, not_observed_body(), id="404")],
)
def test_results_are_cached_for_seven_days(
    server: HTTPTestServer, make_client: MakeClient, clock: FakeClock, status: int, body: bytes
) -> None:
    server.handler = static(status, body)
    client = make_client()
    first = client.lookup_ip(SCANNER)

    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    assert client.lookup_ip(SCANNER) == first
    assert len(server.requests) == 1

    clock.advance(timedelta(seconds=2))
    renewed = client.lookup_ip(SCANNER)
    assert renewed is not None
    assert renewed.fetched_at == clock.now
    assert len(server.requests) == 2


def test_zero_ttl_disables_the_cache(server: HTTPTestServer, make_client: MakeClient) -> None:
    server.handler = static(200, noise_body())
    client = make_client(cache_ttl=timedelta(0))

    client.lookup_ip(SCANNER)
    client.lookup_ip(SCANNER)

    assert len(server.requests) == 2


def test_cached_answers_still_served_while_blocked(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = sequence((200, {}, noise_body()), (429, {}, b"{}"))
    client = make_client()
    cached = client.lookup_ip(SCANNER)
    with pytest.raises(QuotaExceededError):
        client.lookup_ip(OTHER)

    assert client.lookup_ip(SCANNER) == cached
    assert len(server.requests) == 2


# --- what is (never) sent ---------------------------------------------------------------


@pytest.mark.parametrize(
    "ip",
    [
        pytest.param("10.1.2.3", id="rfc1918-10"),
        pytest.param("172.16.0.1", id="rfc1918-172"),
        pytest.param("192.168.1.1", id="rfc1918-192"),
        pytest.param("127.0.0.1", id="loopback"),
        pytest.param("169.254.10.1", id="link-local"),
        pytest.param("100.64.0.1", id="cgnat"),
        pytest.param("192.0.2.1", id="documentation"),
        pytest.param("224.0.0.251", id="multicast"),
        pytest.param("0.0.0.0", id="unspecified"),
        pytest.param("255.255.255.255", id="broadcast"),
        pytest.param("::1", id="v6-loopback"),
        pytest.param("fe80::1", id="v6-link-local"),
        pytest.param("::ffff:10.0.0.1", id="v4-mapped-private"),
        pytest.param("2606:4700:4700::1111", id="public-v6-unsupported"),
    ],
)
def test_unsendable_addresses_are_never_sent(
    server: HTTPTestServer, make_client: MakeClient, ip: str
) -> None:
    server.handler = static(200, noise_body())
    client = make_client()

    assert client.lookup_ip(ip) is None
    assert server.requests == []
    assert client.stats() == ClientStats()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("not-an-ip", id="word"),
        pytest.param("1.2.3", id="short"),
        pytest.param("256.1.1.1", id="octet-range"),
        pytest.param("45.148.10.81/32", id="cidr"),
        pytest.param("fe80::1%eth0", id="zoned"),
        pytest.param("45.148.10.81\x00", id="nul"),
        pytest.param("../../v2/admin", id="path"),
    ],
)
def test_invalid_text_is_refused_before_any_request(
    server: HTTPTestServer, make_client: MakeClient, text: str
) -> None:
    client = make_client()

    with pytest.raises(InvalidIPError):
        client.lookup_ip(text)

    assert server.requests == []


def test_ipv4_mapped_address_is_sent_in_canonical_form(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = static(200, noise_body("8.8.8.8"))

    result = make_client().lookup_ip("::ffff:8.8.8.8")

    assert result is not None
    assert result.ip_address == "8.8.8.8"
    assert [r.path for r in server.requests] == ["/v3/community/8.8.8.8"]


@pytest.mark.parametrize(
    ("api_key", "sent"),
    [
        pytest.param(API_KEY, API_KEY, id="given"),
        pytest.param(f"  {API_KEY}\n", API_KEY, id="surrounding-space"),
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_key_header_sent_only_with_a_key(
    server: HTTPTestServer, make_client: MakeClient, api_key: str | None, sent: str | None
) -> None:
    server.handler = static(200, noise_body())

    make_client(api_key).lookup_ip(SCANNER)

    (request,) = server.requests
    assert request.method == "GET"
    assert request.headers.get("key") == sent
    assert request.headers["accept"] == "application/json"


def test_key_unfit_for_a_header_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="not allowed in an HTTP header") as caught:
        GreyNoiseClient("abc\r\nX-Injected: 1")

    assert "abc" not in str(caught.value)


# --- secrets and sanitizing -----------------------------------------------------------


def test_api_key_never_leaks(
    server: HTTPTestServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.handler = sequence(
        (200, {}, noise_body()),
        (401, {}, message_body(f"invalid key {API_KEY}")),
        (500, {}, b"boom"),
        Reply(200, {}, noise_body(), delay=1.0),
        Reply(drop=True),
        (200, {}, b"not json"),
        (429, {}, message_body(f"quota for {API_KEY}")),
    )
    client = make_client(retries=0, timeout=0.2, cache_ttl=timedelta(0))
    errors: list[EnrichmentError] = []
    for _ in range(8):
        try:
            client.lookup_ip(SCANNER)
        except EnrichmentError as exc:
            errors.append(exc)

    assert len(errors) == 7
    assert len(server.requests) == 7
    assert all(r.headers["key"] == API_KEY for r in server.requests)
    for error in errors:
        shown = "".join(traceback.format_exception(error)) + repr(error)
        assert API_KEY not in shown
    assert "***" in str(errors[0])
    assert API_KEY not in caplog.text
    assert "quota exceeded" in caplog.text
    assert API_KEY not in repr(client)
    assert "api_key=set" in repr(client)


def test_text_fields_are_sanitized(server: HTTPTestServer, make_client: MakeClient) -> None:
    server.handler = static(
        200,
        noise_body(
            name="evil\x00\x1b[31mname\r\n" + "x" * 1000,
            classification="mali\x07cious",
            message="Suc\x00cess",
            link=42,
            last_seen="yesterday",
        ),
    )

    result = make_client().lookup_ip(SCANNER)

    assert result is not None
    assert result.name is not None
    assert result.name.startswith("evil[31mname xxx")  # CR dropped, newline -> space
    assert len(result.name) == 512
    assert result.classification == "malicious"
    assert result.message == "Success"
    assert result.link is None
    assert result.last_seen is None


# --- lifecycle, seam, stats -----------------------------------------------------------


def test_stats_count_hits_misses_and_errors(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    def handler(method: str, path: str, headers: Mapping[str, str]) -> ReplyLike:
        ip = path.rsplit("/", 1)[1]
        if ip == SCANNER:
            return (200, {}, noise_body(ip))
        if ip == OTHER:
            return (404, {}, not_observed_body(ip))
        return (401, {}, b"{}")

    server.handler = handler
    client = make_client()
    client.lookup_ip(SCANNER)
    client.lookup_ip(SCANNER)
    client.lookup_ip(OTHER)
    client.lookup_ip("10.0.0.1")
    with pytest.raises(AuthenticationError):
        client.lookup_ip("8.8.8.8")

    assert client.stats() == ClientStats(lookups=4, hits=2, misses=1, errors=1)


def test_close_closes_only_an_owned_client(server: HTTPTestServer, clock: FakeClock) -> None:
    server.handler = static(200, noise_body())
    owned = GreyNoiseClient(base_url=server.url, clock=clock)
    owned.close()
    with pytest.raises(SourceUnavailableError, match="closed"):
        owned.lookup_ip(SCANNER)
    assert server.requests == []

    with httpx.Client() as injected:
        with GreyNoiseClient(client=injected, base_url=server.url, clock=clock) as borrowing:
            assert borrowing.lookup_ip(SCANNER) is not None
        assert not injected.is_closed


def test_injected_transport_sees_url_key_and_timeout(clock: FakeClock) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=noise_body("8.8.8.8", riot=True))

    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        client = GreyNoiseClient(API_KEY, client=http, timeout=0.75, clock=clock)
        result = client.lookup_ip("8.8.8.8")

    assert result is not None
    assert result.riot
    (request,) = seen
    assert str(request.url) == "https://api.greynoise.io/v3/community/8.8.8.8"
    assert request.headers["key"] == API_KEY
    assert request.extensions["timeout"]["read"] == 0.75


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"timeout": 0}, id="timeout"),
        pytest.param({"retries": -1}, id="retries"),
        pytest.param({"backoff": -0.1}, id="backoff"),
        pytest.param({"daily_budget": -1}, id="budget"),
        pytest.param({"cache_ttl": timedelta(seconds=-1)}, id="ttl"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must"):
        GreyNoiseClient(**options)


# --- stored form ------------------------------------------------------------------------


def test_result_round_trips_through_its_stored_form(
    server: HTTPTestServer, make_client: MakeClient
) -> None:
    server.handler = static(200, noise_body())
    fetched = make_client().lookup_ip(SCANNER)
    assert fetched is not None
    sparse = GreyNoiseResult(SCANNER, False, False, None, None, None, None, None, START)

    for result in (fetched, sparse):
        stored = json.loads(json.dumps(result.to_enrichment()))
        assert GreyNoiseResult.from_enrichment(stored) == result
        assert result.cached_at == result.fetched_at

    assert fetched.to_enrichment()["last_seen"] == "2024-04-30"
    assert fetched.last_seen == date(2024, 4, 30)
    assert fetched.to_enrichment()["fetched_at"] == "2024-05-01T22:00:00+00:00"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"ip_address": None}, id="no-ip"),
        pytest.param({"noise": "yes"}, id="noise-not-bool"),
        pytest.param({"riot": None}, id="riot-missing"),
        pytest.param({"name": 5}, id="name-not-text"),
        pytest.param({"last_seen": "not a date"}, id="bad-date"),
        pytest.param({"fetched_at": "2024-05-01T22:00:00"}, id="naive-time"),
        pytest.param({"fetched_at": None}, id="no-time"),
    ],
)
def test_malformed_stored_form_is_refused(changes: dict[str, Any]) -> None:
    good = GreyNoiseResult(
        SCANNER, True, False, "malicious", "unknown", None, date(2024, 4, 30), "Success", START
    ).to_enrichment()

    with pytest.raises(ValueError, match=r"enrichment|isoformat|Invalid"):
        GreyNoiseResult.from_enrichment(good | changes)

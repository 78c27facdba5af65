"""The SDK setup of a process, with the real SDK, real exporters and real sockets on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import Histogram, InMemoryMetricReader
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cowrieprocessor import __version__
from cowrieprocessor.telemetry import names
from cowrieprocessor.telemetry.setup import (
    OtlpEndpoints,
    Telemetry,
    TelemetryOptions,
    TelemetryUnavailableError,
    configure_telemetry,
    metric_views,
    resolve_otlp_endpoints,
)
from tests.support.otlp import OtlpRecorder, start_recorder

SCOPE_LABELS = {
    "otel_scope_name": "cowrieprocessor",
    "otel_scope_schema_url": "",
    "otel_scope_version": __version__,
}
SECRET = "sekrit-token-4711"
#: The SDK's own default histogram bounds, which instruments without a view keep.
DEFAULT_BOUNDS = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)


# ---------------------------------------------------------------- helpers and fixtures


@pytest.fixture
def recorder() -> Iterator[OtlpRecorder]:
    recorder = start_recorder()
    yield recorder
    recorder.close()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTEL_* setting of the machine leaks in; loopback never goes through a proxy."""
    for variable in list(os.environ):
        if variable.startswith("OTEL_") or variable.lower().endswith("_proxy"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def configure() -> Iterator[Callable[[TelemetryOptions], Telemetry]]:
    """``configure_telemetry`` whose results are shut down after the test."""
    made: list[Telemetry] = []

    def make(options: TelemetryOptions) -> Telemetry:
        made.append(configure_telemetry(options))
        return made[-1]

    yield make
    for telemetry in made:
        telemetry.shutdown()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(url: str) -> str:
    response = httpx.get(url, timeout=5, trust_env=False)
    response.raise_for_status()
    return response.text


def _samples(text: str, name: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.WARNING]


# ---------------------------------------------------------------- options and endpoints


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"metrics_port": -1}, "metrics_port", id="negative-port"),
        pytest.param({"metrics_port": 65536}, "metrics_port", id="port-too-high"),
        pytest.param({"export_interval_s": 0}, "export_interval_s", id="zero-interval"),
        pytest.param({"otlp_timeout_s": -1.0}, "otlp_timeout_s", id="negative-timeout"),
        pytest.param({"shutdown_timeout_s": 0.0}, "shutdown_timeout_s", id="zero-shutdown"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TelemetryOptions(**kwargs)


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        pytest.param(None, {}, OtlpEndpoints(None, None), id="nothing"),
        pytest.param(
            "http://c:4318/",
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://env/t"},
            OtlpEndpoints("http://c:4318/v1/traces", "http://c:4318/v1/metrics"),
            id="explicit-wins",
        ),
        pytest.param(
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318"},
            OtlpEndpoints("http://base:4318/v1/traces", "http://base:4318/v1/metrics"),
            id="generic-gets-paths",
        ),
        pytest.param(
            None,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://base:4318/",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/custom",
            },
            OtlpEndpoints("http://t:1/custom", "http://base:4318/v1/metrics"),
            id="signal-variable-as-is",
        ),
        pytest.param(
            None,
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:1/v1/metrics"},
            OtlpEndpoints(None, "http://m:1/v1/metrics"),
            id="metrics-only",
        ),
        pytest.param(
            "  ", {"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, OtlpEndpoints(None, None), id="blank"
        ),
    ],
)
def test_otlp_endpoint_resolution(
    explicit: str | None, environ: dict[str, str], expected: OtlpEndpoints
) -> None:
    assert resolve_otlp_endpoints(explicit, environ) == expected


@pytest.mark.parametrize(
    ("instrument", "bounds"),
    [
        pytest.param(
            names.ASN_OPERATION_DURATION, names.ASN_OPERATION_DURATION_BOUNDS, id="asn-operation"
        ),
        pytest.param(
            names.SOURCE_LOOKUP_DURATION, names.SOURCE_LOOKUP_DURATION_BOUNDS, id="source-lookup"
        ),
        pytest.param("some.other.duration", DEFAULT_BOUNDS, id="others-keep-the-default"),
    ],
)
def test_metric_views_set_the_bounds_of_names(instrument: str, bounds: tuple[float, ...]) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=metric_views())
    provider.get_meter("test").create_histogram(instrument, unit="s").record(0.002)

    data = reader.get_metrics_data()
    provider.shutdown()

    assert data is not None
    (metric,) = data.resource_metrics[0].scope_metrics[0].metrics
    assert isinstance(metric.data, Histogram)
    assert tuple(metric.data.data_points[0].explicit_bounds) == tuple(bounds)


# ---------------------------------------------------------------- Prometheus endpoint


def _record_everything(telemetry: Telemetry) -> None:
    meter = telemetry.meter_provider.get_meter(names.INSTRUMENTATION_SCOPE, __version__)
    created = meter.create_counter(names.ASN_RECORDS_CREATED, unit="{record}")
    created.add(3, {"source": "maxmind", "country": "US", "rir": "arin"})
    updated = meter.create_counter(names.ASN_RECORDS_UPDATED, unit="{record}")
    updated.add(1, {"source": "cymru", "update_type": "timestamp_refresh"})
    duration = meter.create_histogram(names.ASN_OPERATION_DURATION, unit="s")
    duration.record(0.003, {"operation": "create"})
    lookups = meter.create_counter(names.SOURCE_LOOKUPS, unit="{lookup}")
    lookups.add(2, {"source": "cymru", "outcome": "hit"})
    lookup_duration = meter.create_histogram(names.SOURCE_LOOKUP_DURATION, unit="s")
    lookup_duration.record(0.2, {"source": "cymru", "outcome": "hit"})
    ips = meter.create_counter(names.ENRICHED_IPS, unit="{ip}")
    ips.add(5, {"outcome": "enriched"})

    def size(_: CallbackOptions) -> list[Observation]:
        return [Observation(812)]

    def quota(_: CallbackOptions) -> list[Observation]:
        return [Observation(42)]

    meter.create_observable_gauge(names.ASN_SIZE, callbacks=[size], unit="{asn}")
    meter.create_observable_gauge(names.GREYNOISE_QUOTA_REMAINING, callbacks=[quota], unit="1")


@pytest.mark.parametrize(
    ("prometheus_name", "labels", "value"),
    [
        pytest.param(
            "asn_inventory_records_created_total",
            {"source": "maxmind", "country": "US", "rir": "arin"},
            3.0,
            id="records-created",
        ),
        pytest.param(
            "asn_inventory_records_updated_total",
            {"source": "cymru", "update_type": "timestamp_refresh"},
            1.0,
            id="records-updated",
        ),
        pytest.param(
            "asn_inventory_operation_duration_seconds_count",
            {"operation": "create"},
            1.0,
            id="asn-duration-count",
        ),
        pytest.param(
            "asn_inventory_operation_duration_seconds_sum",
            {"operation": "create"},
            0.003,
            id="asn-duration-sum",
        ),
        pytest.param("asn_inventory_size", {}, 812.0, id="asn-size"),
        pytest.param(
            "enrichment_lookups_total", {"source": "cymru", "outcome": "hit"}, 2.0, id="lookups"
        ),
        pytest.param(
            "enrichment_lookup_duration_seconds_count",
            {"source": "cymru", "outcome": "hit"},
            1.0,
            id="lookup-duration-count",
        ),
        pytest.param("enrichment_ips_total", {"outcome": "enriched"}, 5.0, id="ips"),
        pytest.param("enrichment_greynoise_quota_remaining", {}, 42.0, id="quota"),
    ],
)
def test_prometheus_sees_the_documented_names(
    configure: Callable[[TelemetryOptions], Telemetry],
    prometheus_name: str,
    labels: dict[str, str],
    value: float,
) -> None:
    telemetry = configure(TelemetryOptions(metrics_port=0))
    assert telemetry.metrics_url is not None
    _record_everything(telemetry)

    samples = _samples(_scrape(telemetry.metrics_url), prometheus_name)

    assert [sample.labels for sample in samples] == [{**labels, **SCOPE_LABELS}]
    assert samples[0].value == pytest.approx(value)


def test_prometheus_exposition_lines_are_exact(
    configure: Callable[[TelemetryOptions], Telemetry],
) -> None:
    telemetry = configure(TelemetryOptions(metrics_port=0))
    assert telemetry.metrics_url is not None
    _record_everything(telemetry)

    lines = _scrape(telemetry.metrics_url).splitlines()

    scope = ",".join(f'{key}="{value}"' for key, value in SCOPE_LABELS.items())
    created = "asn_inventory_records_created_total"
    bucket = "asn_inventory_operation_duration_seconds_bucket"
    assert f'{created}{{country="US",{scope},rir="arin",source="maxmind"}} 3.0' in lines
    assert f'{bucket}{{le="0.005",operation="create",{scope}}} 1.0' in lines
    assert f"asn_inventory_size{{{scope}}} 812.0" in lines
    assert "# TYPE asn_inventory_records_created_total counter" in lines
    assert "# TYPE asn_inventory_operation_duration_seconds histogram" in lines


@pytest.mark.parametrize(
    ("bucket_name", "bounds"),
    [
        pytest.param(
            "asn_inventory_operation_duration_seconds_bucket",
            names.ASN_OPERATION_DURATION_BOUNDS,
            id="asn-operation",
        ),
        pytest.param(
            "enrichment_lookup_duration_seconds_bucket",
            names.SOURCE_LOOKUP_DURATION_BOUNDS,
            id="source-lookup",
        ),
    ],
)
def test_histogram_buckets_are_the_bounds_of_names(
    configure: Callable[[TelemetryOptions], Telemetry],
    bucket_name: str,
    bounds: tuple[float, ...],
) -> None:
    telemetry = configure(TelemetryOptions(metrics_port=0))
    assert telemetry.metrics_url is not None
    _record_everything(telemetry)

    edges = [
        sample.labels["le"] for sample in _samples(_scrape(telemetry.metrics_url), bucket_name)
    ]

    assert edges[-1] == "+Inf"
    assert [float(edge) for edge in edges[:-1]] == list(bounds)


def test_metrics_url_names_the_port_actually_served(
    configure: Callable[[TelemetryOptions], Telemetry],
) -> None:
    telemetry = configure(TelemetryOptions(metrics_port=0))

    assert telemetry.metrics_url is not None
    assert telemetry.metrics_url.startswith("http://127.0.0.1:")
    assert telemetry.metrics_url.endswith("/metrics")
    assert not telemetry.metrics_url.startswith("http://127.0.0.1:0/")
    assert telemetry.warnings == []


def test_no_port_means_no_endpoint(configure: Callable[[TelemetryOptions], Telemetry]) -> None:
    telemetry = configure(TelemetryOptions())

    assert telemetry.metrics_url is None
    assert telemetry.warnings == []


def test_port_in_use_gives_one_warning_and_goes_on(
    configure: Callable[[TelemetryOptions], Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]

        telemetry = configure(TelemetryOptions(metrics_port=port))
        _record_everything(telemetry)

    assert telemetry.metrics_url is None
    assert len(telemetry.warnings) == 1
    assert str(port) in telemetry.warnings[0]
    assert [record.getMessage() for record in _warnings(caplog)] == telemetry.warnings


def test_shutdown_is_idempotent_and_stops_the_endpoint(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = configure_telemetry(TelemetryOptions(metrics_port=0))
    assert telemetry.metrics_url is not None
    _scrape(telemetry.metrics_url)

    telemetry.shutdown()
    telemetry.shutdown()

    with pytest.raises(httpx.ConnectError):
        _scrape(telemetry.metrics_url)
    assert _warnings(caplog) == []


# ---------------------------------------------------------------- OTLP


def test_otlp_posts_protobuf_to_the_signal_paths(
    recorder: OtlpRecorder, configure: Callable[[TelemetryOptions], Telemetry]
) -> None:
    telemetry = configure(TelemetryOptions(otlp_endpoint=recorder.url))
    tracer = telemetry.tracer_provider.get_tracer(names.INSTRUMENTATION_SCOPE)
    with tracer.start_as_current_span(names.ENSURE_ASN_SPAN):
        pass
    _record_everything(telemetry)

    assert telemetry.tracer_provider.force_flush()
    assert telemetry.meter_provider.force_flush()

    assert recorder.paths() == {"/v1/traces", "/v1/metrics"}
    assert {post.content_type for post in recorder.posts} == {"application/x-protobuf"}
    assert {span.name for span in recorder.spans()} == {names.ENSURE_ASN_SPAN}
    assert names.ASN_RECORDS_CREATED in {metric.name for metric in recorder.metrics()}
    assert telemetry.warnings == []


@pytest.mark.parametrize(
    ("setting", "expected_paths"),
    [
        pytest.param(
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""), {"/v1/traces", "/v1/metrics"}, id="generic"
        ),
        pytest.param(
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/custom/traces"),
            {"/custom/traces"},
            id="traces",
        ),
    ],
)
def test_otlp_follows_the_environment(
    recorder: OtlpRecorder,
    configure: Callable[[TelemetryOptions], Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    setting: tuple[str, str],
    expected_paths: set[str],
) -> None:
    variable, suffix = setting
    monkeypatch.setenv(variable, recorder.url + suffix)
    telemetry = configure(TelemetryOptions())
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("work"):
        pass
    _record_everything(telemetry)

    telemetry.tracer_provider.force_flush()
    telemetry.meter_provider.force_flush()

    assert recorder.paths() == expected_paths


def test_otlp_headers_are_sent_but_never_shown(
    recorder: OtlpRecorder,
    configure: Callable[[TelemetryOptions], Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-api-key={SECRET}")
    telemetry = configure(TelemetryOptions(otlp_endpoint=recorder.url))
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("work"):
        pass
    telemetry.tracer_provider.force_flush()
    exporter_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    exporter_logger.error("export failed with key %s", SECRET)

    assert [post.headers.get("x-api-key") for post in recorder.posts] == [SECRET]
    assert len(telemetry.warnings) == 1
    assert "export failed with key ***" in telemetry.warnings[0]
    assert SECRET not in caplog.text
    assert SECRET not in repr(telemetry)


def test_unreachable_collector_gives_one_warning_and_a_prompt_shutdown(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    telemetry = configure_telemetry(
        TelemetryOptions(otlp_endpoint=f"http://127.0.0.1:{_closed_port()}")
    )
    tracer = telemetry.tracer_provider.get_tracer(names.INSTRUMENTATION_SCOPE)
    for number in range(200):
        with tracer.start_as_current_span(names.ENSURE_ASN_SPAN) as span:
            span.set_attribute("asn.number", number)
        _record_everything(telemetry)

    telemetry.shutdown()

    assert time.monotonic() - started < 8.0
    assert len(_warnings(caplog)) == 1
    assert telemetry.warnings == [_warnings(caplog)[0].getMessage()]
    assert "Connection refused" in telemetry.warnings[0]
    assert "Traceback" not in capfd.readouterr().err


def test_a_hanging_collector_cannot_hold_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    hanging = start_recorder(hold=release)
    telemetry = configure_telemetry(
        TelemetryOptions(otlp_endpoint=hanging.url, otlp_timeout_s=30, shutdown_timeout_s=0.5)
    )
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span("work"):
        pass
    _record_everything(telemetry)

    started = time.monotonic()
    telemetry.shutdown()
    elapsed = time.monotonic() - started

    release.set()
    for thread in threading.enumerate():
        if thread.name == "telemetry-shutdown":
            thread.join(10)
    hanging.close()
    assert elapsed < 4.0
    assert len(_warnings(caplog)) == 1
    assert "shutdown exceeded 0.5s" in telemetry.warnings[0]


# ---------------------------------------------------------------- resource, sampler, console


def test_resource_names_the_service_and_host(
    configure: Callable[[TelemetryOptions], Telemetry],
) -> None:
    telemetry = configure(TelemetryOptions(service_version="9.9.9"))

    attributes = telemetry.resource.attributes
    assert attributes["service.name"] == "cowrieprocessor"
    assert attributes["service.version"] == "9.9.9"
    assert attributes["host.name"] == socket.gethostname()
    assert telemetry.tracer_provider.resource is telemetry.resource


def test_resource_attributes_from_the_environment_win(
    configure: Callable[[TelemetryOptions], Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=honeynet,host.name=sensor-7"
    )
    monkeypatch.setenv("OTEL_SERVICE_NAME", "cowrie-eu")

    attributes = configure(TelemetryOptions()).resource.attributes

    assert attributes["deployment.environment"] == "honeynet"
    assert attributes["host.name"] == "sensor-7"
    assert attributes["service.name"] == "cowrie-eu"
    assert attributes["service.version"] == __version__


@pytest.mark.parametrize(
    ("sampler", "argument", "recording"),
    [
        pytest.param(None, None, True, id="default"),
        pytest.param("always_off", None, False, id="always-off"),
        pytest.param("always_on", None, True, id="always-on"),
        pytest.param("traceidratio", "0", False, id="ratio-zero"),
        pytest.param("parentbased_traceidratio", "1.0", True, id="parent-ratio-one"),
    ],
)
def test_sampler_follows_the_environment(
    configure: Callable[[TelemetryOptions], Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    sampler: str | None,
    argument: str | None,
    recording: bool,
) -> None:
    if sampler is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    if argument is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", argument)
    tracer = configure(TelemetryOptions()).tracer_provider.get_tracer("test")

    with tracer.start_as_current_span("work") as span:
        assert span.is_recording() is recording


def test_console_writes_spans_and_metrics_to_stderr(
    configure: Callable[[TelemetryOptions], Telemetry], capsys: pytest.CaptureFixture[str]
) -> None:
    telemetry = configure(TelemetryOptions(console=True))
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span(names.ENSURE_ASN_SPAN):
        pass
    _record_everything(telemetry)

    telemetry.tracer_provider.force_flush()
    telemetry.meter_provider.force_flush()

    captured = capsys.readouterr()
    assert names.ENSURE_ASN_SPAN in captured.err
    assert names.ASN_RECORDS_CREATED in captured.err
    assert captured.out == ""


# ---------------------------------------------------------------- without the [otel] extra


@pytest.mark.parametrize(
    ("module", "options", "missing"),
    [
        pytest.param("opentelemetry.sdk.trace", TelemetryOptions(), "opentelemetry-sdk", id="sdk"),
        pytest.param(
            "prometheus_client",
            TelemetryOptions(metrics_port=0),
            "prometheus-client",
            id="prometheus-client",
        ),
        pytest.param(
            "opentelemetry.exporter.otlp.proto.http.trace_exporter",
            TelemetryOptions(otlp_endpoint="http://127.0.0.1:9"),
            "opentelemetry-exporter-otlp-proto-http",
            id="otlp",
        ),
    ],
)
def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, module: str, options: TelemetryOptions, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(TelemetryUnavailableError) as raised:
        configure_telemetry(options)

    assert "pip install 'cowrieprocessor[otel]'" in str(raised.value)
    assert raised.value.missing == missing

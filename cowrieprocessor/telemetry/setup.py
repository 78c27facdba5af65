"""Set up the OpenTelemetry SDK and its exporters for one process.

The library code emits spans and metrics through ``opentelemetry-api`` only; this module is
what a process (the command line, a benchmark, a test) calls to make them go somewhere:

* a Prometheus scrape endpoint (``metrics_port``; port 0 picks a free port),
* OTLP over HTTP/protobuf (``otlp_endpoint`` or the standard ``OTEL_EXPORTER_OTLP_*``
  environment variables),
* the console (``console=True``; JSON lines on stderr).

The SDK and the exporters are the optional ``[otel]`` extra. They are imported here, lazily,
so that ``import cowrieprocessor`` never needs them.

Export problems (an unreachable collector, say) are reported once, as one warning line, and
never stop the enrichment. OTLP headers (``OTEL_EXPORTER_OTLP_HEADERS`` often holds an API
token) are read by the exporters themselves and are never logged or stored here.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cowrieprocessor import __version__
from cowrieprocessor.telemetry import names
from cowrieprocessor.telemetry._export_log import ExportProblems, export_secrets
from cowrieprocessor.telemetry._prometheus_endpoint import PrometheusEndpoint

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.metrics.view import View
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

__all__ = [
    "SERVICE_NAME",
    "OtlpEndpoints",
    "Telemetry",
    "TelemetryOptions",
    "TelemetryUnavailableError",
    "configure_telemetry",
    "metric_views",
    "resolve_otlp_endpoints",
]

logger = logging.getLogger(__name__)

SERVICE_NAME = "cowrieprocessor"
_INSTALL_HINT = "pip install 'cowrieprocessor[otel]'"

_GRACE_S = 1.0


class TelemetryUnavailableError(RuntimeError):
    """The OpenTelemetry SDK or an exporter is not installed."""

    def __init__(self, missing: str) -> None:
        super().__init__(
            f"telemetry export needs the optional OpenTelemetry packages ({missing} is missing); "
            f"install them with: {_INSTALL_HINT}"
        )
        self.missing = missing


@dataclass(frozen=True)
class TelemetryOptions:
    """Where a process sends its telemetry.

    ``otlp_endpoint`` is a base URL (``http://collector:4318``); ``/v1/traces`` and
    ``/v1/metrics`` are appended. Without it the standard ``OTEL_EXPORTER_OTLP_*ENDPOINT``
    variables are honoured. The timeouts keep a dead collector from stalling the process.

    Raises:
        ValueError: a port outside 0-65535 or a non-positive interval or timeout.
    """

    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    otlp_endpoint: str | None = None
    console: bool = False
    service_version: str = __version__
    export_interval_s: float = 10.0
    otlp_timeout_s: float = 5.0
    shutdown_timeout_s: float = 7.0

    def __post_init__(self) -> None:
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics_port must be within 0-65535, got {self.metrics_port}")
        for label in ("export_interval_s", "otlp_timeout_s", "shutdown_timeout_s"):
            if not getattr(self, label) > 0:
                raise ValueError(f"{label} must be positive, got {getattr(self, label)!r}")


@dataclass(frozen=True)
class OtlpEndpoints:
    """The full OTLP/HTTP URLs per signal; ``None`` when that signal is not exported."""

    traces: str | None
    metrics: str | None


def resolve_otlp_endpoints(explicit: str | None, environ: Mapping[str, str]) -> OtlpEndpoints:
    """Pick the OTLP URL of each signal: explicit base URL, then signal variable, then base.

    >>> resolve_otlp_endpoints("http://c:4318/", {})
    OtlpEndpoints(traces='http://c:4318/v1/traces', metrics='http://c:4318/v1/metrics')
    """

    def pick(signal_variable: str, path: str) -> str | None:
        if explicit and explicit.strip():
            return f"{explicit.strip().rstrip('/')}/{path}"
        if specific := environ.get(signal_variable, "").strip():
            return specific
        if base := environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            return f"{base.rstrip('/')}/{path}"
        return None

    return OtlpEndpoints(
        traces=pick("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "v1/traces"),
        metrics=pick("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "v1/metrics"),
    )


@contextmanager
def _optional_extra(package: str) -> Iterator[None]:
    try:
        yield
    except ImportError as exc:
        raise TelemetryUnavailableError(package) from exc


def metric_views() -> list[View]:
    """The views every process uses: the histogram bucket bounds of ``names``.

    Raises:
        TelemetryUnavailableError: opentelemetry-sdk is not installed.
    """
    with _optional_extra("opentelemetry-sdk"):
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    bounds = {
        names.ASN_OPERATION_DURATION: names.ASN_OPERATION_DURATION_BOUNDS,
        names.SOURCE_LOOKUP_DURATION: names.SOURCE_LOOKUP_DURATION_BOUNDS,
    }
    return [
        View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(list(edges)))
        for name, edges in bounds.items()
    ]


def _safe_url(url: str | None) -> str | None:
    """``url`` without the user and password it may carry."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _build_resource(options: TelemetryOptions) -> Resource:
    """Our attributes, overridden by ``OTEL_RESOURCE_ATTRIBUTES`` / ``OTEL_SERVICE_NAME``."""
    from opentelemetry.sdk.resources import (
        HOST_NAME,
        SERVICE_VERSION,
        OTELResourceDetector,
        Resource,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME as SERVICE_NAME_KEY

    ours = Resource.create(
        {
            SERVICE_NAME_KEY: SERVICE_NAME,
            SERVICE_VERSION: options.service_version,
            HOST_NAME: socket.gethostname(),
        }
    )
    return ours.merge(OTELResourceDetector().detect())


@dataclass
class _Parts:
    """What ``configure_telemetry`` assembles before it builds the providers."""

    warnings: list[str]
    problems: ExportProblems
    span_processors: list[SpanProcessor]
    metric_readers: list[MetricReader]
    aborts: list[Callable[[], object]]
    endpoint: PrometheusEndpoint | None = None


def _add_prometheus(parts: _Parts, options: TelemetryOptions) -> None:
    if options.metrics_port is None:
        return
    try:
        endpoint = PrometheusEndpoint(options.metrics_host, options.metrics_port, _optional_extra)
    except OSError as exc:
        message = (
            f"Prometheus endpoint {options.metrics_host}:{options.metrics_port} not started "
            f"({exc.strerror or exc}); continuing without it"
        )
        parts.warnings.append(message)
        logger.warning("%s", message)
        return
    parts.endpoint = endpoint
    parts.metric_readers.append(endpoint.reader)
    logger.info("serving Prometheus metrics on %s", endpoint.url)


def _add_otlp(parts: _Parts, endpoints: OtlpEndpoints, options: TelemetryOptions) -> None:
    if endpoints.traces is None and endpoints.metrics is None:
        return
    with _optional_extra("opentelemetry-exporter-otlp-proto-http"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if endpoints.traces is not None:
        spans = OTLPSpanExporter(endpoint=endpoints.traces, timeout=options.otlp_timeout_s)
        parts.span_processors.append(BatchSpanProcessor(spans))
        parts.aborts.append(spans.shutdown)
    if endpoints.metrics is not None:
        metrics = OTLPMetricExporter(endpoint=endpoints.metrics, timeout=options.otlp_timeout_s)
        parts.metric_readers.append(
            PeriodicExportingMetricReader(
                metrics,
                export_interval_millis=options.export_interval_s * 1000,
                export_timeout_millis=options.otlp_timeout_s * 1000,
            )
        )
        parts.aborts.append(metrics.shutdown)
    logger.info(
        "exporting OTLP traces to %s, metrics to %s",
        _safe_url(endpoints.traces),
        _safe_url(endpoints.metrics),
    )


def _add_console(parts: _Parts, options: TelemetryOptions) -> None:
    if not options.console:
        return
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    parts.span_processors.append(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    parts.metric_readers.append(
        PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=sys.stderr),
            export_interval_millis=options.export_interval_s * 1000,
        )
    )


def configure_telemetry(options: TelemetryOptions) -> Telemetry:
    """Build the tracer and meter providers of this process and start their exporters.

    The providers are returned, not installed globally: pass them to the components
    (``tracer_provider=`` / ``meter_provider=``). Call :meth:`Telemetry.shutdown` at the end;
    it also runs at interpreter exit.

    Raises:
        TelemetryUnavailableError: the ``[otel]`` extra is not installed.
    """
    with _optional_extra("opentelemetry-sdk"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

    warnings: list[str] = []
    endpoints = resolve_otlp_endpoints(options.otlp_endpoint, os.environ)
    secrets = export_secrets(os.environ, (endpoints.traces, endpoints.metrics))
    problems = ExportProblems(warnings, secrets)
    parts = _Parts(warnings, problems, span_processors=[], metric_readers=[], aborts=[])
    try:
        _add_prometheus(parts, options)
        _add_otlp(parts, endpoints, options)
        _add_console(parts, options)
        resource = _build_resource(options)
        tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        meter_provider = MeterProvider(
            metric_readers=parts.metric_readers,
            resource=resource,
            views=metric_views(),
            shutdown_on_exit=False,
        )
    except BaseException:
        if parts.endpoint is not None:
            parts.endpoint.stop(_GRACE_S)
        raise
    for processor in parts.span_processors:
        tracer_provider.add_span_processor(processor)
    problems.attach()
    return Telemetry(tracer_provider, meter_provider, parts, options.shutdown_timeout_s)


class Telemetry:
    """The configured providers of a process, and the way to stop them."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        parts: _Parts,
        shutdown_timeout_s: float,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.resource: Resource = tracer_provider.resource
        self.metrics_url = parts.endpoint.url if parts.endpoint else None
        self.warnings = parts.warnings
        self._parts = parts
        self._shutdown_timeout_s = shutdown_timeout_s
        self._lock = threading.Lock()
        self._stopped = False
        atexit.register(self.shutdown)

    def __repr__(self) -> str:
        return f"Telemetry(metrics_url={self.metrics_url!r}, warnings={len(self.warnings)})"

    def shutdown(self) -> None:
        """Flush and stop every exporter, the scrape endpoint included; safe to call twice.

        Returns within about ``shutdown_timeout_s`` (about a second when an export already
        failed): telemetry a dead collector did not take by then is dropped, and that is
        reported as the one export warning.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        atexit.unregister(self.shutdown)
        budget = self._shutdown_timeout_s
        if self._parts.problems.reported:
            budget = min(budget, _GRACE_S)
        threads = self._stop_providers(budget)
        if any(thread.is_alive() for thread in threads):
            self._parts.problems.report(
                f"telemetry shutdown exceeded {budget:g}s; telemetry not yet sent was dropped"
            )
            for abort in self._parts.aborts:
                abort()
            for thread in threads:
                thread.join(_GRACE_S)
        if self._parts.endpoint is not None:
            self._parts.endpoint.stop(_GRACE_S)

    def _stop_providers(self, budget: float) -> list[threading.Thread]:
        """Shut both providers down in parallel, waiting at most ``budget`` seconds.

        The export-problem filter stays on until the last of them ends, even after this
        returns, so that a late failure still makes no more than the one warning.
        """
        steps: list[Callable[[], object]] = [
            self.tracer_provider.shutdown,
            lambda: self.meter_provider.shutdown(timeout_millis=budget * 1000),
        ]
        countdown = [len(steps)]
        threads = [
            threading.Thread(
                target=self._guarded,
                args=(step, countdown),
                name="telemetry-shutdown",
                daemon=True,
            )
            for step in steps
        ]
        deadline = time.monotonic() + budget
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return threads

    def _guarded(self, step: Callable[[], object], countdown: list[int]) -> None:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - the SDK raises a bare Exception on shutdown
            self._parts.problems.report(f"telemetry shutdown failed: {exc}")
        finally:
            with self._lock:
                countdown[0] -= 1
                last = countdown[0] == 0
            if last:
                self._parts.problems.detach()

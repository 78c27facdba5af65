"""A loopback OTLP/HTTP receiver that keeps what exporters send it, and decodes it.

:func:`start_recorder` starts a threaded HTTP server on 127.0.0.1 that answers every
POST with an empty ``200`` and keeps the request (:class:`Post`). Point an OTLP/HTTP
exporter, or the command line's ``--otlp-endpoint``, at :attr:`OtlpRecorder.url`;
the exporters add the signal paths ``/v1/traces`` and ``/v1/metrics``. The helpers
decode the protobuf bodies: spans, metrics, resources, attributes, and the totals of
sums and histograms across every export of a run.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    Metric,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

__all__ = [
    "METRICS_PATH",
    "TRACES_PATH",
    "OtlpRecorder",
    "Post",
    "attributes",
    "start_recorder",
]

TRACES_PATH = "/v1/traces"
METRICS_PATH = "/v1/metrics"


@dataclass(frozen=True)
class Post:
    """One POST as received; header names are lower-case, ``body`` is the bytes sent."""

    path: str
    content_type: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> bytes:
        """The body without its transfer compression (exporters may gzip it)."""
        if self.headers.get("content-encoding", "").lower() == "gzip":
            return gzip.decompress(self.body)
        return self.body


@dataclass
class OtlpRecorder:
    """A loopback OTLP/HTTP receiver that keeps every POST; ``hold`` delays the answers."""

    server: ThreadingHTTPServer
    posts: list[Post] = field(default_factory=list)
    hold: threading.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def paths(self) -> set[str]:
        return {post.path for post in self.posts}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- traces

    def span_batches(self) -> list[ExportTraceServiceRequest]:
        """Every body posted to ``/v1/traces``, decoded, in the order received."""
        return [
            ExportTraceServiceRequest.FromString(post.payload)
            for post in list(self.posts)
            if post.path == TRACES_PATH
        ]

    def spans(self, name: str | None = None) -> list[Span]:
        """The spans of every trace export, those called ``name`` when it is given."""
        return [
            span
            for batch in self.span_batches()
            for resource_spans in batch.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
            if name is None or span.name == name
        ]

    # -- metrics

    def metric_batches(self) -> list[ExportMetricsServiceRequest]:
        """Every body posted to ``/v1/metrics``, decoded, in the order received."""
        return [
            ExportMetricsServiceRequest.FromString(post.payload)
            for post in list(self.posts)
            if post.path == METRICS_PATH
        ]

    def metrics(self, name: str | None = None) -> list[Metric]:
        """The metrics of every metric export, those called ``name`` when it is given."""
        return [
            metric
            for batch in self.metric_batches()
            for resource_metrics in batch.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if name is None or metric.name == name
        ]

    def sum_total(self, name: str) -> float:
        """The value of the counter ``name`` over all its attribute sets, at the end of the run."""
        return self._total(name, "sum", _number)

    def histogram_count(self, name: str) -> int:
        """How many observations the histogram ``name`` had, over all its attribute sets."""
        return int(self._total(name, "histogram", lambda point: float(point.count)))

    def _total(self, name: str, kind: str, value: Callable[[Any], float]) -> float:
        found = self.metrics(name)
        assert all(metric.WhichOneof("data") == kind for metric in found), name
        return _total(
            (
                getattr(metric, kind).aggregation_temporality,
                point.attributes,
                point.time_unix_nano,
                value(point),
            )
            for metric in found
            for point in getattr(metric, kind).data_points
        )

    # -- both

    def resource_attributes(self) -> list[dict[str, Any]]:
        """The resource attributes of every export, traces first."""
        traces = [
            attributes(resource_spans.resource.attributes)
            for batch in self.span_batches()
            for resource_spans in batch.resource_spans
        ]
        metrics = [
            attributes(resource_metrics.resource.attributes)
            for batch in self.metric_batches()
            for resource_metrics in batch.resource_metrics
        ]
        return traces + metrics


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP key-value pairs as a plain dict of Python values."""
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _number(point: Any) -> float:
    return float(point.as_int if point.WhichOneof("value") == "as_int" else point.as_double)


def _total(points: Iterator[tuple[int, Iterable[KeyValue], int, float]]) -> float:
    """Sum delta points; of cumulative points, only the latest of each attribute set counts."""
    deltas = 0.0
    latest: dict[tuple[tuple[str, str], ...], tuple[int, float]] = {}
    for temporality, pairs, stamp, value in points:
        if temporality != AGGREGATION_TEMPORALITY_CUMULATIVE:
            deltas += value
            continue
        key = tuple(sorted((k, repr(v)) for k, v in attributes(pairs).items()))
        if key not in latest or stamp >= latest[key][0]:
            latest[key] = (stamp, value)
    return deltas + sum(value for _, value in latest.values())


def start_recorder(hold: threading.Event | None = None) -> OtlpRecorder:
    """Start a receiver on a free port of 127.0.0.1; stop it with :meth:`OtlpRecorder.close`.

    With ``hold``, every answer waits (up to 30 s) until the event is set: a hanging collector.
    """
    recorder: OtlpRecorder

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if recorder.hold is not None:
                recorder.hold.wait(30)
            recorder.posts.append(
                Post(
                    path=self.path,
                    content_type=self.headers.get("Content-Type", ""),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=body,
                )
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recorder = OtlpRecorder(server, hold=hold)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return recorder

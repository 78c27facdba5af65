"""Real OpenTelemetry SDK providers with in-memory exporters, for assertions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


@dataclass
class InMemoryTelemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished_spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for item in scope.metrics:
                    if item.name == metric:
                        found.extend(item.data.data_points)
        return found

    def counter(self, metric: str, **attributes: str) -> int:
        total = 0
        for point in self.points(metric):
            assert isinstance(point, NumberDataPoint)
            if all((point.attributes or {}).get(k) == v for k, v in attributes.items()):
                total += int(point.value)
        return total

    def histogram(self, metric: str, **attributes: str) -> list[HistogramDataPoint]:
        return [
            point
            for point in self.points(metric)
            if isinstance(point, HistogramDataPoint)
            and all((point.attributes or {}).get(k) == v for k, v in attributes.items())
        ]


def in_memory_telemetry() -> InMemoryTelemetry:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    return InMemoryTelemetry(tracer_provider, meter_provider, spans, reader)

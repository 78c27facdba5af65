"""The enrichment's spans and metric instruments, through ``opentelemetry-api`` only.

Without the SDK every instrument is a no-op and costs next to nothing; with it,
:mod:`cowrieprocessor.telemetry.setup` decides where the data goes.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation

from cowrieprocessor import __version__
from cowrieprocessor.telemetry import names

__all__ = ["EnrichmentInstruments"]

_Attributes = tuple[tuple[str, str], ...]
_CREATE = {"operation": "create"}
_UPDATE = {"operation": "update"}
# A context with no current span (not an empty one: the SDK replaces an empty
# context with the current context).
_NO_SPAN = trace.set_span_in_context(trace.INVALID_SPAN)


class EnrichmentInstruments:
    """Tracer, counters, histograms and gauges of one enricher.

    Obtained once per component with the ``cowrieprocessor`` scope and the
    package version; providers may be injected (tests pass in-memory ones).
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(
            names.INSTRUMENTATION_SCOPE, __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(
            names.INSTRUMENTATION_SCOPE, __version__, meter_provider=meter_provider
        )
        self.records_created = meter.create_counter(
            names.ASN_RECORDS_CREATED, unit="{record}", description="ASN inventory rows created"
        )
        self.records_updated = meter.create_counter(
            names.ASN_RECORDS_UPDATED, unit="{record}", description="ASN inventory rows updated"
        )
        self.operation_duration = meter.create_histogram(
            names.ASN_OPERATION_DURATION,
            unit="s",
            description="Duration of the statement that performed each ASN inventory operation",
            explicit_bucket_boundaries_advisory=list(names.ASN_OPERATION_DURATION_BOUNDS),
        )
        self.lookups = meter.create_counter(
            names.SOURCE_LOOKUPS, unit="{lookup}", description="Lookups per source and outcome"
        )
        self.lookup_duration = meter.create_histogram(
            names.SOURCE_LOOKUP_DURATION,
            unit="s",
            description="Time one source took for one batch of IPs",
            explicit_bucket_boundaries_advisory=list(names.SOURCE_LOOKUP_DURATION_BOUNDS),
        )
        self.ips = meter.create_counter(
            names.ENRICHED_IPS, unit="{ip}", description="IPs processed by outcome"
        )
        self._inventory_size: int | None = None
        self._quota_remaining: int | None = None
        meter.create_observable_gauge(
            names.ASN_SIZE,
            callbacks=[self._observe_size],
            unit="{asn}",
            description="Rows in asn_inventory at the last count (once per batch)",
        )
        meter.create_observable_gauge(
            names.GREYNOISE_QUOTA_REMAINING,
            callbacks=[self._observe_quota],
            unit="{request}",
            description="GreyNoise requests left in the current quota window",
        )

    def set_inventory_size(self, size: int) -> None:
        """Remember the last counted inventory size for the gauge."""
        self._inventory_size = size

    def set_quota_remaining(self, remaining: int | None) -> None:
        self._quota_remaining = remaining

    def _observe_size(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._inventory_size is None:
            return []
        return [Observation(self._inventory_size)]

    def _observe_quota(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._quota_remaining is None:
            return []
        return [Observation(self._quota_remaining)]

    def add_lookups(self, tally: Mapping[tuple[str, str], int]) -> None:
        """Add per-(source, outcome) lookup counts gathered over a batch."""
        for (source, outcome), count in tally.items():
            if count:
                self.lookups.add(count, {"source": source, "outcome": outcome})

    def record_lookup_duration(self, source: str, seconds: float) -> None:
        """Observe the time ``source`` took for one batch."""
        self.lookup_duration.record(seconds, {"source": source})

    def add_ips(self, tally: Mapping[str, int]) -> None:
        for outcome, count in tally.items():
            if count:
                self.ips.add(count, {"outcome": outcome})

    def record_asn_operations(
        self,
        created: Tally[_Attributes],
        updated: Tally[_Attributes],
        seconds: float,
    ) -> None:
        """Count one statement's ASN operations and observe its duration once per ASN."""
        for attributes, count in created.items():
            self.records_created.add(count, dict(attributes))
        for attributes, count in updated.items():
            self.records_updated.add(count, dict(attributes))
        record = self.operation_duration.record
        for operation, count in ((_CREATE, created.total()), (_UPDATE, updated.total())):
            if count:
                # The first observation is made in the caller's context, so an exemplar
                # can point at the statement's span; the others carry the same value and
                # skip the exemplar sampling that would only repeat it.
                record(seconds, operation)
                for _ in range(count - 1):
                    record(seconds, operation, _NO_SPAN)

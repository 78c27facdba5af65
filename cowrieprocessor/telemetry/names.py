"""Names of the spans and metric instruments: the contract operators query.

The instrument names below are what the OpenTelemetry SDK sees; the Prometheus
exporter turns ``asn_inventory.records_created`` with unit ``{record}`` into
``asn_inventory_records_created_total`` and ``asn_inventory.operation.duration``
with unit ``s`` into ``asn_inventory_operation_duration_seconds_*``.
"""

from __future__ import annotations

__all__ = [
    "ASN_OPERATION_DURATION",
    "ASN_OPERATION_DURATION_BOUNDS",
    "ASN_RECORDS_CREATED",
    "ASN_RECORDS_UPDATED",
    "ASN_SIZE",
    "ENRICHED_IPS",
    "ENSURE_ASN_SPAN",
    "GREYNOISE_QUOTA_REMAINING",
    "INSTRUMENTATION_SCOPE",
    "SOURCE_LOOKUPS",
    "SOURCE_LOOKUP_DURATION",
    "SOURCE_LOOKUP_DURATION_BOUNDS",
]

INSTRUMENTATION_SCOPE = "cowrieprocessor"

ENSURE_ASN_SPAN = "cascade_enricher.ensure_asn_inventory"

#: Counter ``{record}``; attributes source (maxmind, cymru), country, rir.
ASN_RECORDS_CREATED = "asn_inventory.records_created"
#: Counter ``{record}``; attributes source, update_type (metadata_enrichment, timestamp_refresh).
ASN_RECORDS_UPDATED = "asn_inventory.records_updated"
#: Histogram ``s``; attribute operation (create, update); one observation per ASN operation.
ASN_OPERATION_DURATION = "asn_inventory.operation.duration"
ASN_OPERATION_DURATION_BOUNDS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Observable gauge ``{asn}``: the last value of ``get_asn_inventory_size()``.
ASN_SIZE = "asn_inventory.size"

#: Counter ``{lookup}``; attributes source (maxmind, cymru, greynoise), outcome
#: (hit, miss, error, skipped). Prometheus: ``enrichment_lookups_total``.
SOURCE_LOOKUPS = "enrichment.lookups"
#: Histogram ``s``; attribute source; one observation per source and batch: the time that
#: source took for the batch (the Cymru bulk call, the batch's MaxMind or GreyNoise lookups).
#: Prometheus: ``enrichment_lookup_duration_seconds_*``.
SOURCE_LOOKUP_DURATION = "enrichment.lookup.duration"
SOURCE_LOOKUP_DURATION_BOUNDS = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0,
)  # fmt: skip
#: Counter ``{ip}``; attribute outcome (cache_hit, enriched, skipped, error).
#: Prometheus: ``enrichment_ips_total``.
ENRICHED_IPS = "enrichment.ips"
#: Observable gauge ``{request}``: GreyNoise requests left today, when known.
#: Prometheus: ``enrichment_greynoise_quota_remaining``.
GREYNOISE_QUOTA_REMAINING = "enrichment.greynoise.quota_remaining"

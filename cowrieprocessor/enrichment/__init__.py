"""Enrichment sources, the cascade and the ASN inventory."""

from cowrieprocessor.enrichment.asn_inventory import CountDrift, rebuild_asn_counts
from cowrieprocessor.enrichment.cascade_enricher import (
    BatchReport,
    CascadeEnricher,
    CascadeStats,
    EnrichmentReport,
    IPOutcome,
)
from cowrieprocessor.enrichment.cymru_client import CymruClient, CymruResult
from cowrieprocessor.enrichment.errors import (
    AuthenticationError,
    EnrichmentError,
    InvalidIPError,
    QuotaExceededError,
    SourceUnavailableError,
)
from cowrieprocessor.enrichment.freshness import DEFAULT_POLICIES, SourcePolicy
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseClient, GreyNoiseResult
from cowrieprocessor.enrichment.maxmind_client import MaxMindClient, MaxMindResult

__all__ = [
    "DEFAULT_POLICIES",
    "AuthenticationError",
    "BatchReport",
    "CascadeEnricher",
    "CascadeStats",
    "CountDrift",
    "CymruClient",
    "CymruResult",
    "EnrichmentError",
    "EnrichmentReport",
    "GreyNoiseClient",
    "GreyNoiseResult",
    "IPOutcome",
    "InvalidIPError",
    "MaxMindClient",
    "MaxMindResult",
    "QuotaExceededError",
    "SourcePolicy",
    "SourceUnavailableError",
    "rebuild_asn_counts",
]

"""What the cascade reports: its counters, and the outcome of each IP and batch.

Kept apart from :mod:`cowrieprocessor.enrichment.cascade_enricher`, which
re-exports every name here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["BatchReport", "CascadeStats", "EnrichmentReport", "IPOutcome"]


@dataclass
class CascadeStats:
    """Counters of one enricher since it was created or reset.

    ``errors`` counts IPs for which something failed (invalid input, a source
    error, a refused write); ``asn_operation_duration_ms`` is the wall time spent
    in ASN inventory statements; ``asn_unique_seen`` the distinct ASNs met.
    """

    total_ips: int = 0
    cache_hits: int = 0
    maxmind_hits: int = 0
    cymru_hits: int = 0
    greynoise_hits: int = 0
    errors: int = 0
    asn_records_created: int = 0
    asn_records_updated: int = 0
    asn_operation_duration_ms: float = 0.0
    asn_unique_seen: set[int] = field(default_factory=set)


class IPOutcome(StrEnum):
    """What happened to one IP."""

    CACHE_HIT = "cache_hit"  # every source's data was fresh: no source was asked
    ENRICHED = "enriched"  # at least one source answered and the row was written
    SKIPPED = "skipped"  # not public (never sent to a source) or no source enabled: stored as is
    ERROR = "error"  # every source asked failed, or the row could not be written
    INVALID = "invalid"  # not an IP address: nothing stored


@dataclass(frozen=True)
class BatchReport:
    """One finished batch, handed to ``on_batch`` after its writes are flushed."""

    index: int
    outcomes: Mapping[str, IPOutcome]
    causes: Mapping[str, str]
    inventory_size: int
    duration_s: float

    def count(self, outcome: IPOutcome) -> int:
        return sum(1 for value in self.outcomes.values() if value is outcome)


@dataclass(frozen=True)
class EnrichmentReport:
    """Outcome per IP (canonical form; invalid input as given) and the cause of each failure."""

    outcomes: Mapping[str, IPOutcome]
    causes: Mapping[str, str]

    def count(self, outcome: IPOutcome) -> int:
        return sum(1 for value in self.outcomes.values() if value is outcome)

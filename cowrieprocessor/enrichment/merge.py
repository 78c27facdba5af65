"""Per-IP state of one batch: cached entries, what is stale, and the merge.

``ip_inventory.enrichment`` holds one entry per source. A hit is the result's
own JSON (``to_enrichment()``); a lookup that found nothing is kept as
``{"found": false, "fetched_at": ...}`` so the source is not asked again
before its TTL runs out. Merge priorities: geo from MaxMind; ASN from MaxMind,
else Cymru; scanner data from GreyNoise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cowrieprocessor.db.models import RIR_REGISTRIES
from cowrieprocessor.enrichment._cascade_results import IPOutcome
from cowrieprocessor.enrichment.addresses import IPAddress, is_public
from cowrieprocessor.enrichment.asn_inventory import ASNObservation
from cowrieprocessor.enrichment.cymru_client import CymruResult
from cowrieprocessor.enrichment.freshness import SourcePolicy, fetched_at, is_stale, parse_timestamp
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseResult
from cowrieprocessor.enrichment.maxmind_client import MaxMindResult
from cowrieprocessor.enrichment.text import clean_entry, clean_text

__all__ = [
    "ASNFacts",
    "IPWork",
    "miss_entry",
    "normalize_country",
    "normalize_rir",
    "normalize_text",
]

Result = MaxMindResult | CymruResult | GreyNoiseResult
_DECODERS: Mapping[str, type[MaxMindResult] | type[CymruResult] | type[GreyNoiseResult]] = {
    "maxmind": MaxMindResult,
    "cymru": CymruResult,
    "greynoise": GreyNoiseResult,
}


def miss_entry(now: datetime, **extra: Any) -> dict[str, Any]:
    """The entry kept for a lookup that found nothing."""
    return {"found": False, "fetched_at": now.isoformat(), **extra}


@dataclass(frozen=True, slots=True)
class ASNFacts:
    """What the merged data says about the IP's ASN."""

    asn: int
    organization_name: str | None
    organization_country: str | None
    rir_registry: str | None
    source: str

    def observation(self, first_seen: datetime, last_seen: datetime) -> ASNObservation:
        """The ASN as met by IPs seen between ``first_seen`` and ``last_seen``."""
        return ASNObservation(
            self.asn,
            self.organization_name,
            self.organization_country,
            self.rir_registry,
            self.source,
            first_seen,
            last_seen,
        )


@dataclass(slots=True)
class IPWork:
    """One IP of a batch on its way through the cascade."""

    ip: str
    address: IPAddress
    entries: dict[str, dict[str, Any]]
    stale: set[str] = field(default_factory=set)
    results: dict[str, Result | None] = field(default_factory=dict)
    fresh: set[str] = field(default_factory=set)
    queried: bool = False
    asn_verified: bool = False
    failed: bool = False

    @property
    def public(self) -> bool:
        return is_public(self.address)

    def plan(
        self,
        policies: Mapping[str, SourcePolicy],
        enabled: Mapping[str, bool],
        now: datetime,
        maxmind_build: datetime | None,
    ) -> None:
        """Decide which sources must be asked; decode the cached hits of the rest."""
        for name, policy in policies.items():
            if not enabled.get(name) or not self.public:
                continue
            entry = self.entries.get(name)
            stale = is_stale(fetched_at(entry), policy.ttl, now)
            if not stale and name == "maxmind" and maxmind_build is not None:
                built = parse_timestamp((entry or {}).get("database_build"))
                stale = built is None or built < maxmind_build
            if stale:
                self.stale.add(name)
            else:
                self.fresh.add(name)
                self.results[name] = self._decode(name, entry)

    def _decode(self, name: str, entry: Mapping[str, Any] | None) -> Result | None:
        if not entry or entry.get("found") is False:
            return None
        try:
            return _DECODERS[name].from_enrichment(entry)
        except (ValueError, KeyError, TypeError):
            self.fresh.discard(name)
            self.stale.add(name)  # unreadable cached entry: ask again
            return None

    def store(self, name: str, result: Result | None, now: datetime, **miss: Any) -> None:
        """Keep a fresh answer of ``name`` (``None`` = looked up, nothing found)."""
        self.queried = True
        self.results[name] = result
        if result is None:
            self.entries[name] = miss_entry(now, **miss)
            return
        self.entries[name] = clean_entry(result.to_enrichment())
        if not isinstance(result, GreyNoiseResult) and result.asn is not None:
            self.asn_verified = True

    def outcome(self) -> IPOutcome:
        """What happened to this IP, once its sources were asked."""
        if self.queried:
            return IPOutcome.ENRICHED
        if self.failed:
            return IPOutcome.ERROR
        if self.fresh:
            return IPOutcome.CACHE_HIT
        return IPOutcome.SKIPPED  # not public, or no source enabled

    def needs_refresh(self, sources: Collection[str]) -> bool:
        """True when one of ``sources`` must be asked again.

        Cymru only matters for an IP without a MaxMind ASN.
        """
        wanted = self.stale.intersection(sources)
        if self.maxmind_asn is not None:
            wanted.discard("cymru")
        return bool(wanted)

    @property
    def maxmind_asn(self) -> int | None:
        result = self.results.get("maxmind")
        return result.asn if isinstance(result, MaxMindResult) else None

    def asn_facts(self) -> ASNFacts | None:
        """ASN and its metadata: MaxMind first, then Cymru."""
        maxmind = self.results.get("maxmind")
        cymru = self.results.get("cymru")
        cymru = cymru if isinstance(cymru, CymruResult) and cymru.asn is not None else None
        if isinstance(maxmind, MaxMindResult) and maxmind.asn is not None:
            same = cymru if cymru is not None and cymru.asn == maxmind.asn else None
            return ASNFacts(
                asn=maxmind.asn,
                organization_name=normalize_text(
                    maxmind.asn_org or (same.asn_org if same else None)
                ),
                organization_country=normalize_country(
                    same.country_code if same else maxmind.country_code
                ),
                rir_registry=normalize_rir(same.registry if same else None),
                source="maxmind",
            )
        if cymru is not None and cymru.asn is not None:
            return ASNFacts(
                asn=cymru.asn,
                organization_name=normalize_text(cymru.asn_org),
                organization_country=normalize_country(cymru.country_code),
                rir_registry=normalize_rir(cymru.registry),
                source="cymru",
            )
        return None


def normalize_text(value: str | None) -> str | None:
    if not value:
        return None
    return clean_text(value) or None


def normalize_country(value: str | None) -> str | None:
    if value and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def normalize_rir(value: str | None) -> str | None:
    if not value:
        return None
    upper = value.upper()
    if upper == "RIPENCC":
        upper = "RIPE"
    return upper if upper in RIR_REGISTRIES else None

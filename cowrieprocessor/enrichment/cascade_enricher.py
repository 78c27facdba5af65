"""The cascade: cache, MaxMind, Cymru, GreyNoise, then the IP and ASN inventory.

The enricher works inside the caller's session: it flushes and uses SAVEPOINTs
to undo its own part of a failed batch, and never commits or rolls back a
transaction it does not own. Commit after each batch (``on_batch``) when several
workers write to one PostgreSQL at once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, trace
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, make_transient_to_detached

from cowrieprocessor.db.models import ASNInventory, Base, IPInventory, SessionSummary
from cowrieprocessor.enrichment._cascade_results import (
    BatchReport,
    CascadeStats,
    EnrichmentReport,
    IPOutcome,
)
from cowrieprocessor.enrichment._stale import find_stale_ips
from cowrieprocessor.enrichment.addresses import IPAddress, parse_ip
from cowrieprocessor.enrichment.asn_inventory import ASNUpsertResult, inventory_size, upsert_asns
from cowrieprocessor.enrichment.errors import InvalidIPError
from cowrieprocessor.enrichment.freshness import DEFAULT_POLICIES, SourcePolicy
from cowrieprocessor.enrichment.ip_writer import IPWrite, write_ips
from cowrieprocessor.enrichment.merge import (
    ASNFacts,
    IPWork,
    normalize_country,
    normalize_rir,
    normalize_text,
)
from cowrieprocessor.enrichment.source_calls import SourceCalls
from cowrieprocessor.enrichment.sources import CymruSource, GreyNoiseSource, MaxMindSource
from cowrieprocessor.telemetry.instruments import EnrichmentInstruments

__all__ = ["BatchReport", "CascadeEnricher", "CascadeStats", "EnrichmentReport", "IPOutcome"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500

_IP = Base.metadata.tables["ip_inventory"].c
_CACHE_QUERY = select(_IP.ip_address, _IP.enrichment).where(
    _IP.ip_address.in_(bindparam("ips", expanding=True))
)


@dataclass(frozen=True, slots=True)
class _Batch:
    """What one batch did: each IP's outcome, failure causes, and the rows it inserted."""

    outcomes: dict[str, IPOutcome]
    causes: dict[str, str]
    inserted: dict[str, dict[str, Any]]


class CascadeEnricher:
    """Enrich IPs through MaxMind, Cymru and GreyNoise into the inventory.

    Any source may be ``None`` (disabled); sources are any objects with the
    methods of :mod:`cowrieprocessor.enrichment.sources`.
    """

    def __init__(
        self,
        maxmind: MaxMindSource | None,
        cymru: CymruSource | None,
        greynoise: GreyNoiseSource | None,
        session: Session,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        policies: Mapping[str, SourcePolicy] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.maxmind = maxmind
        self.cymru = cymru
        self.greynoise = greynoise
        self.session = session
        self.policies = dict(policies or DEFAULT_POLICIES)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._telemetry = EnrichmentInstruments(
            tracer_provider=tracer_provider, meter_provider=meter_provider
        )
        self._stats = CascadeStats()

    def get_stats(self) -> CascadeStats:
        """A snapshot the caller may keep: later work does not change it."""
        return replace(self._stats, asn_unique_seen=set(self._stats.asn_unique_seen))

    def reset_stats(self) -> None:
        self._stats = CascadeStats()

    def get_asn_inventory_size(self) -> int:
        """``SELECT count(*) FROM asn_inventory``; also the value the size gauge reports."""
        size = inventory_size(self.session)
        self._telemetry.set_inventory_size(size)
        return size

    def enrich_ip(self, ip: str) -> IPInventory:
        """Enrich one IP and return its inventory row.

        Raises:
            InvalidIPError: ``ip`` is not an IP address.
            sqlalchemy.exc.DBAPIError: the database refused the write (the
                SAVEPOINT is rolled back; the session stays usable).
        """
        address = parse_ip(ip)
        canonical = str(address)
        result = self._run_batch({canonical: address}, self.policies, single=True, strict=True)
        return self._stored_row(canonical, result.inserted.get(canonical))

    def enrich_ips(
        self,
        ips: Iterable[str],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> EnrichmentReport:
        """Enrich many IPs, ``batch_size`` at a time, and tell per IP what happened.

        Each batch costs one cache query, at most one Cymru bulk call (for its IPs
        still without an ASN) and batched upserts. ``on_batch`` runs after each
        batch is flushed; the command line commits there.
        """
        return self._enrich_all(ips, batch_size, on_batch, self.policies)

    def _enrich_all(
        self,
        ips: Iterable[str],
        batch_size: int,
        on_batch: Callable[[BatchReport], None] | None,
        policies: Mapping[str, SourcePolicy],
    ) -> EnrichmentReport:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        outcomes: dict[str, IPOutcome] = {}
        causes: dict[str, str] = {}

        def done(batch: dict[str, IPAddress], index: int) -> None:
            started = time.perf_counter()
            result = self._run_batch(batch, policies, single=False, strict=False)
            size = self.get_asn_inventory_size()  # the size gauge: once per batch
            outcomes.update(result.outcomes)
            causes.update(result.causes)
            if on_batch is not None:
                elapsed = time.perf_counter() - started
                on_batch(BatchReport(index, result.outcomes, result.causes, size, elapsed))

        pending: dict[str, IPAddress] = {}
        index = 0
        for text in ips:
            try:
                address = parse_ip(text)
            except InvalidIPError as exc:
                self._stats.total_ips += 1
                self._stats.errors += 1
                outcomes[text] = IPOutcome.INVALID
                causes[text] = str(exc)
                logger.warning("skipping invalid IP: %s", exc)
                continue
            canonical = str(address)
            if canonical in outcomes:
                continue
            pending[canonical] = address
            if len(pending) >= batch_size:
                done(pending, index)
                pending, index = {}, index + 1
        if pending:
            done(pending, index)
        return EnrichmentReport(outcomes, causes)

    def enrich_session_ips(self, session_id: str) -> list[IPInventory]:
        """Enrich the source IP of one Cowrie session (from ``session_summaries``)."""
        ips = self.session.scalars(
            select(SessionSummary.src_ip).where(SessionSummary.session_id == session_id)
        ).all()
        return [self.enrich_ip(ip) for ip in dict.fromkeys(ips)]

    def backfill_missing_asns(self, limit: int = 1000) -> EnrichmentReport:
        """Ask MaxMind and Cymru anew for up to ``limit`` IPs that have no ASN yet."""
        ips = self.session.scalars(
            select(IPInventory.ip_address)
            .where(IPInventory.current_asn.is_(None))
            .order_by(IPInventory.ip_address)
            .limit(limit)
        ).all()
        return self._forced(("maxmind", "cymru"), ips)

    def refresh_stale_data(self, source: str | None = None, limit: int = 1000) -> EnrichmentReport:
        """Refresh up to ``limit`` IPs whose data from ``source`` (or any source) is stale.

        Each source is judged by its own ``fetched_at`` and TTL; only the stale
        sources are asked again.

        Raises:
            ValueError: ``source`` is not a known source name.
        """
        names = [source] if source else list(self.policies)
        if any(name not in self.policies for name in names):
            raise ValueError(f"unknown source {source!r}; expected one of {list(self.policies)}")
        stale = find_stale_ips(
            self.session,
            self.policies,
            names,
            enabled=self._enabled(),
            now=self._clock(),
            maxmind_build=self._maxmind_build(),
            limit=limit,
        )
        return self.enrich_ips(stale)

    def _forced(self, sources: Sequence[str], ips: Sequence[str]) -> EnrichmentReport:
        """Enrich ``ips`` asking ``sources`` again whatever the age of their data."""
        policies = {
            name: replace(policy, ttl=policy.ttl * 0) if name in sources else policy
            for name, policy in self.policies.items()
        }
        return self._enrich_all(ips, DEFAULT_BATCH_SIZE, None, policies)

    def _run_batch(
        self,
        batch: Mapping[str, IPAddress],
        policies: Mapping[str, SourcePolicy],
        *,
        single: bool,
        strict: bool,
    ) -> _Batch:
        now = self._clock()
        # The cascade's statements run on the session's connection: flush what the
        # caller left pending (session summaries, say) so they see it.
        self.session.flush()
        cached = self._load_cached(list(batch))
        works = [IPWork(ip, address, cached.get(ip) or {}) for ip, address in batch.items()]
        build, enabled = self._maxmind_build(), self._enabled()
        for work in works:
            work.plan(policies, enabled, now, build)
        calls = SourceCalls(self._telemetry, now)
        if self.maxmind is not None:
            calls.maxmind(self.maxmind, works)
        if self.cymru is not None:
            calls.cymru(self.cymru, works, single=single)
        if self.greynoise is not None:
            calls.greynoise(self.greynoise, works)
        calls.record_durations()
        outcomes, inserted = self._store(works, set(cached), now, calls.causes, strict=strict)
        self._account(works, outcomes, calls.lookups)
        causes = {ip: cause for ip, cause in calls.causes.items() if ip in outcomes}
        return _Batch(outcomes, causes, inserted)

    def _stored_row(self, ip: str, inserted: dict[str, Any] | None) -> IPInventory:
        """The ORM row of ``ip`` as stored, without a query when this batch inserted it.

        A row the batch inserted is built from the values written, unless the
        session already holds an object for it; any other row is (re)loaded.
        """
        session = self.session
        if (
            inserted is not None
            and session.identity_key(IPInventory, ip) not in session.identity_map
        ):
            row = IPInventory(**inserted)
            make_transient_to_detached(row)  # persistent as if loaded: no pending change
            session.add(row)
            return row
        loaded = session.get(IPInventory, ip, populate_existing=True)
        if loaded is None:  # pragma: no cover - the batch either stored it or raised
            raise LookupError(f"{ip} was not stored")
        return loaded

    def _enabled(self) -> dict[str, bool]:
        sources = {"maxmind": self.maxmind, "cymru": self.cymru, "greynoise": self.greynoise}
        return {name: source is not None for name, source in sources.items()}

    def _maxmind_build(self) -> datetime | None:
        return self.maxmind.database_build_time() if self.maxmind is not None else None

    def _load_cached(self, batch: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each IP's stored entries, in a dict of its own (an entry is replaced, never edited)."""
        cached: dict[str, dict[str, Any]] = {}
        for start in range(0, len(batch), 1000):
            part = list(batch[start : start + 1000])
            for ip, enrichment in self.session.connection().execute(_CACHE_QUERY, {"ips": part}):
                cached[ip] = dict(enrichment or {})
        return cached

    def _store(
        self,
        works: Sequence[IPWork],
        known: set[str],
        now: datetime,
        causes: dict[str, str],
        *,
        strict: bool,
    ) -> tuple[dict[str, IPOutcome], dict[str, dict[str, Any]]]:
        """Write the batch inside one SAVEPOINT; on a data error, retry IP by IP.

        Returns each IP's outcome and the values of the rows inserted.
        """
        try:
            with self._savepoint():
                inserted = self._write(works, known, now)
        except DBAPIError as exc:
            if exc.connection_invalidated or strict:
                raise
            logger.warning("batch write failed (%s); retrying IP by IP", type(exc.orig).__name__)
        else:
            return {work.ip: work.outcome() for work in works}, inserted
        outcomes: dict[str, IPOutcome] = {}
        inserted = {}
        for work in works:
            try:
                with self._savepoint():
                    inserted.update(self._write([work], known, now))
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise
                outcomes[work.ip] = IPOutcome.ERROR
                causes[work.ip] = f"database refused the row: {type(exc.orig).__name__}"
                logger.warning("could not store %s: %s", work.ip, type(exc.orig).__name__)
            else:
                outcomes[work.ip] = work.outcome()
        return outcomes, inserted

    def _savepoint(self) -> AbstractContextManager[object]:
        """A SAVEPOINT on the session's connection: the writes are Core statements."""
        return self.session.connection().begin_nested()

    def _write(
        self, works: Sequence[IPWork], known: set[str], now: datetime
    ) -> dict[str, dict[str, Any]]:
        facts: dict[int, ASNFacts] = {}
        writes = []
        for work in works:
            fact = work.asn_facts()
            if fact is not None:
                facts.setdefault(fact.asn, fact)
            writes.append(
                IPWrite(
                    ip=work.ip,
                    asn=fact.asn if fact else None,
                    enrichment=work.entries,
                    refreshed=work.queried,
                    asn_verified=work.asn_verified,
                )
            )
        written = write_ips(self.session, writes, known, now)
        observed = {
            asn: fact.observation(*written.seen[asn])
            for asn, fact in facts.items()
            if asn in written.seen
        }
        self._count_asn_work(
            upsert_asns(self.session, observed, written.deltas, self._telemetry, now=now),
            observed,
        )
        return written.inserted

    def _count_asn_work(self, result: ASNUpsertResult, observed: Iterable[int]) -> None:
        self._stats.asn_records_created += len(result.created)
        self._stats.asn_records_updated += len(result.updated)
        self._stats.asn_operation_duration_ms += result.duration_s * 1000.0
        self._stats.asn_unique_seen.update(observed)

    def _account(
        self,
        works: Sequence[IPWork],
        outcomes: Mapping[str, IPOutcome],
        lookups: Counter[tuple[str, str]],
    ) -> None:
        stats = self._stats
        tally: Counter[str] = Counter()
        for work in works:
            outcome = outcomes[work.ip]
            tally[outcome.value] += 1
            stats.errors += work.failed or outcome is IPOutcome.ERROR
        stats.total_ips += len(works)
        stats.cache_hits += tally[IPOutcome.CACHE_HIT.value]
        stats.maxmind_hits += lookups[("maxmind", "hit")]
        stats.cymru_hits += lookups[("cymru", "hit")]
        stats.greynoise_hits += lookups[("greynoise", "hit")]
        self._telemetry.add_lookups(lookups)
        self._telemetry.add_ips(tally)

    def _ensure_asn_inventory(
        self,
        asn: int,
        organization_name: str | None,
        organization_country: str | None,
        rir_registry: str | None,
        *,
        source: str = "maxmind",
    ) -> ASNInventory:
        """Create or update one ASN row through the same upsert as the batches.

        Raises:
            sqlalchemy.exc.DBAPIError: the statement failed; its SAVEPOINT is
                rolled back and the caller's session stays usable.
        """
        now = self._clock()
        facts = ASNFacts(
            asn,
            normalize_text(organization_name),
            normalize_country(organization_country),
            normalize_rir(rir_registry),
            source,
        )
        observation = facts.observation(now, now)
        with self._savepoint():
            result = upsert_asns(self.session, {asn: observation}, {}, self._telemetry, now=now)
        self._count_asn_work(result, [asn])
        row = self.session.get(ASNInventory, asn, populate_existing=True)
        if row is None:  # pragma: no cover - the upsert either stored it or raised
            raise LookupError(f"AS{asn} was not stored")
        return row

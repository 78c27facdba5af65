"""The ``enrich`` command: Cowrie logs in, session summaries and an enriched inventory out.

A run has two phases. Reading streams the logs once, stores the session
summaries (committed every ``session_chunk`` closed sessions and at the end)
and collects the unique source IPs. Enriching then takes the IPs in batches
through :class:`~cowrieprocessor.enrichment.cascade_enricher.CascadeEnricher`
and commits each batch; the enricher never commits, the command owns the
transaction.

Every write is an idempotent upsert and the IP session counts are computed
from the stored sessions, so running the same logs again changes no count, and
a run stopped at any point (killed, interrupted, a lost database connection)
is completed by running it again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cowrieprocessor.cli.errors import CommandError, UsageError
from cowrieprocessor.cli.progress import Progress, ProgressState
from cowrieprocessor.cli.runtime import (
    Console,
    StatusWriter,
    TelemetryChoice,
    add_stats,
    commit_with_retry,
    database_secrets,
    describe_db_error,
    discard_session,
    open_telemetry,
)
from cowrieprocessor.cli.signals import Interrupted, stop_on_signals
from cowrieprocessor.cli.sources import SourceOptions, Sources, open_sources
from cowrieprocessor.cli.summary import RunSummary, format_summary, top_asns_of_run
from cowrieprocessor.db.engine import Database, DatabaseConfigError, open_database
from cowrieprocessor.db.migrate import MigrationError, upgrade_database
from cowrieprocessor.enrichment.asn_inventory import inventory_size
from cowrieprocessor.enrichment.cascade_enricher import (
    BatchReport,
    CascadeEnricher,
    CascadeStats,
    IPOutcome,
)
from cowrieprocessor.ingest import (
    CowrieEvent,
    IngestCounters,
    InputError,
    InputSource,
    SessionAggregator,
    SessionRecord,
    expand_inputs,
    read_events,
    store_sessions,
)
from cowrieprocessor.telemetry.setup import Telemetry

__all__ = ["EnrichOptions", "TelemetryChoice", "run_enrich"]

logger = logging.getLogger(__name__)

_POP_EVERY = 1000
_BAD_LINE_EXAMPLES = 5
_READING_STATUS_S = 1.0


@dataclass(frozen=True)
class EnrichOptions:
    """Everything one ``enrich`` run needs; built from the command line or by ``demo``."""

    inputs: tuple[str, ...]
    database_url: str = field(repr=False)
    sources: SourceOptions = field(default_factory=SourceOptions)
    telemetry: TelemetryChoice = field(default_factory=TelemetryChoice)
    batch_size: int = 500
    session_chunk: int = 5000
    status_dir: Path | None = None
    json_output: bool = False


@dataclass
class _Ingested:
    counters: IngestCounters
    aggregator: SessionAggregator


def run_enrich(options: EnrichOptions, console: Console) -> int:
    """Run ``enrich`` and return the exit code (0, or 130/143 when interrupted).

    Raises:
        UsageError: an input names nothing readable, or the database URL is unusable.
        CommandError: the database or the status file failed, or telemetry is missing.
    """
    try:
        inputs = expand_inputs(options.inputs)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    secrets = [*database_secrets(options.database_url), options.sources.greynoise_key or ""]
    status = StatusWriter.open(options.status_dir, secrets)
    run = _Run(options, console, status, secrets)
    with stop_on_signals():
        try:
            return run.execute(inputs)
        except Interrupted as stop:
            return run.interrupted(stop)
        except SQLAlchemyError as exc:
            message = f"database error: {describe_db_error(exc, secrets)}"
            status.finish("failed", last_error=message)
            if run.committed:
                message += "; what was committed is kept, rerun the same command to finish"
            raise CommandError(message) from exc
        except CommandError as exc:
            status.finish("failed", last_error=str(exc))
            raise


class _Run:
    """The state of one run, shared by its phases."""

    def __init__(
        self, options: EnrichOptions, console: Console, status: StatusWriter, secrets: list[str]
    ) -> None:
        self.options = options
        self.console = console
        self.status = status
        self.secrets = secrets
        self.progress = Progress(console.stderr, tty=console.stderr_tty, enabled=not console.quiet)
        self.started = time.monotonic()
        self.totals = CascadeStats()
        self.reading: dict[str, int] = {}
        self.total = 0
        self.done = 0
        self.batches = 0
        self.committed = False
        self.enrich_started = self.started

    def execute(self, inputs: Sequence[InputSource]) -> int:
        try:
            database = open_database(self.options.database_url)
        except DatabaseConfigError as exc:
            raise UsageError(str(exc)) from exc
        try:
            self._upgrade(database)
            telemetry = open_telemetry(self.options.telemetry)
            try:
                self._run_phases(database, inputs, telemetry)
            finally:
                if telemetry is not None:
                    telemetry.shutdown()
        finally:
            database.dispose()
        return 0

    def _upgrade(self, database: Database) -> None:
        try:
            upgrade_database(database)
        except MigrationError as exc:
            raise CommandError(f"cannot migrate {database.display_url}: {exc}") from exc

    def _run_phases(
        self, database: Database, inputs: Sequence[InputSource], telemetry: Telemetry | None
    ) -> None:
        try:
            sources = open_sources(self.options.sources)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        try:
            if telemetry is not None and telemetry.metrics_url and not self.console.quiet:
                self.console.err(f"serving metrics on {telemetry.metrics_url}")
            ingested = self._ingest(database, inputs)
            ips = sorted(ingested.aggregator.ip_stats())
            self._enrich(database, sources, ips, telemetry)
            warnings = [*sources.warnings, *(telemetry.warnings if telemetry else [])]
            summary = self._summary(database, ingested, warnings)
        finally:
            sources.close()
        self._report(summary)
        self.status.finish(
            "finished",
            ips_processed=self.done,
            inventory_size=summary.inventory_size,
            stats=self._stats(),
        )
        self._linger(telemetry)

    # -- reading ----------------------------------------------------------------------------

    def _ingest(self, database: Database, inputs: Sequence[InputSource]) -> _Ingested:
        counters = IngestCounters(max_examples=_BAD_LINE_EXAMPLES)
        aggregator = SessionAggregator()
        self.status.update(phase="ingesting")
        pending: list[SessionRecord] = []
        last_status = time.monotonic()
        for number, item in enumerate(read_events(inputs, counters=counters), start=1):
            if isinstance(item, CowrieEvent):
                aggregator.add(item)
            if number % _POP_EVERY:
                continue
            pending.extend(aggregator.pop_closed())
            if len(pending) >= self.options.session_chunk:
                self._store(database, pending)
                pending = []
            self._reading_progress(counters, aggregator)
            if time.monotonic() - last_status >= _READING_STATUS_S:
                last_status = time.monotonic()
                self._note_reading(counters, aggregator)
                self.status.update(stats=self.reading)
        pending.extend(aggregator.drain())
        self._store(database, pending)
        self._reading_progress(counters, aggregator, final=True)
        self._note_reading(counters, aggregator)
        return _Ingested(counters, aggregator)

    def _note_reading(self, counters: IngestCounters, aggregator: SessionAggregator) -> None:
        self.reading = {
            "events": counters.events,
            "sessions": aggregator.summary().sessions,
            "unique_ips": aggregator.summary().unique_ips,
            "bad_lines": counters.problems,
        }

    def _reading_progress(
        self, counters: IngestCounters, aggregator: SessionAggregator, *, final: bool = False
    ) -> None:
        summary = aggregator.summary()
        self.progress.reading(counters.events, summary.sessions, counters.problems, final=final)

    def _store(self, database: Database, records: list[SessionRecord]) -> None:
        if records:
            commit_with_retry(
                database, lambda session: store_sessions(session, records), self.secrets
            )
            self.committed = True

    # -- enriching --------------------------------------------------------------------------

    def _enrich(
        self,
        database: Database,
        sources: Sources,
        ips: list[str],
        telemetry: Telemetry | None,
    ) -> None:
        self.status.update(
            phase="enriching", ips_total=len(ips), ips_processed=0, stats=self._stats()
        )
        self.enrich_started = time.monotonic()
        self.total = len(ips)
        enricher = CascadeEnricher(
            sources.maxmind,
            sources.cymru,
            sources.greynoise,
            database.sessions(),
            tracer_provider=telemetry.tracer_provider if telemetry else None,
            meter_provider=telemetry.meter_provider if telemetry else None,
        )
        try:
            for batch in _batches(ips, self.options.batch_size):
                self._enrich_batch(database, enricher, batch)
        finally:
            enricher.session.close()
        self.progress.finish_enriching()

    def _enrich_batch(
        self, database: Database, enricher: CascadeEnricher, batch: list[str]
    ) -> None:
        """Enrich and commit one batch; after a database error, retry it once on a new session."""
        for attempt in (1, 2):
            enricher.reset_stats()
            try:
                enricher.enrich_ips(batch, batch_size=len(batch), on_batch=self._on_batch(enricher))
            except SQLAlchemyError as exc:
                discard_session(enricher.session)
                if attempt == 2:
                    raise
                logger.warning(
                    "database error in batch %d (%s); retrying it once on a new connection",
                    self.batches + 1,
                    describe_db_error(exc, self.secrets),
                )
                enricher.session = database.sessions()
            else:
                return

    def _on_batch(self, enricher: CascadeEnricher) -> Callable[[BatchReport], None]:
        def commit(report: BatchReport) -> None:
            enricher.session.commit()
            self.committed = True
            add_stats(self.totals, enricher.get_stats())
            enricher.reset_stats()
            self.done += len(report.outcomes)
            self.batches += 1
            state = self._progress_state(report)
            self.progress.enriching(state)
            self.status.update(
                ips_processed=self.done,
                stats=self._stats(),
                inventory_size=report.inventory_size,
            )

        return commit

    def _progress_state(self, report: BatchReport) -> ProgressState:
        return ProgressState(
            done=self.done,
            total=self.total,
            elapsed_s=time.monotonic() - self.enrich_started,
            batch_cache_hits=report.count(IPOutcome.CACHE_HIT),
            batch_size=len(report.outcomes),
        )

    # -- the end ----------------------------------------------------------------------------

    def _summary(self, database: Database, ingested: _Ingested, warnings: list[str]) -> RunSummary:
        counts = ingested.aggregator.summary()
        ip_sessions = {ip: s.sessions for ip, s in ingested.aggregator.ip_stats().items()}
        with database.sessions() as session:
            top = top_asns_of_run(session, ip_sessions)
            size = inventory_size(session)
        snapshot = ingested.counters.snapshot()
        stats = self.totals
        return RunSummary(
            database=database.display_url,
            events=snapshot.events,
            sessions=counts.sessions,
            unique_ips=counts.unique_ips,
            bad_lines=snapshot.problems,
            cache_hits=stats.cache_hits,
            maxmind_hits=stats.maxmind_hits,
            cymru_hits=stats.cymru_hits,
            greynoise_hits=stats.greynoise_hits,
            errors=stats.errors,
            asn_records_created=stats.asn_records_created,
            asn_records_updated=stats.asn_records_updated,
            asn_unique_seen=len(stats.asn_unique_seen),
            asn_operation_duration_ms=stats.asn_operation_duration_ms,
            inventory_size=size,
            duration_s=time.monotonic() - self.started,
            top_asns=tuple(top),
            bad_line_examples=tuple(str(problem) for problem in snapshot.examples),
            warnings=tuple(warnings),
        )

    def _report(self, summary: RunSummary) -> None:
        table = format_summary(summary)
        if self.options.json_output:
            self.console.out(json.dumps(summary.to_json(), indent=2))
            if not self.console.quiet:
                self.console.err(table)
        elif not self.console.quiet:
            self.console.out(table)

    def _linger(self, telemetry: Telemetry | None) -> None:
        seconds = self.options.telemetry.metrics_linger_s
        if telemetry is None or telemetry.metrics_url is None or seconds <= 0:
            return
        if not self.console.quiet:
            self.console.err(f"serving final metrics on {telemetry.metrics_url} for {seconds:g}s")
        try:
            time.sleep(seconds)
        except Interrupted:
            logger.info("stopped serving metrics early: the run had finished")

    def interrupted(self, stop: Interrupted) -> int:
        self.progress.clear()
        message = (
            f"interrupted by {stop.name}; {self.batches} batches committed "
            f"({self.done} of {self.total} IPs); rerun the same command to finish"
        )
        self.status.finish("interrupted", last_error=message, ips_processed=self.done)
        self.console.err(f"cowrieprocessor: {message}")
        return stop.exit_code

    def _stats(self) -> dict[str, Any]:
        """The status file's ``stats``: what was read, then the enrichment counters."""
        return {**self.reading, **vars(self.totals)}


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

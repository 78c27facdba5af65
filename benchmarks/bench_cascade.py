"""Throughput of the cascade on the offline path, and the cost of telemetry.

MaxMind answers through a real reader on generated GeoLite2-format databases;
Cymru and GreyNoise are present but answer nothing (every IP gets its ASN from
MaxMind, so Cymru is never asked). 100,000 distinct IPs over 20,000 ASNs with a
skewed popularity. Each mode runs in a fresh database; telemetry off and on run
alternately so their ratio is measured side by side.

    python -m benchmarks.bench_cascade                # all modes
    python -m benchmarks.bench_cascade --ips 20000 --modes batch-sqlite
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import random
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from cowrieprocessor.db import Base, open_database
from cowrieprocessor.demo.geodb import GeoRecord, demo_records, write_geolite2_databases
from cowrieprocessor.enrichment.cascade_enricher import BatchReport, CascadeEnricher
from cowrieprocessor.enrichment.cymru_client import CymruResult
from cowrieprocessor.enrichment.maxmind_client import MaxMindClient
from tests.support.databases import postgres_schema

MODES = ("batch-sqlite", "batch-postgres", "single-sqlite", "otel-sqlite")


class SilentCymru:
    """Cymru that knows nothing (never asked on this path)."""

    def lookup_asn(self, ip: str) -> CymruResult | None:
        return None

    def bulk_lookup(self, ips: Iterable[str]) -> dict[str, CymruResult]:
        return {}


class SilentGreyNoise:
    """GreyNoise that has seen nothing."""

    def lookup_ip(self, ip: str) -> None:
        return None

    def get_remaining_quota(self) -> int | None:
        return None


class DroppingExporter(SpanExporter):
    """Accepts spans and keeps none: the export cost without a collector."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


@dataclass(frozen=True)
class Run:
    mode: str
    ips: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.ips / self.seconds


def skewed_ips(records: Sequence[GeoRecord], count: int, seed: int) -> list[str]:
    """``count`` distinct addresses, networks drawn with a Zipf-like popularity."""
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(records))]
    chosen: set[str] = set()
    while len(chosen) < count:
        for record in rng.choices(records, weights=weights, k=count - len(chosen)):
            network = ipaddress.ip_network(record.network)
            host = network.network_address + rng.randrange(
                1, min(network.num_addresses - 1, 1 << 20)
            )
            chosen.add(str(host))
    ordered = sorted(chosen)
    rng.shuffle(ordered)
    return ordered


def run_batch(url: str, maxmind: MaxMindClient, ips: list[str], *, otel: bool, batch: int) -> float:
    gc.collect()  # each run starts without the previous run's garbage
    db = open_database(url)
    Base.metadata.create_all(db.engine)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    if otel:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
        meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    with db.sessions() as session:
        enricher = CascadeEnricher(
            maxmind,
            SilentCymru(),
            SilentGreyNoise(),
            session,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
        )

        def commit(_report: BatchReport) -> None:
            session.commit()

        started = time.perf_counter()
        report = enricher.enrich_ips(ips, batch_size=batch, on_batch=commit)
        seconds = time.perf_counter() - started
        assert enricher.get_stats().errors == 0, report.causes
    db.dispose()
    if tracer_provider is not None:
        tracer_provider.shutdown()
    return seconds


def run_single(url: str, maxmind: MaxMindClient, ips: list[str]) -> float:
    db = open_database(url)
    Base.metadata.create_all(db.engine)
    with db.sessions() as session:
        enricher = CascadeEnricher(maxmind, SilentCymru(), SilentGreyNoise(), session)
        started = time.perf_counter()
        for n, ip in enumerate(ips, 1):
            enricher.enrich_ip(ip)
            if n % 100 == 0:
                session.commit()
        session.commit()
        seconds = time.perf_counter() - started
    db.dispose()
    return seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ips", type=int, default=100_000)
    parser.add_argument("--asns", type=int, default=20_000)
    parser.add_argument("--single-ips", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--pairs", type=int, default=6, help="telemetry off/on pairs")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-cascade-") as tmp:
        work = Path(tmp)
        records = demo_records(args.asns + args.asns // 4, seed=7, asn_count=args.asns)
        write_geolite2_databases(work / "geoip", records)
        ips = skewed_ips(records, args.ips, seed=11)
        maxmind = MaxMindClient(work / "geoip")
        print(f"{len(ips):,} IPs over {args.asns:,} ASNs ({len(records):,} networks)")

        def sqlite_url(name: str) -> str:
            path = work / f"{name}.sqlite"
            path.unlink(missing_ok=True)
            return f"sqlite:///{path}"

        if "batch-sqlite" in args.modes:
            seconds = run_batch(
                sqlite_url("batch"), maxmind, ips, otel=False, batch=args.batch_size
            )
            print(f"enrich_ips  SQLite file : {len(ips) / seconds:10,.0f} IPs/s ({seconds:.2f} s)")
        if "batch-postgres" in args.modes:
            with postgres_schema() as url:
                seconds = run_batch(url, maxmind, ips, otel=False, batch=args.batch_size)
            print(f"enrich_ips  PostgreSQL  : {len(ips) / seconds:10,.0f} IPs/s ({seconds:.2f} s)")
        if "single-sqlite" in args.modes:
            subset = ips[: args.single_ips]
            seconds = run_single(sqlite_url("single"), maxmind, subset)
            print(
                f"enrich_ip   SQLite file : {len(subset) / seconds:10,.0f} IPs/s ({seconds:.2f} s)"
            )
        if "otel-sqlite" in args.modes:
            # A first, untimed run warms the process; then the pairs alternate which
            # side goes first (off/on, on/off, ...) so drift over the run cancels out.
            run_batch(sqlite_url("warm"), maxmind, ips, otel=False, batch=args.batch_size)
            ratios = []
            for pair in range(args.pairs):
                timed: dict[bool, float] = {}
                for otel in (False, True) if pair % 2 == 0 else (True, False):
                    url = sqlite_url("on" if otel else "off")
                    timed[otel] = run_batch(url, maxmind, ips, otel=otel, batch=args.batch_size)
                off, on = timed[False], timed[True]
                ratios.append(on / off)
                print(f"  pair: off {len(ips) / off:,.0f} IPs/s, on {len(ips) / on:,.0f} IPs/s")
            median = statistics.median(ratios)
            print(
                f"telemetry on/off time ratio: median {median:.3f} "
                f"(min {min(ratios):.3f}, max {max(ratios):.3f}) "
                f"-> overhead {100 * (median - 1):+.1f}%"
            )
        maxmind.close()


if __name__ == "__main__":
    main()

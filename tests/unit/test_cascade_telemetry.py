"""CascadeStats, the span and the metrics of ASN operations, with the real SDK."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.trace import StatusCode
from sqlalchemy.exc import IntegrityError

from cowrieprocessor.db import Base, Database, open_database
from cowrieprocessor.enrichment.asn_inventory import MAX_ASN_EVENTS
from cowrieprocessor.enrichment.cascade_enricher import CascadeEnricher
from cowrieprocessor.telemetry import names
from tests.support.fakes import (
    Clock,
    FakeCymru,
    FakeGreyNoise,
    FakeMaxMind,
    cymru_result,
    greynoise_result,
    maxmind_result,
)
from tests.support.paths import REPO_ROOT
from tests.support.telemetry import InMemoryTelemetry, in_memory_telemetry


@pytest.fixture
def memory_db() -> Iterator[Database]:
    db = open_database("sqlite:///:memory:")
    Base.metadata.create_all(db.engine)
    yield db
    db.dispose()


@pytest.fixture
def telemetry() -> InMemoryTelemetry:
    return in_memory_telemetry()


def _enricher(db: Database, telemetry: InMemoryTelemetry) -> CascadeEnricher:
    clock = Clock()
    maxmind = FakeMaxMind(
        {
            "8.8.8.8": maxmind_result("8.8.8.8", 15169, org="GOOGLE", country="US"),
            "8.8.4.4": maxmind_result("8.8.4.4", 15169, org="GOOGLE", country="US"),
            "1.1.1.1": maxmind_result("1.1.1.1", None),
            "2.2.2.2": maxmind_result("2.2.2.2", None),
        },
        clock=clock,
    )
    cymru = FakeCymru(
        {
            "1.1.1.1": cymru_result("1.1.1.1", 13335, org="CLOUDFLARENET", rir="ARIN"),
            "2.2.2.2": cymru_result("2.2.2.2", 3215, org="Orange", country="FR", rir="RIPE"),
        },
        clock=clock,
    )
    greynoise = FakeGreyNoise({"8.8.8.8": greynoise_result("8.8.8.8")}, clock=clock, quota=42)
    return CascadeEnricher(
        maxmind,
        cymru,
        greynoise,
        db.sessions(),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        clock=clock,
    )


def test_created_then_updated_with_attributes(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher.enrich_ips(["8.8.8.8", "8.8.4.4", "1.1.1.1", "2.2.2.2"])

    created = names.ASN_RECORDS_CREATED
    assert telemetry.counter(created) == 3
    assert telemetry.counter(created, source="maxmind", country="US", rir="unknown") == 1
    assert telemetry.counter(created, source="cymru", country="US", rir="ARIN") == 1
    assert telemetry.counter(created, source="cymru", country="FR", rir="RIPE") == 1
    assert telemetry.counter(names.ASN_RECORDS_UPDATED) == 0

    enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])
    updated = names.ASN_RECORDS_UPDATED
    assert telemetry.counter(updated) == 2
    assert telemetry.counter(updated, source="maxmind", update_type="timestamp_refresh") == 1
    assert telemetry.counter(updated, source="cymru", update_type="timestamp_refresh") == 1
    enricher._ensure_asn_inventory(15169, "GOOGLE", "US", "ARIN")
    assert telemetry.counter(updated, update_type="metadata_enrichment") == 1

    stats = enricher.get_stats()
    assert (stats.asn_records_created, stats.asn_records_updated) == (3, 3)
    assert stats.asn_unique_seen == {15169, 13335, 3215}
    for point in telemetry.points(created) + telemetry.points(updated):
        assert "asn" not in " ".join(point.attributes)  # never an ASN or IP as a label
        assert "ip" not in point.attributes


def test_duration_accumulates_and_histogram_has_the_contract_bounds(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])
    first = enricher.get_stats().asn_operation_duration_ms
    enricher.enrich_ips(["2.2.2.2"])
    second = enricher.get_stats().asn_operation_duration_ms
    assert 0 < first < second

    create_points = telemetry.histogram(names.ASN_OPERATION_DURATION, operation="create")
    assert len(create_points) == 1
    point = create_points[0]
    assert point.count == 3  # one observation per ASN operation
    assert tuple(point.explicit_bounds) == names.ASN_OPERATION_DURATION_BOUNDS
    assert 0 < point.sum * 1000 <= second * 3


def test_span_of_a_single_operation(memory_db: Database, telemetry: InMemoryTelemetry) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher._ensure_asn_inventory(64500, "EXAMPLE", "DE", None)
    enricher._ensure_asn_inventory(64500, "EXAMPLE", "DE", "RIPE")

    spans = telemetry.finished_spans(names.ENSURE_ASN_SPAN)
    assert len(spans) == 2
    first, second = (dict(span.attributes or {}) for span in spans)
    assert first["asn.number"] == 64500
    assert first["asn.organization"] == "EXAMPLE"
    assert first["asn.country"] == "DE"
    assert first["asn.rir"] == "unknown"
    assert first["asn.operation"] == "create"
    assert isinstance(first["asn.operation_duration_ms"], float)
    assert first["asn.operation_duration_ms"] > 0
    assert second["asn.operation"] == "update"
    assert second["asn.rir"] == "RIPE"


def test_batch_span_counts_and_events(memory_db: Database, telemetry: InMemoryTelemetry) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher.enrich_ips(["8.8.8.8", "1.1.1.1", "2.2.2.2"])
    enricher.enrich_ips(["8.8.8.8", "8.8.4.4"])

    first, second = telemetry.finished_spans(names.ENSURE_ASN_SPAN)
    attributes = dict(first.attributes or {})
    assert attributes["asn.batch_size"] == 3
    assert attributes["asn.created_count"] == 3
    assert attributes["asn.updated_count"] == 0
    numbers = [(event.attributes or {}).get("asn.number") for event in first.events]
    assert sorted(n for n in numbers if isinstance(n, int)) == [3215, 13335, 15169]
    assert dict(second.attributes or {})["asn.operation"] == "update"


def test_busy_statement_describes_new_asns_first_and_counts_the_rest(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    known = {f"8.0.{n}.1": maxmind_result(f"8.0.{n}.1", 64_000 + n) for n in range(30)}
    fresh = {f"9.0.{n}.1": maxmind_result(f"9.0.{n}.1", 65_000 + n) for n in range(10)}
    enricher = CascadeEnricher(
        FakeMaxMind({**known, **fresh}),
        None,
        None,
        memory_db.sessions(),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    enricher.enrich_ips(list(known))
    telemetry.spans.clear()

    enricher.enrich_ips(list(known) + list(fresh))

    (span,) = telemetry.finished_spans(names.ENSURE_ASN_SPAN)
    attributes = dict(span.attributes or {})
    assert (attributes["asn.created_count"], attributes["asn.updated_count"]) == (10, 30)
    assert len(span.events) == MAX_ASN_EVENTS == 32
    assert attributes["asn.events_dropped"] == 40 - MAX_ASN_EVENTS
    operations = [(event.attributes or {}).get("asn.operation") for event in span.events]
    assert operations == ["create"] * 10 + ["update"] * 22
    created = {(event.attributes or {}).get("asn.number") for event in span.events[:10]}
    assert created == set(range(65_000, 65_010))


def test_duration_exemplar_points_at_the_statement_span(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher.enrich_ips(["8.8.8.8", "1.1.1.1", "2.2.2.2"])

    (span,) = telemetry.finished_spans(names.ENSURE_ASN_SPAN)
    (point,) = telemetry.histogram(names.ASN_OPERATION_DURATION, operation="create")
    assert point.count == 3
    assert [exemplar.span_id for exemplar in point.exemplars] == [span.context.span_id]


def test_exception_is_recorded_once_with_error_status(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    enricher = _enricher(memory_db, telemetry)
    with pytest.raises(IntegrityError):
        enricher._ensure_asn_inventory(-1, "BROKEN", None, None)
    (span,) = telemetry.finished_spans(names.ENSURE_ASN_SPAN)
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_size_gauge_reports_the_last_count(
    memory_db: Database, telemetry: InMemoryTelemetry
) -> None:
    enricher = _enricher(memory_db, telemetry)
    assert telemetry.points(names.ASN_SIZE) == []  # nothing counted yet: nothing reported
    enricher.enrich_ips(["8.8.8.8", "1.1.1.1"])
    assert [p.value for p in telemetry.points(names.ASN_SIZE)] == [2]
    enricher.enrich_ips(["2.2.2.2"])
    assert [p.value for p in telemetry.points(names.ASN_SIZE)] == [3]
    assert enricher.get_asn_inventory_size() == 3
    assert [p.value for p in telemetry.points(names.GREYNOISE_QUOTA_REMAINING)] == [42]


def test_lookup_and_ip_counters(memory_db: Database, telemetry: InMemoryTelemetry) -> None:
    enricher = _enricher(memory_db, telemetry)
    enricher.enrich_ips(["8.8.8.8", "1.1.1.1", "10.0.0.1", "9.9.9.9"])
    enricher.enrich_ips(["8.8.8.8"])

    lookups = names.SOURCE_LOOKUPS
    assert telemetry.counter(lookups, source="maxmind", outcome="hit") == 2
    assert telemetry.counter(lookups, source="maxmind", outcome="miss") == 1
    assert telemetry.counter(lookups, source="cymru", outcome="hit") == 1
    assert telemetry.counter(lookups, source="cymru", outcome="miss") == 1
    assert telemetry.counter(lookups, source="greynoise", outcome="hit") == 1
    assert telemetry.counter(names.ENRICHED_IPS, outcome="enriched") == 3
    assert telemetry.counter(names.ENRICHED_IPS, outcome="skipped") == 1
    assert telemetry.counter(names.ENRICHED_IPS, outcome="cache_hit") == 1
    # One duration per source and batch: two batches asked MaxMind, one asked Cymru.
    durations = telemetry.histogram(names.SOURCE_LOOKUP_DURATION, source="maxmind")
    assert sum(point.count for point in durations) == 1  # the second batch was a cache hit
    assert (
        sum(p.count for p in telemetry.histogram(names.SOURCE_LOOKUP_DURATION, source="cymru")) == 1
    )


def test_works_without_the_sdk() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry.sdk"] = None  # as if the [otel] extra were not installed
        from cowrieprocessor.db import Base, open_database
        from cowrieprocessor.enrichment.cascade_enricher import CascadeEnricher
        from tests.support.fakes import FakeMaxMind, maxmind_result
        db = open_database("sqlite:///:memory:")
        Base.metadata.create_all(db.engine)
        with db.sessions() as session:
            enricher = CascadeEnricher(
                FakeMaxMind({"8.8.8.8": maxmind_result("8.8.8.8", 15169)}), None, None, session
            )
            enricher.enrich_ips(["8.8.8.8"])
            enricher._ensure_asn_inventory(15169, "GOOGLE", "US", "ARIN")
            stats = enricher.get_stats()
            size = enricher.get_asn_inventory_size()
            print(stats.asn_records_created, stats.asn_records_updated, size)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "1"]

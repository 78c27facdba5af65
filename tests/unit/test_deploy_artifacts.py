"""The shipped dashboard, rules and docs: generated, valid, tested and true to the exporter."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry, generate_latest

from cowrieprocessor.telemetry.instruments import EnrichmentInstruments
from deploy.grafana import generate_dashboard
from tests.support.promql import (
    DASHBOARD_JSON,
    DOCS,
    RULES_TEST_YML,
    RULES_YML,
    dashboard_queries,
    dashboard_variable_references,
    dashboard_variables,
    markdown_queries,
    metric_names,
    prometheus_binary,
    rules_queries,
    scraped_sample_names,
    shipped_queries,
    unknown_names,
)

OPS_GUIDE = DOCS[1]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return loaded


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES_YML.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("asn_inventory_size", {"asn_inventory_size"}),
        ('sum by (job, source) (rate(a_total{outcome="error"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
        ("sum(rate(a[1m])) without (instance) / on (job) group_left (x) b", {"a", "b"}),
        ("x offset 1d - y @ 1609746000", {"x", "y"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
        ("rec:name:rate5m * 60 > 100 and bool 1e3", {"rec:name:rate5m"}),
        ("# a comment naming nothing\nup == 0", {"up"}),
        ('a{job=~"$job", instance=~"$instance"}[$__rate_interval]', {"a"}),
    ],
    ids=[
        "bare",
        "by-clause",
        "histogram",
        "on-group-left",
        "offset-at",
        "strings",
        "recorded",
        "comment",
        "grafana-vars",
    ],
)
def test_metric_names_reads_promql(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_committed_dashboard_is_what_the_generator_writes() -> None:
    assert DASHBOARD_JSON.read_text(encoding="utf-8") == generate_dashboard.render()


def test_generator_check_mode_detects_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "dashboard.json"
    target.write_text("{}\n", encoding="utf-8")
    assert generate_dashboard.main(["--check", "--output", str(target)]) == 1
    assert generate_dashboard.main(["--output", str(target)]) == 0
    assert generate_dashboard.main(["--check", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == generate_dashboard.render()


def test_every_dashboard_variable_is_defined() -> None:
    dashboard = _dashboard()
    referenced = dashboard_variable_references(dashboard)
    assert {"datasource", "job", "instance"} <= referenced
    assert referenced <= dashboard_variables(dashboard)


def test_dashboard_panels_have_unique_ids_and_fit_the_grid() -> None:
    panels = _dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all('job=~"$job"' in target["expr"] for target in panel["targets"])


def test_dashboard_covers_what_operators_asked_for() -> None:
    exprs = " ".join(query.expr for query in dashboard_queries(_dashboard()))
    for needle in (
        "by (source) (rate(asn_inventory_records_created_total",
        "by (update_type) (rate(asn_inventory_records_updated_total",
        "histogram_quantile(0.99, sum by (operation, le)",
        "by (country) (increase(asn_inventory_records_created_total",
        "by (rir) (increase(asn_inventory_records_created_total",
        'enrichment_ips_total{job=~"$job", instance=~"$instance", outcome="cache_hit"}',
        "by (source, outcome) (rate(enrichment_lookups_total",
        "enrichment_greynoise_quota_remaining",
        "offset 1d",
    ):
        assert needle in exprs


def test_every_alert_has_summary_description_and_a_runbook_section() -> None:
    guide = OPS_GUIDE.read_text(encoding="utf-8")
    anchors = {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", guide, re.MULTILINE)}
    alerts = _alerts()
    assert len(alerts) >= 5
    for alert in alerts:
        annotations = alert["annotations"]
        assert annotations["summary"]
        assert annotations["description"]
        guide_path, _, anchor = annotations["runbook_url"].partition("#")
        assert guide_path == f"claudedocs/{OPS_GUIDE.name}"
        assert anchor == alert["alert"].lower()
        assert anchor in anchors, f"no runbook heading for {alert['alert']}"


def _anchor(heading: str) -> str:
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_each_alert_is_tested_firing_and_not_firing() -> None:
    document = yaml.safe_load(RULES_TEST_YML.read_text(encoding="utf-8"))
    outcomes: dict[str, set[bool]] = {}
    for test in document["tests"]:
        for case in test.get("alert_rule_test", []):
            outcomes.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    assert {alert["alert"]: {True, False} for alert in _alerts()} == outcomes


def test_issue_thresholds_are_the_shipped_ones() -> None:
    by_name = {alert["alert"]: alert for alert in _alerts()}
    creation = by_name["ASNInventoryHighCreationRate"]
    assert creation["expr"].endswith("* 60 > 100")
    assert creation["for"] == "15m"
    slow = by_name["ASNInventorySlowOperations"]
    assert slow["expr"].endswith("> 0.5")
    assert slow["for"] == "10m"
    assert (
        "increase(asn_inventory_operation_duration_seconds_count[1h])"
        in by_name["ASNEnrichmentStalled"]["expr"]
    )


def test_docs_have_promql_and_explain_the_old_names() -> None:
    for doc in DOCS:
        assert markdown_queries(doc), f"{doc.name} has no promql block"
        text = doc.read_text(encoding="utf-8")
        assert "asn_inventory.total_count" in text
        assert "asn_inventory.operation_duration_ms" in text
    assert "asn_inventory_operation_duration_ms_bucket" not in " ".join(
        q.expr for q in shipped_queries()
    )


def test_rule_queries_are_found() -> None:
    names = set().union(*(metric_names(query.expr) for query in rules_queries(RULES_YML)))
    assert {"asn_inventory_records_created_total", "target_info", "up"} <= names


def _exporter_scrape() -> str:
    """Exercise every instrument once and return what the Prometheus exporter serves."""
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry)
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "cowrieprocessor"})
    )
    instruments = EnrichmentInstruments(meter_provider=provider)
    created: Counter[tuple[tuple[str, str], ...]] = Counter(
        {(("source", "maxmind"), ("country", "US"), ("rir", "unknown")): 2}
    )
    updated: Counter[tuple[tuple[str, str], ...]] = Counter(
        {(("source", "cymru"), ("update_type", "metadata_enrichment")): 1}
    )
    instruments.record_asn_operations(created, updated, 0.002)
    instruments.add_lookups({("maxmind", "hit"): 3, ("cymru", "error"): 1})
    instruments.record_lookup_duration("maxmind", 0.0004)
    instruments.add_ips({"cache_hit": 1, "enriched": 2, "error": 1})
    instruments.set_inventory_size(2)
    instruments.set_quota_remaining(40)
    try:
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()


def test_shipped_queries_only_name_series_the_exporter_produces() -> None:
    scraped = scraped_sample_names(_exporter_scrape())
    assert "asn_inventory_operation_duration_seconds_bucket" in scraped
    assert unknown_names(shipped_queries(), scraped) == {}


def test_unknown_names_reports_a_wrong_name() -> None:
    scraped = scraped_sample_names(_exporter_scrape())
    queries = markdown_queries(OPS_GUIDE)[:1]
    bogus = [type(queries[0])("example", "rate(asn_inventory_operation_duration_ms_bucket[5m])")]
    assert unknown_names(bogus, scraped) == {
        "asn_inventory_operation_duration_ms_bucket": ["example"]
    }


def test_promtool_check_rules() -> None:
    promtool = prometheus_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES_YML)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    promtool = prometheus_binary("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", RULES_TEST_YML.name],
        cwd=RULES_TEST_YML.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_check_example_config() -> None:
    promtool = prometheus_binary("promtool")
    example = RULES_YML.parent / "prometheus.example.yml"
    result = subprocess.run(
        [promtool, "check", "config", example.name],
        cwd=example.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""Build the Grafana dashboard for the ASN inventory and the enrichment pipeline.

Run ``python -m deploy.grafana.generate_dashboard`` (or this file directly) to
rewrite ``cowrieprocessor-asn-inventory.json`` beside it; ``--check`` only
reports whether the committed file is current. The output is deterministic:
sorted keys, panel ids in layout order, no timestamps.

Every query reads the series the OpenTelemetry Prometheus exporter of
``cowrieprocessor enrich --metrics-port`` produces; none needs the recording
rules, so the dashboard works before the rules are loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DASHBOARD_PATH", "build_dashboard", "main", "render"]

DASHBOARD_PATH = Path(__file__).resolve().parent / "cowrieprocessor-asn-inventory.json"

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_SELECTOR = 'job=~"$job", instance=~"$instance"'
_WIDTH = 24


def _sel(extra: str = "") -> str:
    """Label matchers for the selected job/instance, plus ``extra`` matchers."""
    return "{" + _SELECTOR + (", " + extra if extra else "") + "}"


def _rate(
    metric: str, *, extra: str = "", fn: str = "rate", window: str = "$__rate_interval"
) -> str:
    """``rate(metric{selected}[window])`` (or ``increase``) for the selected targets."""
    return f"{fn}({metric}{_sel(extra)}[{window}])"


def _target(expr: str, legend: str, ref: str, *, instant: bool = False) -> dict[str, Any]:
    return {
        "datasource": _DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "instant": instant,
        "legendFormat": legend,
        "range": not instant,
        "refId": ref,
    }


def _targets(queries: Sequence[tuple[str, str]], *, instant: bool = False) -> list[dict[str, Any]]:
    return [
        _target(expr, legend, chr(ord("A") + index), instant=instant)
        for index, (expr, legend) in enumerate(queries)
    ]


def _panel(
    kind: str, title: str, description: str, unit: str, targets: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "datasource": _DATASOURCE,
        "description": description,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": targets,
        "title": title,
        "type": kind,
    }


def _timeseries(
    title: str, description: str, unit: str, queries: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    return _panel("timeseries", title, description, unit, _targets(queries))


def _stat(
    title: str, description: str, unit: str, queries: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    return _panel("stat", title, description, unit, _targets(queries))


def _bars(title: str, description: str, expr: str, legend: str) -> dict[str, Any]:
    panel = _panel(
        "bargauge", title, description, "short", _targets([(expr, legend)], instant=True)
    )
    panel["options"] = {"displayMode": "gradient", "orientation": "horizontal"}
    return panel


def _row(title: str) -> dict[str, Any]:
    return {"collapsed": False, "panels": [], "title": title, "type": "row"}


def _quantiles(metric: str, by: str, legend: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) ({_rate(metric + '_bucket')}))",
            f"p{round(q * 100)} {legend}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _inventory_panels() -> list[dict[str, Any]]:
    size = f"max(asn_inventory_size{_sel()})"
    created = _rate("asn_inventory_records_created_total", fn="increase", window="$__range")
    return [
        _row("ASN inventory"),
        _stat(
            "ASN inventory size",
            "Rows in asn_inventory at the last count (once per batch).",
            "short",
            [(size, "ASNs")],
        ),
        _stat(
            "Inventory growth, last 24 h",
            "ASNs added to asn_inventory over the last day (gauge now minus gauge a day ago).",
            "short",
            [(f"{size} - max(asn_inventory_size{_sel()} offset 1d)", "ASNs per day")],
        ),
        _stat(
            "GreyNoise quota left",
            "GreyNoise requests left in the current quota window (only when GreyNoise is enabled).",
            "short",
            [(f"min by (instance) (enrichment_greynoise_quota_remaining{_sel()})", "{{instance}}")],
        ),
        _timeseries(
            "ASNs created per minute by source",
            "New asn_inventory rows per minute, by the source that supplied the ASN.",
            "short",
            [
                (
                    f"sum by (source) ({_rate('asn_inventory_records_created_total')}) * 60",
                    "{{source}}",
                )
            ],
        ),
        _timeseries(
            "ASNs updated per minute by type",
            "asn_inventory rows updated per minute: metadata_enrichment or timestamp_refresh.",
            "short",
            [
                (
                    f"sum by (update_type) ({_rate('asn_inventory_records_updated_total')}) * 60",
                    "{{update_type}}",
                )
            ],
        ),
        _timeseries(
            "Inventory size and growth per day",
            "The gauge over time and its change over the preceding 24 hours.",
            "short",
            [
                (size, "size"),
                (f"{size} - max(asn_inventory_size{_sel()} offset 1d)", "growth per day"),
            ],
        ),
        _timeseries(
            "ASN operation duration p50 / p95 / p99",
            "Duration of the statement behind each ASN create or update, by operation.",
            "s",
            _quantiles("asn_inventory_operation_duration_seconds", "operation", "{{operation}}"),
        ),
        _bars(
            "New ASNs by country (dashboard range)",
            "asn_inventory rows created in the selected time range, by the ASN's country.",
            f"sort_desc(sum by (country) ({created}))",
            "{{country}}",
        ),
        _bars(
            "New ASNs by RIR (dashboard range)",
            "asn_inventory rows created in the selected time range, by regional internet registry.",
            f"sort_desc(sum by (rir) ({created}))",
            "{{rir}}",
        ),
    ]


def _enrichment_panels() -> list[dict[str, Any]]:
    ips = _rate("enrichment_ips_total")
    hits = _rate("enrichment_ips_total", extra='outcome="cache_hit"')
    lookups = _rate("enrichment_lookups_total")
    errors = _rate("enrichment_lookups_total", extra='outcome="error"')
    return [
        _row("Enrichment pipeline"),
        _timeseries(
            "IPs processed per second",
            "IPs per second by outcome: cache_hit, enriched, skipped, error.",
            "ops",
            [(f"sum by (outcome) ({ips})", "{{outcome}}")],
        ),
        _timeseries(
            "Cache-hit ratio",
            "Share of IPs answered from ip_inventory without calling any source.",
            "percentunit",
            [(f"sum({hits}) / sum({ips})", "cache hits")],
        ),
        _timeseries(
            "Lookups per second by source",
            "Calls per source and outcome (hit, miss, error, skipped).",
            "ops",
            [(f"sum by (source, outcome) ({lookups})", "{{source}} {{outcome}}")],
        ),
        _timeseries(
            "Lookup errors per second by source",
            "Failed lookups per second, by source.",
            "ops",
            [(f"sum by (source) ({errors})", "{{source}}")],
        ),
        _timeseries(
            "Source time per batch, p95",
            "95th percentile of the time each source took for one batch of IPs.",
            "s",
            [
                (
                    "histogram_quantile(0.95, sum by (source, le) "
                    f"({_rate('enrichment_lookup_duration_seconds_bucket')}))",
                    "{{source}}",
                )
            ],
        ),
    ]


def _layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give panels stable ids and grid positions: rows full width, stats 8 wide, graphs 12."""
    x = y = line_height = 0
    for panel_id, panel in enumerate(panels, start=1):
        width, height = {"row": (_WIDTH, 1), "stat": (8, 4)}.get(panel["type"], (12, 8))
        if x + width > _WIDTH:
            x, y, line_height = 0, y + line_height, 0
        panel["id"] = panel_id
        panel["gridPos"] = {"h": height, "w": width, "x": x, "y": y}
        x, line_height = x + width, max(line_height, height)
    return panels


def _variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "current": {"selected": True, "text": "All", "value": "$__all"},
        "datasource": _DATASOURCE,
        "definition": query,
        "includeAll": True,
        "label": label,
        "multi": True,
        "name": name,
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "refresh": 2,
        "sort": 1,
        "type": "query",
    }


def _templating() -> dict[str, Any]:
    datasource = {
        "current": {},
        "label": "Data source",
        "name": "datasource",
        "query": "prometheus",
        "refresh": 1,
        "type": "datasource",
    }
    targets = 'target_info{service_name="cowrieprocessor"'
    return {
        "list": [
            datasource,
            _variable("job", "Job", f"label_values({targets}}}, job)"),
            _variable("instance", "Instance", f'label_values({targets}, job=~"$job"}}, instance)'),
        ]
    }


def build_dashboard() -> dict[str, Any]:
    """Return the dashboard as a JSON-ready dict (Grafana schema 39)."""
    return {
        "annotations": {"list": []},
        "description": "cowrieprocessor: ASN inventory growth and enrichment pipeline health.",
        "editable": True,
        "graphTooltip": 1,
        "links": [],
        "panels": _layout(_inventory_panels() + _enrichment_panels()),
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["cowrieprocessor", "honeypot", "enrichment"],
        "templating": _templating(),
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": "cowrieprocessor: ASN inventory and enrichment",
        "uid": "cowrieprocessor-asn",
        "version": 1,
    }


def render() -> str:
    """The dashboard as the exact text committed to the repository."""
    return json.dumps(build_dashboard(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check`` verify) the dashboard file; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=DASHBOARD_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            sys.stderr.write(
                f"{args.output} is out of date; run python -m deploy.grafana.generate_dashboard\n"
            )
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

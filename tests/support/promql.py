"""Find the metric names that the shipped PromQL queries.

The dashboard, the rules and the docs are parsed as they are committed, so the
names checked against a real scrape are exactly the names an operator runs.
The PromQL reader is deliberately small: it removes strings, label matchers and
range selectors, then keeps every identifier that is not a function, an
aggregation, a keyword or a label list. That is enough for the queries we ship
and fails loudly (with a name that no scrape has) when it is not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.paths import REPO_ROOT

__all__ = [
    "DASHBOARD_JSON",
    "DOCS",
    "PROMETHEUS_SYNTHETIC_SERIES",
    "RULES_TEST_YML",
    "RULES_YML",
    "Query",
    "dashboard_queries",
    "dashboard_variable_references",
    "dashboard_variables",
    "markdown_queries",
    "metric_names",
    "prometheus_binary",
    "recorded_names",
    "rules_queries",
    "scraped_sample_names",
    "shipped_queries",
    "unknown_names",
]

#: Series that Prometheus writes for every target itself; no exporter emits them.
PROMETHEUS_SYNTHETIC_SERIES = frozenset({"up"})

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_COMMENT = re.compile(r"#[^\n]*")
_TOKEN = re.compile(
    r"(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?)"
    r"|(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<other>\S)"
)
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile", "limitk", "limit_ratio"}
)
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?P<expr>.+),\s*\w+\s*\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\(\s*(?P<expr>.+)\)\s*$", re.DOTALL)
_PROMQL_FENCE = re.compile(r"^```promql[ \t]*\n(?P<body>.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression and where it was found (for failure messages)."""

    origin: str
    expr: str


def metric_names(expr: str) -> frozenset[str]:
    """Return the metric (or recorded series) names an expression selects.

    >>> sorted(metric_names('sum by (job) (rate(a_total{x="y"}[5m])) / b offset 1h'))
    ['a_total', 'b']
    """
    text = _STRING.sub('""', expr)
    text = _COMMENT.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    tokens = [(match.lastgroup, match.group()) for match in _TOKEN.finditer(text)]
    names: set[str] = set()
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if kind == "name" and value.lower() in _LABEL_LIST_KEYWORDS and following == "(":
            index = _after_closing_paren(tokens, index + 1)
            continue
        is_aggregation = value in _AGGREGATIONS and following.lower() in {"by", "without"}
        if (
            kind == "name"
            and following != "("
            and not is_aggregation
            and value.lower() not in _KEYWORDS
        ):
            names.add(value)
        index += 1
    return frozenset(names)


def _after_closing_paren(tokens: list[tuple[str | None, str]], open_index: int) -> int:
    for index in range(open_index, len(tokens)):
        if tokens[index][1] == ")":
            return index + 1
    raise ValueError("unbalanced label list in PromQL expression")


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _variable_query_expr(query: str) -> str | None:
    for pattern in (_LABEL_VALUES, _QUERY_RESULT):
        match = pattern.match(query)
        if match:
            return match.group("expr")
    return None


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[Query]:
    """Every PromQL expression of a Grafana dashboard: panel targets and variable queries."""
    queries = [
        Query(f"panel {panel.get('title')!r}", target["expr"])
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        raw = variable.get("query")
        query = raw.get("query") if isinstance(raw, dict) else raw
        if variable.get("type") == "query" and isinstance(query, str):
            expr = _variable_query_expr(query)
            if expr is not None:
                queries.append(Query(f"variable {variable['name']!r}", expr))
    return queries


def dashboard_variables(dashboard: Mapping[str, Any]) -> frozenset[str]:
    """Names of the variables a dashboard defines in its templating list."""
    return frozenset(item["name"] for item in dashboard.get("templating", {}).get("list", []))


def dashboard_variable_references(dashboard: Mapping[str, Any]) -> frozenset[str]:
    """Variables referenced anywhere in the dashboard, without Grafana's ``$__`` built-ins."""
    text = json.dumps(dashboard)
    found = {
        next(group for group in match.groups() if group)
        for match in _GRAFANA_VARIABLE.finditer(text)
    }
    return frozenset(name for name in found if not name.startswith("__"))


def _rule_documents(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def rules_queries(path: Path) -> list[Query]:
    """The ``expr`` of every recording and alerting rule in a rules file."""
    return [
        Query(f"{path.name}: {rule.get('record') or rule.get('alert')}", str(rule["expr"]))
        for rule in _rule_documents(path)
    ]


def recorded_names(path: Path) -> frozenset[str]:
    """Series names that a rules file's recording rules create."""
    return frozenset(rule["record"] for rule in _rule_documents(path) if "record" in rule)


def markdown_queries(path: Path) -> list[Query]:
    """The body of every fenced code block marked ``promql`` in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [
        Query(f"{path.name}, block {number}", match.group("body"))
        for number, match in enumerate(_PROMQL_FENCE.finditer(text), start=1)
    ]


def scraped_sample_names(exposition: str) -> frozenset[str]:
    """Sample names (``x_bucket``, ``x_total``, ...) in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return frozenset(
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    )


def prometheus_binary(name: str) -> str:
    """Path of ``promtool`` or ``prometheus``; skips the test when absent.

    With ``COWRIEPROCESSOR_REQUIRE_PROMETHEUS=1`` (CI) a missing binary fails
    the test instead.
    """
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not found on PATH (Debian: apt-get install prometheus)"
    if os.environ.get("COWRIEPROCESSOR_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(message + "; COWRIEPROCESSOR_REQUIRE_PROMETHEUS=1 makes it mandatory")
    pytest.skip(message)


DASHBOARD_JSON = REPO_ROOT / "deploy" / "grafana" / "cowrieprocessor-asn-inventory.json"
RULES_YML = REPO_ROOT / "deploy" / "prometheus" / "cowrieprocessor-rules.yml"
RULES_TEST_YML = REPO_ROOT / "deploy" / "prometheus" / "cowrieprocessor-rules.test.yml"
DOCS = tuple(
    REPO_ROOT / "claudedocs" / name
    for name in (
        "ASN_INVENTORY_TELEMETRY_DESIGN.md",
        "ASN_TELEMETRY_OPS_GUIDE.md",
        "ASN_TELEMETRY_IMPLEMENTATION_SUMMARY.md",
    )
)


def shipped_queries() -> list[Query]:
    """Every PromQL expression we ship: dashboard, rules and the docs' promql blocks."""
    dashboard = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    queries = dashboard_queries(dashboard) + rules_queries(RULES_YML)
    for doc in DOCS:
        queries += markdown_queries(doc)
    return queries


def unknown_names(queries: list[Query], available: frozenset[str]) -> dict[str, list[str]]:
    """Names the queries select that are neither scraped, recorded nor made by Prometheus.

    Returns each unknown name with the places that use it (empty when all is well).
    """
    known = available | recorded_names(RULES_YML) | PROMETHEUS_SYNTHETIC_SERIES
    unknown: dict[str, list[str]] = {}
    for query in queries:
        for name in sorted(metric_names(query.expr) - known):
            unknown.setdefault(name, []).append(query.origin)
    return unknown

"""The public names of each package are the ones its ``__all__`` promises."""

from __future__ import annotations

import importlib

import pytest

import cowrieprocessor

PACKAGES = {
    "cowrieprocessor": {"__version__"},
    "cowrieprocessor.db": {
        "ASNInventory",
        "Base",
        "Database",
        "DatabaseConfigError",
        "DEFAULT_DATABASE_URL",
        "IPASNHistory",
        "IPInventory",
        "SessionSummary",
        "open_database",
        "redact_url",
    },
    "cowrieprocessor.enrichment": {
        "CascadeEnricher",
        "CascadeStats",
        "EnrichmentError",
        "InvalidIPError",
        "SourceUnavailableError",
        "QuotaExceededError",
        "AuthenticationError",
        "MaxMindClient",
        "MaxMindResult",
        "CymruClient",
        "CymruResult",
        "GreyNoiseClient",
        "GreyNoiseResult",
        "rebuild_asn_counts",
    },
    "cowrieprocessor.telemetry": {"EnrichmentInstruments"},
}


@pytest.mark.parametrize("name", sorted(PACKAGES), ids=sorted(PACKAGES))
def test_all_lists_real_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert PACKAGES[name] <= exported
    for item in exported:
        assert hasattr(module, item), f"{name}.__all__ names missing {item}"


def test_version_comes_from_installed_metadata() -> None:
    from importlib.metadata import version

    assert cowrieprocessor.__version__ == version("cowrieprocessor")


def test_cascade_stats_has_exactly_the_contract_fields() -> None:
    from dataclasses import fields

    from cowrieprocessor.enrichment import CascadeStats

    assert [f.name for f in fields(CascadeStats)] == [
        "total_ips",
        "cache_hits",
        "maxmind_hits",
        "cymru_hits",
        "greynoise_hits",
        "errors",
        "asn_records_created",
        "asn_records_updated",
        "asn_operation_duration_ms",
        "asn_unique_seen",
    ]

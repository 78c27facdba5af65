"""Spans and metric instruments (API only) and the SDK setup of a process (``setup``)."""

from cowrieprocessor.telemetry.instruments import EnrichmentInstruments

__all__ = ["EnrichmentInstruments"]

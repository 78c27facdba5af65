"""Synthetic demo data for trying cowrieprocessor without real databases or logs.

Everything this package produces is made up. It is meant for the demo command,
tests and benchmarks, never for real enrichment.
"""

from __future__ import annotations

from cowrieprocessor.demo.geodb import (
    GeoRecord,
    demo_ips,
    demo_records,
    write_geolite2_databases,
)

__all__ = ["GeoRecord", "demo_ips", "demo_records", "write_geolite2_databases"]

"""What the cascade needs from each source: the seam tests use to pass fakes.

Any object with these methods will do; the real clients are
:class:`~cowrieprocessor.enrichment.maxmind_client.MaxMindClient`,
:class:`~cowrieprocessor.enrichment.cymru_client.CymruClient` and
:class:`~cowrieprocessor.enrichment.greynoise_client.GreyNoiseClient`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

from cowrieprocessor.enrichment.cymru_client import CymruResult
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseResult
from cowrieprocessor.enrichment.maxmind_client import MaxMindResult

__all__ = ["CymruSource", "GreyNoiseSource", "MaxMindSource"]


class MaxMindSource(Protocol):
    def lookup_ip(self, ip: str) -> MaxMindResult | None: ...

    def database_build_time(self) -> datetime | None: ...


class CymruSource(Protocol):
    def lookup_asn(self, ip: str) -> CymruResult | None: ...

    def bulk_lookup(self, ips: Iterable[str]) -> dict[str, CymruResult]: ...


class GreyNoiseSource(Protocol):
    def lookup_ip(self, ip: str) -> GreyNoiseResult | None: ...

    def get_remaining_quota(self) -> int | None: ...

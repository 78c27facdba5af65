"""The enrichment sources a run uses, built from the command-line options.

Decisions an operator may want to know:

- MaxMind is used when a database is found (``--maxmind-dir``, the
  ``COWRIEPROCESSOR_MAXMIND_DIR`` variable, then ``/usr/share/GeoIP`` and
  ``/var/lib/GeoIP``); otherwise the run says so once and goes on without it.
- Team Cymru is asked over its bulk whois service only, also for a single IP,
  so one TCP port (43 by default) is all a firewall must allow.
- GreyNoise is used only with an API key, or with ``--greynoise`` (the small
  unauthenticated community quota). The key is never shown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cowrieprocessor.enrichment.addresses import canonical_ip
from cowrieprocessor.enrichment.cymru_client import CymruClient, CymruResult
from cowrieprocessor.enrichment.greynoise_client import GreyNoiseClient
from cowrieprocessor.enrichment.maxmind_client import DEFAULT_SEARCH_DIRS, MaxMindClient

__all__ = ["SourceOptions", "Sources", "WhoisOnlyCymru", "open_sources"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceOptions:
    """Which sources to use and where they are."""

    maxmind_dir: Path | None = None
    cymru: bool = True
    cymru_host: str = "whois.cymru.com"
    cymru_port: int = 43
    greynoise: bool = False
    greynoise_key: str | None = field(default=None, repr=False)
    greynoise_url: str = "https://api.greynoise.io"
    greynoise_daily_budget: int | None = None


class WhoisOnlyCymru:
    """A Cymru source that answers single lookups through the bulk whois service too."""

    def __init__(self, client: CymruClient) -> None:
        self._client = client

    def lookup_asn(self, ip: str) -> CymruResult | None:
        return self._client.bulk_lookup([ip]).get(canonical_ip(ip, source="cymru"))

    def bulk_lookup(self, ips: Iterable[str]) -> dict[str, CymruResult]:
        return self._client.bulk_lookup(ips)


@dataclass
class Sources:
    """The opened sources (``None`` when disabled) and the warnings met opening them."""

    maxmind: MaxMindClient | None
    cymru: WhoisOnlyCymru | None
    greynoise: GreyNoiseClient | None
    warnings: list[str]

    def close(self) -> None:
        if self.maxmind is not None:
            self.maxmind.close()
        if self.greynoise is not None:
            self.greynoise.close()

    def names(self) -> list[str]:
        """The names of the sources in use, in cascade order."""
        pairs = (("maxmind", self.maxmind), ("cymru", self.cymru), ("greynoise", self.greynoise))
        return [name for name, source in pairs if source is not None]


def open_sources(options: SourceOptions) -> Sources:
    """Open the sources ``options`` ask for.

    Raises:
        ValueError: ``--maxmind-dir`` names a file, or the GreyNoise key cannot be
            sent as a header (the key itself is not shown).
    """
    warnings: list[str] = []
    client = MaxMindClient(options.maxmind_dir)
    maxmind = client if client.available else None
    if maxmind is None:
        where = client.directory or ", ".join(str(path) for path in DEFAULT_SEARCH_DIRS)
        warnings.append(
            f"no MaxMind database found in {where}; continuing without MaxMind "
            "(set --maxmind-dir or COWRIEPROCESSOR_MAXMIND_DIR)"
        )
        client.close()
    cymru = None
    if options.cymru:
        cymru = WhoisOnlyCymru(CymruClient(host=options.cymru_host, port=options.cymru_port))
    greynoise = None
    if options.greynoise_key or options.greynoise:
        greynoise = GreyNoiseClient(
            options.greynoise_key,
            base_url=options.greynoise_url,
            daily_budget=options.greynoise_daily_budget,
        )
    for message in warnings:
        logger.warning("%s", message)
    return Sources(maxmind, cymru, greynoise, warnings)

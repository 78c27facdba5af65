"""Calls to the three sources for one batch, with their lookup telemetry.

Lookups are counted per source and outcome; the time a source took is observed
once per batch (per-call observations would cost more than an offline MaxMind
lookup itself).

Our own errors are caught per source and IP: the IP keeps what the other
sources gave and the failure is recorded (``errors``, a log line, the lookup
counter with ``outcome="error"``). A quota refusal is a ``skipped`` lookup, not
an error.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cowrieprocessor.enrichment.errors import EnrichmentError, QuotaExceededError
from cowrieprocessor.enrichment.merge import IPWork
from cowrieprocessor.enrichment.sources import CymruSource, GreyNoiseSource, MaxMindSource
from cowrieprocessor.telemetry.instruments import EnrichmentInstruments

__all__ = ["HIT", "SourceCalls"]

logger = logging.getLogger(__name__)

#: What counts as a hit for each source: a record, an ASN, a GreyNoise sighting.
HIT: Mapping[str, Callable[[Any], bool]] = {
    "maxmind": lambda result: result is not None,
    "cymru": lambda result: result is not None and result.asn is not None,
    "greynoise": lambda result: result is not None and bool(result.noise or result.riot),
}


class SourceCalls:
    """The source calls of one batch; ``lookups`` and ``causes`` collect what happened."""

    def __init__(self, telemetry: EnrichmentInstruments, now: datetime) -> None:
        self._telemetry = telemetry
        self._now = now
        self.lookups: Counter[tuple[str, str]] = Counter()
        self.causes: dict[str, str] = {}
        self.seconds: dict[str, float] = {}

    def maxmind(self, client: MaxMindSource, works: Sequence[IPWork]) -> None:
        wanted = [work for work in works if "maxmind" in work.stale]
        if not wanted:
            return
        started = time.perf_counter()
        build = client.database_build_time()
        extra = {"database_build": build.isoformat()} if build else {}
        for work in wanted:
            self._one("maxmind", work, client.lookup_ip, extra)
        self.seconds["maxmind"] = time.perf_counter() - started

    def cymru(self, client: CymruSource, works: Sequence[IPWork], *, single: bool) -> None:
        """Ask Cymru for the IPs MaxMind left without an ASN: one bulk call for a batch."""
        wanted = [w for w in works if "cymru" in w.stale and w.maxmind_asn is None]
        if not wanted:
            return
        started = time.perf_counter()
        if single or len(wanted) == 1:
            for work in wanted:
                self._one("cymru", work, client.lookup_asn, {})
        else:
            self._bulk(client, wanted)
        self.seconds["cymru"] = time.perf_counter() - started

    def greynoise(self, client: GreyNoiseSource, works: Sequence[IPWork]) -> None:
        wanted = [work for work in works if "greynoise" in work.stale]
        if wanted:
            started = time.perf_counter()
            for work in wanted:
                self._one("greynoise", work, client.lookup_ip, {})
            self.seconds["greynoise"] = time.perf_counter() - started
        self._telemetry.set_quota_remaining(client.get_remaining_quota())

    def record_durations(self) -> None:
        """One observation per source asked in this batch: the time it took."""
        for source, seconds in self.seconds.items():
            self._telemetry.record_lookup_duration(source, seconds)

    def _one(
        self, source: str, work: IPWork, lookup: Callable[[str], Any], extra: dict[str, Any]
    ) -> None:
        try:
            result = lookup(work.ip)
        except QuotaExceededError as exc:
            self.lookups[(source, "skipped")] += 1
            logger.debug("%s skipped for %s: %s", source, work.ip, exc)
            return
        except EnrichmentError as exc:
            self._failed(source, [work], exc)
            return
        except Exception as exc:
            logger.warning("%s raised unexpectedly for %s", source, work.ip, exc_info=True)
            self._failed(source, [work], exc)
            return
        self.lookups[(source, "hit" if HIT[source](result) else "miss")] += 1
        work.store(source, result, self._now, **extra)

    def _bulk(self, client: CymruSource, wanted: Sequence[IPWork]) -> None:
        try:
            answers = client.bulk_lookup([work.ip for work in wanted])
        except EnrichmentError as exc:
            self._failed("cymru", wanted, exc)
            return
        except Exception as exc:
            logger.warning("cymru bulk lookup raised unexpectedly", exc_info=True)
            self._failed("cymru", wanted, exc)
            return
        for work in wanted:
            result = answers.get(work.ip)
            self.lookups[("cymru", "hit" if HIT["cymru"](result) else "miss")] += 1
            work.store("cymru", result, self._now)

    def _failed(self, source: str, works: Sequence[IPWork], exc: Exception) -> None:
        self.lookups[(source, "error")] += len(works)
        for work in works:
            work.failed = True
            self.causes.setdefault(work.ip, f"{source}: {exc}")
        if len(works) == 1:
            logger.warning("%s lookup failed for %s: %s", source, works[0].ip, exc)
        else:
            logger.warning("%s lookup failed for %d IPs: %s", source, len(works), exc)

"""Calls to the three sources for one batch, with their lookup telemetry.

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

    def maxmind(self, client: MaxMindSource, works: Sequence[IPWork]) -> None:
        build = client.database_build_time()
        extra = {"database_build": build.isoformat()} if build else {}
        for work in works:
            if "maxmind" in work.stale:
                self._one("maxmind", work, client.lookup_ip, extra)

    def cymru(self, client: CymruSource, works: Sequence[IPWork], *, single: bool) -> None:
        """Ask Cymru for the IPs MaxMind left without an ASN: one bulk call for a batch."""
        wanted = [w for w in works if "cymru" in w.stale and w.maxmind_asn is None]
        if single or len(wanted) == 1:
            for work in wanted:
                self._one("cymru", work, client.lookup_asn, {})
        elif wanted:
            self._bulk(client, wanted)

    def greynoise(self, client: GreyNoiseSource, works: Sequence[IPWork]) -> None:
        for work in works:
            if "greynoise" in work.stale:
                self._one("greynoise", work, client.lookup_ip, {})
        self._telemetry.set_quota_remaining(client.get_remaining_quota())

    def _one(
        self, source: str, work: IPWork, lookup: Callable[[str], Any], extra: dict[str, Any]
    ) -> None:
        started = time.perf_counter()
        try:
            result = lookup(work.ip)
        except QuotaExceededError as exc:
            self._done(source, "skipped", started)
            logger.debug("%s skipped for %s: %s", source, work.ip, exc)
            return
        except EnrichmentError as exc:
            self._failed(source, [work], exc, started)
            return
        except Exception as exc:  # noqa: BLE001 - a faulty source must not stop the batch
            logger.warning("%s raised unexpectedly for %s", source, work.ip, exc_info=True)
            self._failed(source, [work], exc, started)
            return
        self._done(source, "hit" if HIT[source](result) else "miss", started)
        work.store(source, result, self._now, **extra)

    def _bulk(self, client: CymruSource, wanted: Sequence[IPWork]) -> None:
        started = time.perf_counter()
        try:
            answers = client.bulk_lookup([work.ip for work in wanted])
        except EnrichmentError as exc:
            self._failed("cymru", wanted, exc, started)
            return
        except Exception as exc:  # noqa: BLE001 - one faulty bulk call must not stop the batch
            logger.warning("cymru bulk lookup raised unexpectedly", exc_info=True)
            self._failed("cymru", wanted, exc, started)
            return
        any_hit = any(HIT["cymru"](result) for result in answers.values())
        self._telemetry.record_lookup_duration(
            "cymru", "hit" if any_hit else "miss", time.perf_counter() - started
        )
        for work in wanted:
            result = answers.get(work.ip)
            self.lookups[("cymru", "hit" if HIT["cymru"](result) else "miss")] += 1
            work.store("cymru", result, self._now)

    def _done(self, source: str, outcome: str, started: float) -> None:
        self.lookups[(source, outcome)] += 1
        self._telemetry.record_lookup_duration(source, outcome, time.perf_counter() - started)

    def _failed(
        self, source: str, works: Sequence[IPWork], exc: Exception, started: float
    ) -> None:
        self._telemetry.record_lookup_duration(source, "error", time.perf_counter() - started)
        self.lookups[(source, "error")] += len(works)
        for work in works:
            work.failed = True
            self.causes.setdefault(work.ip, f"{source}: {exc}")
        if len(works) == 1:
            logger.warning("%s lookup failed for %s: %s", source, works[0].ip, exc)
        else:
            logger.warning("%s lookup failed for %d IPs: %s", source, len(works), exc)

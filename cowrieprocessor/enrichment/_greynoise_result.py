"""GreyNoise results: the frozen :class:`GreyNoiseResult` and its JSON forms.

:func:`parse_result` reads a Community API answer (text fields stripped of control
characters and shortened); :meth:`GreyNoiseResult.to_enrichment` and
:meth:`GreyNoiseResult.from_enrichment` convert to and from the form stored in
``ip_inventory.enrichment``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Self

from cowrieprocessor.enrichment.addresses import parse_ip
from cowrieprocessor.enrichment.errors import InvalidIPError, SourceUnavailableError
from cowrieprocessor.enrichment.text import clean_text as clean_source_text

__all__ = ["SOURCE", "GreyNoiseResult", "clean_text", "parse_result"]

# Records keep the logger name of the public module, as before this code moved here.
logger = logging.getLogger("cowrieprocessor.enrichment.greynoise_client")

SOURCE = "greynoise"

_MAX_TEXT = 512
_TEXT_FIELDS = ("classification", "name", "link", "message")


@dataclass(frozen=True, slots=True)
class GreyNoiseResult:
    """GreyNoise's view of one IP.

    ``noise`` means the IP was seen scanning the internet; ``riot`` that it belongs
    to a known business service. Both false means "not observed" (HTTP 404).
    """

    ip_address: str
    noise: bool
    riot: bool
    classification: str | None
    name: str | None
    link: str | None
    last_seen: date | None
    message: str | None
    fetched_at: datetime

    @property
    def cached_at(self) -> datetime:
        return self.fetched_at

    def to_enrichment(self) -> dict[str, Any]:
        """The JSON-safe form stored under ``ip_inventory.enrichment``."""
        return {
            "ip_address": self.ip_address,
            "noise": self.noise,
            "riot": self.riot,
            "classification": self.classification,
            "name": self.name,
            "link": self.link,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "message": self.message,
            "fetched_at": self.fetched_at.isoformat(),
        }

    @classmethod
    def from_enrichment(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild a result from :meth:`to_enrichment` output.

        Raises:
            ValueError: a field is missing or has the wrong type or format.
        """
        ip_address = data.get("ip_address")
        if not isinstance(ip_address, str):
            raise ValueError("greynoise enrichment: 'ip_address' must be a string")
        texts = {key: _stored_text(data, key) for key in _TEXT_FIELDS}
        last_seen = _stored_text(data, "last_seen")
        return cls(
            ip_address=ip_address,
            noise=_stored_bool(data, "noise"),
            riot=_stored_bool(data, "riot"),
            last_seen=date.fromisoformat(last_seen) if last_seen is not None else None,
            fetched_at=_stored_datetime(data, "fetched_at"),
            **texts,
        )


def parse_result(ip: str, status: int, body: bytes, now: datetime) -> GreyNoiseResult:
    """The result in a 200 or 404 answer ``body`` for ``ip``, fetched at ``now``.

    Raises:
        SourceUnavailableError: the body is not JSON, lacks the boolean ``noise``
            and ``riot`` flags, or is about another address.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _unavailable(f"answer for {ip} is not JSON", status) from exc
    if not (
        isinstance(data, dict)
        and isinstance(data.get("noise"), bool)
        and isinstance(data.get("riot"), bool)
    ):
        raise _unavailable(f"answer for {ip} lacks the 'noise' and 'riot' flags", status)
    answered = data.get("ip")
    if answered is not None and not _same_ip(answered, ip):
        raise _unavailable(f"answer for {ip} is about another address", status)
    return GreyNoiseResult(
        ip_address=ip,
        noise=data["noise"],
        riot=data["riot"],
        classification=clean_text(data.get("classification")),
        name=clean_text(data.get("name")),
        link=clean_text(data.get("link")),
        last_seen=_parse_date(data.get("last_seen")),
        message=clean_text(data.get("message")),
        fetched_at=now,
    )


def _unavailable(message: str, http_status: int) -> SourceUnavailableError:
    return SourceUnavailableError(message, source=SOURCE, http_status=http_status)


def clean_text(value: object) -> str | None:
    """Strings only, cleaned by the project's text rule, at most 512 characters."""
    if not isinstance(value, str):
        return None
    return clean_source_text(value, limit=_MAX_TEXT)


def _parse_date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        logger.debug("greynoise: ignoring unreadable last_seen %r", value[:40])
        return None


def _same_ip(answered: object, ip: str) -> bool:
    if not isinstance(answered, str):
        return False
    try:
        return str(parse_ip(answered, source=SOURCE)) == ip
    except InvalidIPError:
        return False


def _stored_bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"greynoise enrichment: {key!r} must be a boolean")
    return value


def _stored_text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"greynoise enrichment: {key!r} must be a string or null")
    return value


def _stored_datetime(data: Mapping[str, Any], key: str) -> datetime:
    value = _stored_text(data, key)
    parsed = datetime.fromisoformat(value) if value is not None else None
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"greynoise enrichment: {key!r} must be an ISO-8601 time with a zone")
    return parsed

"""Typed ORM models of the inventory: ASNs, IPs, ASN moves and Cowrie sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cowrieprocessor.db.types import JSONDocument, UTCDateTime

__all__ = [
    "ENRICHMENT_VERSION",
    "RIR_REGISTRIES",
    "ASNInventory",
    "Base",
    "IPASNHistory",
    "IPInventory",
    "SessionSummary",
]

#: Version of the layout of ``ip_inventory.enrichment`` written by this code.
ENRICHMENT_VERSION = 1

#: The five Regional Internet Registries, as stored in ``rir_registry``.
RIR_REGISTRIES = ("ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC")

_EMPTY_JSON = text("'{}'")
_ZERO = text("0")


class Base(DeclarativeBase):
    """Declarative base of every inventory table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class ASNInventory(Base):
    """One autonomous system the enrichment has met, with exact counts.

    ``unique_ip_count`` is the number of ``ip_inventory`` rows whose
    ``current_asn`` is this ASN and ``total_session_count`` the sum of their
    ``session_count``; both are maintained by the enrichment's upserts and can be
    recomputed with ``cowrieprocessor asn rebuild-counts``.
    """

    __tablename__ = "asn_inventory"
    __table_args__ = (
        CheckConstraint(
            "rir_registry IN ('ARIN', 'RIPE', 'APNIC', 'LACNIC', 'AFRINIC')",
            name="ck_asn_inventory_rir_registry",
        ),
        CheckConstraint("asn_number >= 0", name="ck_asn_inventory_asn_number"),
        Index("ix_asn_inventory_organization_name", "organization_name"),
        Index("ix_asn_inventory_last_seen", "last_seen"),
        Index("ix_asn_inventory_total_session_count", "total_session_count"),
    )

    asn_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    organization_name: Mapped[str | None] = mapped_column(Text)
    organization_country: Mapped[str | None] = mapped_column(String(2))
    rir_registry: Mapped[str | None] = mapped_column(String(8))
    asn_type: Mapped[str | None] = mapped_column(String(32))
    is_known_hosting: Mapped[bool] = mapped_column(Boolean, server_default=false())
    is_known_vpn: Mapped[bool] = mapped_column(Boolean, server_default=false())
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    unique_ip_count: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    total_session_count: Mapped[int] = mapped_column(BigInteger, server_default=_ZERO)
    enrichment: Mapped[dict[str, Any]] = mapped_column(server_default=_EMPTY_JSON)
    enrichment_updated_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def __repr__(self) -> str:
        return (
            f"ASNInventory(asn_number={self.asn_number!r}, organization={self.organization_name!r})"
        )


class IPInventory(Base):
    """One source IP with its per-source enrichment.

    ``enrichment`` holds one sub-object per source (``maxmind``, ``cymru``,
    ``greynoise``), each with its own ``fetched_at``, so each source ages on its
    own clock.
    """

    __tablename__ = "ip_inventory"

    ip_address: Mapped[str] = mapped_column(String(45), primary_key=True)
    current_asn: Mapped[int | None] = mapped_column(
        BigInteger,
        ForeignKey(
            "asn_inventory.asn_number",
            name="fk_ip_inventory_current_asn",
            deferrable=True,
            initially="DEFERRED",
        ),
        index=True,
    )
    asn_last_verified: Mapped[datetime | None]
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    session_count: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    enrichment: Mapped[dict[str, Any]] = mapped_column(server_default=_EMPTY_JSON)
    enrichment_updated_at: Mapped[datetime | None]
    enrichment_version: Mapped[int] = mapped_column(
        Integer, server_default=text(str(ENRICHMENT_VERSION))
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    def _source(self, name: str) -> dict[str, Any]:
        data = (self.enrichment or {}).get(name)
        return data if isinstance(data, dict) else {}

    def _first(self, field: str, *sources: str) -> Any:
        for name in sources:
            value = self._source(name).get(field)
            if value not in (None, ""):
                return value
        return None

    @property
    def geo_country(self) -> str:
        """ISO country code, MaxMind first, then Cymru; ``'XX'`` when unknown."""
        value = self._first("country_code", "maxmind", "cymru")
        return str(value) if value else "XX"

    @property
    def city(self) -> str | None:
        """City name from MaxMind, if any."""
        value = self._first("city", "maxmind")
        return str(value) if value else None

    @property
    def asn_org(self) -> str | None:
        """Organization of the ASN, MaxMind first, then Cymru."""
        value = self._first("asn_org", "maxmind", "cymru")
        return str(value) if value else None

    @property
    def is_scanner(self) -> bool:
        """True when GreyNoise saw this IP scanning the internet (``noise``)."""
        return bool(self._source("greynoise").get("noise"))

    def __repr__(self) -> str:
        return f"IPInventory(ip_address={self.ip_address!r}, current_asn={self.current_asn!r})"


class IPASNHistory(Base):
    """A move of an IP from one ASN to another, recorded when it is observed."""

    __tablename__ = "ip_asn_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ip_address: Mapped[str] = mapped_column(
        String(45),
        ForeignKey("ip_inventory.ip_address", name="fk_ip_asn_history_ip", ondelete="CASCADE"),
        index=True,
    )
    previous_asn: Mapped[int | None] = mapped_column(BigInteger)
    new_asn: Mapped[int | None] = mapped_column(BigInteger)
    observed_at: Mapped[datetime]


class SessionSummary(Base):
    """One Cowrie session, summarized from its events."""

    __tablename__ = "session_summaries"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    src_ip: Mapped[str] = mapped_column(String(45), index=True)
    sensor: Mapped[str | None] = mapped_column(String(128))
    first_event_at: Mapped[datetime]
    last_event_at: Mapped[datetime]
    event_count: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    login_attempts: Mapped[int] = mapped_column(Integer, server_default=_ZERO)
    commands: Mapped[int] = mapped_column(Integer, server_default=_ZERO)

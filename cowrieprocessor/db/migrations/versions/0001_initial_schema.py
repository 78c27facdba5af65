"""Initial inventory schema: ASNs, IPs, ASN moves and Cowrie sessions.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 00:00:00+00:00

Types are spelled out here rather than imported from the models, so this
revision keeps creating the same schema whatever the models become later.
Timestamps are ``timestamptz`` on PostgreSQL (``DATETIME`` on SQLite, where the
model's type keeps them in UTC); documents are ``JSONB`` on PostgreSQL and
``JSON`` on SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

__all__ = ["downgrade", "upgrade"]

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | tuple[str, ...] | None = None
depends_on: str | tuple[str, ...] | None = None

_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_EMPTY_DOCUMENT = sa.text("'{}'")
_ZERO = sa.text("0")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _counter(name: str, type_: type[sa.Integer] = sa.Integer) -> sa.Column[object]:
    return sa.Column(name, type_(), nullable=False, server_default=_ZERO)


def _flag(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())


def _create_asn_inventory() -> None:
    op.create_table(
        "asn_inventory",
        sa.Column("asn_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("organization_name", sa.Text(), nullable=True),
        sa.Column("organization_country", sa.String(2), nullable=True),
        sa.Column("rir_registry", sa.String(8), nullable=True),
        sa.Column("asn_type", sa.String(32), nullable=True),
        _flag("is_known_hosting"),
        _flag("is_known_vpn"),
        _timestamp("first_seen"),
        _timestamp("last_seen"),
        _counter("unique_ip_count"),
        _counter("total_session_count", sa.BigInteger),
        sa.Column("enrichment", _DOCUMENT, nullable=False, server_default=_EMPTY_DOCUMENT),
        _timestamp("enrichment_updated_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("asn_number"),
        sa.CheckConstraint(
            "rir_registry IN ('ARIN', 'RIPE', 'APNIC', 'LACNIC', 'AFRINIC')",
            name="ck_asn_inventory_rir_registry",
        ),
        sa.CheckConstraint("asn_number >= 0", name="ck_asn_inventory_asn_number"),
    )
    op.create_index("ix_asn_inventory_organization_name", "asn_inventory", ["organization_name"])
    op.create_index("ix_asn_inventory_last_seen", "asn_inventory", ["last_seen"])
    op.create_index(
        "ix_asn_inventory_total_session_count", "asn_inventory", ["total_session_count"]
    )


def _create_ip_inventory() -> None:
    op.create_table(
        "ip_inventory",
        sa.Column("ip_address", sa.String(45), nullable=False),
        sa.Column("current_asn", sa.BigInteger(), nullable=True),
        _timestamp("asn_last_verified", nullable=True),
        _timestamp("first_seen"),
        _timestamp("last_seen"),
        _counter("session_count"),
        sa.Column("enrichment", _DOCUMENT, nullable=False, server_default=_EMPTY_DOCUMENT),
        _timestamp("enrichment_updated_at", nullable=True),
        sa.Column("enrichment_version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("ip_address"),
        sa.ForeignKeyConstraint(
            ["current_asn"],
            ["asn_inventory.asn_number"],
            name="fk_ip_inventory_current_asn",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index("ix_ip_inventory_current_asn", "ip_inventory", ["current_asn"])


def _create_ip_asn_history() -> None:
    op.create_table(
        "ip_asn_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ip_address", sa.String(45), nullable=False),
        sa.Column("previous_asn", sa.BigInteger(), nullable=True),
        sa.Column("new_asn", sa.BigInteger(), nullable=True),
        _timestamp("observed_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.ForeignKeyConstraint(
            ["ip_address"],
            ["ip_inventory.ip_address"],
            name="fk_ip_asn_history_ip",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_ip_asn_history_ip_address", "ip_asn_history", ["ip_address"])


def _create_session_summaries() -> None:
    op.create_table(
        "session_summaries",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("src_ip", sa.String(45), nullable=False),
        sa.Column("sensor", sa.String(128), nullable=True),
        _timestamp("first_event_at"),
        _timestamp("last_event_at"),
        _counter("event_count"),
        _counter("login_attempts"),
        _counter("commands"),
        sa.PrimaryKeyConstraint("session_id"),
    )
    op.create_index("ix_session_summaries_src_ip", "session_summaries", ["src_ip"])


def upgrade() -> None:
    _create_asn_inventory()
    _create_ip_inventory()
    _create_ip_asn_history()
    _create_session_summaries()


def downgrade() -> None:
    op.drop_index("ix_session_summaries_src_ip", table_name="session_summaries")
    op.drop_table("session_summaries")
    op.drop_index("ix_ip_asn_history_ip_address", table_name="ip_asn_history")
    op.drop_table("ip_asn_history")
    op.drop_index("ix_ip_inventory_current_asn", table_name="ip_inventory")
    op.drop_table("ip_inventory")
    op.drop_index("ix_asn_inventory_total_session_count", table_name="asn_inventory")
    op.drop_index("ix_asn_inventory_last_seen", table_name="asn_inventory")
    op.drop_index("ix_asn_inventory_organization_name", table_name="asn_inventory")
    op.drop_table("asn_inventory")

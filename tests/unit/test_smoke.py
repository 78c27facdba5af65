from __future__ import annotations

from datetime import UTC, datetime

from cowrieprocessor.db import ASNInventory, Database


def test_asn_round_trip(database: Database) -> None:
    now = datetime.now(UTC)
    with database.sessions() as session:
        session.add(
            ASNInventory(
                asn_number=64500, first_seen=now, last_seen=now, created_at=now, updated_at=now
            )
        )
        session.commit()
    with database.sessions() as session:
        row = session.get(ASNInventory, 64500)
        assert row is not None
        assert row.last_seen == now
        assert row.enrichment == {}

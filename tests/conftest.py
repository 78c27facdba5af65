"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cowrieprocessor.db import Base, Database, open_database
from tests.support.databases import postgres_schema
from tests.support.paths import require_shared_data


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test (fails in CI) when it is absent."""
    return require_shared_data()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a private, empty schema on the test PostgreSQL server."""
    with postgres_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL: a SQLite file, then a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inventory.sqlite'}"
    else:
        with postgres_schema() as url:
            yield url


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    """An opened database on each backend, with the inventory tables created."""
    db = open_database(db_url)
    Base.metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()

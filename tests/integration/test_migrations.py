"""Alembic revisions against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.engine import make_url

from cowrieprocessor.db import ASNInventory, Base, Database, open_database
from cowrieprocessor.db.migrate import (
    MIGRATIONS_DIR,
    MigrationError,
    current_revision,
    downgrade_database,
    head_revision,
    migration_options,
    pending_migrations,
    schema_differences,
    upgrade_database,
)
from tests.support.databases import postgres_schema

INVENTORY_TABLES = {"asn_inventory", "ip_inventory", "ip_asn_history", "session_summaries"}
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def empty(db_url: str) -> Iterator[Database]:
    """An opened database on each backend, without any table."""
    db = open_database(db_url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def twin_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'twin.sqlite'}"
    else:
        with postgres_schema() as url:
            yield url


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _autogenerate_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts=migration_options(conn.dialect.name))
        return list(compare_metadata(context, Base.metadata))


def _describe_schema(engine: Engine) -> dict[str, dict[str, Any]]:
    """Everything the inspector reflects about the inventory tables, as plain data."""
    inspector = inspect(engine)
    dialect = engine.dialect
    schema: dict[str, dict[str, Any]] = {}
    for table in sorted(INVENTORY_TABLES):
        columns = [
            (c["name"], c["type"].compile(dialect=dialect), c["nullable"], c.get("default"))
            for c in inspector.get_columns(table)
        ]
        schema[table] = {
            "columns": columns,
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "foreign_keys": sorted(
                (fk["name"], fk["constrained_columns"], fk["referred_table"], fk["options"])
                for fk in inspector.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (ix["name"], ix["column_names"], ix["unique"])
                for ix in inspector.get_indexes(table)
            ),
            "checks": sorted(
                (ck["name"], " ".join(ck["sqltext"].split()))
                for ck in inspector.get_check_constraints(table)
            ),
        }
    return schema


def test_upgrade_creates_exactly_the_model_schema(empty: Database) -> None:
    assert current_revision(empty) is None
    assert pending_migrations(empty)

    assert upgrade_database(empty) == head_revision()

    assert _tables(empty.engine) == INVENTORY_TABLES | {"alembic_version"}
    assert current_revision(empty) == head_revision()
    assert not pending_migrations(empty)
    assert _autogenerate_diff(empty.engine) == []
    assert schema_differences(empty) == []


def test_migrated_schema_reflects_like_create_all(db_url: str, twin_url: str) -> None:
    """Constraints Alembic does not compare (checks, deferrable FKs) match too."""
    migrated, created = open_database(db_url), open_database(twin_url)
    try:
        upgrade_database(migrated)
        Base.metadata.create_all(created.engine)
        assert _describe_schema(migrated.engine) == _describe_schema(created.engine)
    finally:
        migrated.dispose()
        created.dispose()


def test_downgrade_to_base_then_upgrade_again(empty: Database) -> None:
    upgrade_database(empty)

    assert downgrade_database(empty) is None

    assert _tables(empty.engine) <= {"alembic_version"}
    assert current_revision(empty) is None
    assert pending_migrations(empty)
    assert upgrade_database(empty) == head_revision()
    assert _autogenerate_diff(empty.engine) == []


def test_second_upgrade_is_a_no_op(empty: Database, caplog: pytest.LogCaptureFixture) -> None:
    upgrade_database(empty)
    with empty.sessions.begin() as session:
        session.add(
            ASNInventory(
                asn_number=3352,
                organization_name="Telefónica de España",
                first_seen=NOW,
                last_seen=NOW,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    caplog.set_level(logging.INFO, logger="alembic")

    assert upgrade_database(empty) == head_revision()

    assert not [r for r in caplog.records if "Running upgrade" in r.getMessage()]
    with empty.sessions() as session:
        assert session.scalars(select(ASNInventory.organization_name)).all() == [
            "Telefónica de España"
        ]


def test_upgrade_from_url_string(db_url: str) -> None:
    assert upgrade_database(db_url) == head_revision()

    assert current_revision(db_url) == head_revision()
    assert schema_differences(db_url) == []


def test_connection_without_transaction_is_committed(empty: Database) -> None:
    with empty.engine.connect() as conn:
        upgrade_database(conn)
    assert _tables(empty.engine) >= INVENTORY_TABLES


def test_connection_in_caller_transaction_follows_it(empty: Database) -> None:
    with empty.engine.connect() as conn:
        transaction = conn.begin()
        upgrade_database(conn)
        assert current_revision(conn) == head_revision()
        transaction.rollback()
    assert current_revision(empty) is None


def test_sqlite_memory_through_the_engine() -> None:
    db = open_database("sqlite:///:memory:")
    try:
        assert upgrade_database(db.engine) == head_revision()
        assert _tables(db.engine) == INVENTORY_TABLES | {"alembic_version"}
        assert _autogenerate_diff(db.engine) == []
        assert downgrade_database(db.engine) is None
        assert _tables(db.engine) <= {"alembic_version"}
    finally:
        db.dispose()


def test_unknown_revision_is_refused_and_changes_nothing(empty: Database) -> None:
    with pytest.raises(MigrationError, match="nosuchrev"):
        upgrade_database(empty, "nosuchrev")
    assert not _tables(empty.engine) & INVENTORY_TABLES


def test_database_newer_than_the_code_is_refused(empty: Database) -> None:
    upgrade_database(empty)
    with empty.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe'"))

    with pytest.raises(MigrationError, match="f00dcafe"):
        upgrade_database(empty)


def test_dropped_index_is_reported(empty: Database) -> None:
    upgrade_database(empty)
    with empty.engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_asn_inventory_last_seen"))

    diff = schema_differences(empty)

    assert [(d[0], d[1].name) for d in diff] == [("add_index", "ix_asn_inventory_last_seen")]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("alteration", "column"),
    [
        pytest.param("ALTER COLUMN enrichment TYPE json", "enrichment", id="jsonb-to-json"),
        pytest.param("ALTER COLUMN first_seen TYPE timestamp", "first_seen", id="naive-timestamp"),
        pytest.param("ALTER COLUMN session_count SET DEFAULT 5", "session_count", id="default"),
    ],
)
def test_column_drift_is_reported_on_postgresql(pg_url: str, alteration: str, column: str) -> None:
    upgrade_database(pg_url)
    db = open_database(pg_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE ip_inventory {alteration}"))
        diff = schema_differences(db)
    finally:
        db.dispose()

    assert [(change[2], change[3]) for [change] in diff] == [("ip_inventory", column)]


@pytest.mark.postgres
def test_version_table_lives_in_the_search_path_schema(pg_url: str) -> None:
    upgrade_database(pg_url)
    db = open_database(pg_url)
    try:
        with db.engine.connect() as conn:
            where = conn.execute(
                text(
                    "SELECT table_schema FROM information_schema.tables"
                    " WHERE table_name = 'alembic_version'"
                    " AND table_schema IN (current_schema(), 'public')"
                )
            ).scalars()
            current = conn.execute(text("SELECT current_schema()")).scalar_one()
    finally:
        db.dispose()
    assert list(where) == [current]
    assert current.startswith("t_")


def _upgrade_when_all_ready(url: str, barrier: Any, results: Any) -> None:
    """Body of one worker process of the concurrency test."""
    barrier.wait()
    try:
        results.put(upgrade_database(url))
    except Exception as exc:  # noqa: BLE001 - sent back to the test as text
        results.put(f"{type(exc).__name__}: {exc}")


def test_concurrent_upgrades_apply_the_revisions_once(db_url: str) -> None:
    """Worker processes that all start on a fresh database must not collide."""
    workers = 4
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(workers), spawn.Queue()
    processes = [
        spawn.Process(target=_upgrade_when_all_ready, args=(db_url, barrier, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

    assert outcomes == [head_revision()] * workers


@pytest.mark.postgres
def test_password_never_reaches_the_logs(pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    secret = "Sup3rS3cret"
    url = make_url(pg_url).set(password=secret).render_as_string(hide_password=False)
    caplog.set_level(logging.DEBUG)

    upgrade_database(url)
    downgrade_database(url)

    assert caplog.records
    assert not [r for r in caplog.records if secret in r.getMessage()]


def test_one_revision_per_file_in_a_single_line() -> None:
    versions = MIGRATIONS_DIR / "versions"
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    revisions = list(script.walk_revisions())
    files_ = sorted(p.name for p in versions.glob("*.py") if p.name != "__init__.py")

    assert len(revisions) == len(files_)
    assert script.get_heads() == [head_revision()]
    for revision in revisions:
        assert revision.path is not None
        assert Path(revision.path).name.startswith(f"{revision.revision}_")
        assert re.fullmatch(r"\d{4}", revision.revision)


def test_migrations_ship_inside_the_package() -> None:
    package = files("cowrieprocessor.db.migrations")
    assert package.joinpath("env.py").is_file()
    assert package.joinpath("script.py.mako").is_file()
    assert files("cowrieprocessor.db.migrations.versions").joinpath("__init__.py").is_file()
    assert Path(str(package)) == MIGRATIONS_DIR
    # Importing env.py as a package module (as package walkers do) must not run it.
    assert importlib.import_module("cowrieprocessor.db.migrations.env").__all__ == []

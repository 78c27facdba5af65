"""From a URL to an engine: SQLite pragmas, URL errors, and passwords kept out of sight."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from cowrieprocessor.db import ASNInventory, Base, Database, open_database
from cowrieprocessor.db.engine import SQLITE_BUSY_TIMEOUT_MS, DatabaseConfigError, redact_url
from tests.support.databases import PG_ADMIN_URL

SECRET = "Sup3rS3cret"
NOW = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["file", "memory"])
def sqlite_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A SQLite database with the inventory tables: a file, then ``:memory:``."""
    where = tmp_path / "engine.sqlite" if request.param == "file" else ":memory:"
    db = open_database(f"sqlite:///{where}")
    Base.metadata.create_all(db.engine)
    try:
        yield db
    finally:
        db.dispose()


def _texts(exc: BaseException) -> list[str]:
    """Every text an exception chain can show: str, repr, args and the traceback."""
    texts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        pending += [current.__cause__, current.__context__, getattr(current, "orig", None)]
    return texts


def _asn(number: int) -> ASNInventory:
    return ASNInventory(
        asn_number=number, first_seen=NOW, last_seen=NOW, created_at=NOW, updated_at=NOW
    )


def test_sqlite_file_pragmas(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'pragmas.sqlite'}")
    try:
        with db.engine.connect() as first, db.engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == (
                    SQLITE_BUSY_TIMEOUT_MS
                )
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        db.dispose()
    assert SQLITE_BUSY_TIMEOUT_MS >= 1000


def test_sqlite_memory_is_one_shared_database() -> None:
    db = open_database("sqlite:///:memory:")
    try:
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT x FROM t")).scalar() == 1
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            f"postgresql://scanner:{SECRET}@db.example:5432/inventory",
            "postgresql+psycopg://scanner:***@db.example:5432/inventory",
            id="postgresql",
        ),
        pytest.param(
            f"postgres://scanner:{SECRET}@db.example/inventory",
            "postgresql+psycopg://scanner:***@db.example/inventory",
            id="postgres-alias",
        ),
        pytest.param(
            f"postgresql+psycopg://scanner:{SECRET}%40%2F@db.example/inventory?sslmode=require",
            "postgresql+psycopg://scanner:***@db.example/inventory?sslmode=require",
            id="escaped-characters",
        ),
    ],
)
def test_display_url_hides_the_password(url: str, shown: str) -> None:
    db = open_database(url)
    try:
        assert db.display_url == shown
        assert db.dialect == "postgresql"
        for seen in (repr(db), str(db.engine.url), repr(db.engine), redact_url(url)):
            assert SECRET not in seen
    finally:
        db.dispose()


def test_refused_connection_keeps_the_password_secret(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    db = open_database(f"postgresql://user:{SECRET}@127.0.0.1:1/x", echo=True)
    try:
        with pytest.raises(OperationalError) as caught, db.engine.connect():
            pass
    finally:
        db.dispose()

    assert "refused" in str(caught.value).lower()
    for shown in _texts(caught.value):
        assert SECRET not in shown
    assert caplog.records
    for record in caplog.records:
        assert SECRET not in record.getMessage()
    assert SECRET not in capsys.readouterr().out


@pytest.mark.postgres
def test_rejected_login_keeps_the_password_secret(caplog: pytest.LogCaptureFixture) -> None:
    """The real server answers: no such database (trust auth accepts any password)."""
    caplog.set_level(logging.DEBUG)
    url = make_url(PG_ADMIN_URL).set(password=SECRET, database="cowrieprocessor_missing_db")
    db = open_database(url.render_as_string(hide_password=False), echo=True)
    try:
        with pytest.raises(OperationalError) as caught, db.engine.connect():
            pass
    finally:
        db.dispose()

    assert "cowrieprocessor_missing_db" in str(caught.value)
    for shown in _texts(caught.value):
        assert SECRET not in shown
    for record in caplog.records:
        assert SECRET not in record.getMessage()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"not a url with {SECRET}", id="no-scheme"),
        pytest.param(f"://user:{SECRET}@host/db", id="empty-scheme"),
        pytest.param(f"postgresql://user:{SECRET}@host:notaport/db", id="bad-port"),
        pytest.param(f"postgresql://user:{SECRET}/db", id="missing-host"),
    ],
)
def test_malformed_url(url: str) -> None:
    with pytest.raises(DatabaseConfigError) as caught:
        open_database(url)
    for shown in _texts(caught.value):
        assert SECRET not in shown
    assert redact_url(url) == "<unparseable database URL>"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"mysql://user:{SECRET}@db.example/inventory", id="mysql"),
        pytest.param(f"oracle://user:{SECRET}@db.example/inventory", id="oracle"),
        pytest.param(f"nosuchdb://user:{SECRET}@db.example/inventory", id="unknown-backend"),
        pytest.param(f"postgresql+nosuchdriver://user:{SECRET}@db/x", id="unknown-driver"),
        pytest.param("sqlite+nosuchdriver:///inventory.sqlite", id="unknown-sqlite-driver"),
    ],
)
def test_unsupported_backend(url: str) -> None:
    with pytest.raises(DatabaseConfigError) as caught:
        open_database(url)
    assert str(caught.value)
    for shown in _texts(caught.value):
        assert SECRET not in shown


def test_savepoint_rollback_keeps_the_outer_work(sqlite_db: Database) -> None:
    with sqlite_db.sessions() as session, session.begin():
        session.add(_asn(1))
        session.flush()
        nested = session.begin_nested()
        session.add(_asn(2))
        session.flush()
        nested.rollback()
        session.add(_asn(3))

    with sqlite_db.sessions() as session:
        numbers = session.scalars(select(ASNInventory.asn_number).order_by(ASNInventory.asn_number))
        assert list(numbers) == [1, 3]


def test_savepoint_releases_on_success(sqlite_db: Database) -> None:
    with sqlite_db.sessions() as session, session.begin():
        with session.begin_nested():
            session.add(_asn(7))
        session.add(_asn(8))

    with sqlite_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ASNInventory)) == 2


def test_outer_rollback_undoes_a_released_savepoint(sqlite_db: Database) -> None:
    with sqlite_db.sessions() as session:
        session.begin()
        with session.begin_nested():
            session.add(_asn(9))
        session.rollback()

    with sqlite_db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ASNInventory)) == 0

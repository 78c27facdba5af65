"""From a database URL to an engine and a session factory.

SQLite files get WAL, a busy timeout and foreign keys; PostgreSQL goes through
psycopg 3 with a connection pool. A password in the URL never reaches a log line
or an exception message: everything this module says about a URL goes through
:func:`redact_url`.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

__all__ = [
    "DEFAULT_DATABASE_URL",
    "WRITE_LOCK_FIRST",
    "Database",
    "DatabaseConfigError",
    "open_database",
    "redact_url",
]

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///cowrieprocessor.sqlite"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option of a connection: on SQLite its transactions start with ``BEGIN
#: IMMEDIATE``, holding the write lock from the first statement (other writers wait
#: up to the busy timeout instead of failing on a snapshot they read before).
WRITE_LOCK_FIRST = "cowrieprocessor_write_lock_first"


class DatabaseConfigError(ValueError):
    """The database URL cannot be used; the message never contains its password."""


@dataclass(frozen=True)
class Database:
    """An engine, its session factory and the URL in a form safe to show."""

    engine: Engine
    sessions: sessionmaker[Session]
    display_url: str

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def dispose(self) -> None:
        self.engine.dispose()


def redact_url(url: str | URL) -> str:
    """Return ``url`` with its password replaced by ``***``.

    >>> redact_url("postgresql://scanner:s3cret@db.example/inventory")
    'postgresql://scanner:***@db.example/inventory'
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # a bad port is a plain ValueError
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def open_database(url: str, *, echo: bool = False, pool_size: int = 5) -> Database:
    """Create the engine and session factory for ``url``.

    ``postgresql://`` URLs are routed to psycopg 3. ``sqlite:///:memory:`` keeps
    one shared in-memory database for the engine's lifetime.

    Raises:
        DatabaseConfigError: the URL is malformed or names an unsupported backend.
    """
    parsed = _parse_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            engine = _sqlite_engine(parsed, echo=echo)
        elif backend == "postgresql":
            engine = create_engine(
                parsed,
                echo=echo,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                hide_parameters=False,
            )
        else:
            raise DatabaseConfigError(f"unsupported database backend {backend!r}")
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseConfigError(
            f"cannot use database {redact_url(parsed)}: {type(exc).__name__}"
        ) from None
    display = redact_url(parsed)
    logger.debug("opened database %s", display)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions, display_url=display)


def _parse_url(url: str) -> URL:
    # make_url raises ValueError (not ArgumentError) for a bad port, and its text
    # may quote the password ("postgresql://user:secret/db"): keep neither the
    # message nor the exception as context of ours.
    try:
        parsed: URL | None = make_url(url)
    except (ArgumentError, ValueError):
        parsed = None
    if parsed is None:
        raise DatabaseConfigError("malformed database URL (password hidden)")
    return parsed


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {"echo": echo}
    if in_memory:
        kwargs["poolclass"] = StaticPool
        kwargs["connect_args"] = {"check_same_thread": False}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs and snapshots behave
        # (pysqlite's own transaction handling defers BEGIN until the first DML).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if not in_memory:
                _enable_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "reset")
    def _on_reset(dbapi_connection: sqlite3.Connection, _record: Any, _state: Any) -> None:
        # SQLite keeps the transaction open when COMMIT fails (a deferred foreign
        # key), while SQLAlchemy believes it ended: close it before the pool
        # hands the connection out again.
        if dbapi_connection.in_transaction:
            dbapi_connection.rollback()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE_LOCK_FIRST, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL, retrying while other connections switch it too.

    Connections opening a new file together each need its exclusive lock for the
    switch; SQLite refuses one of them at once (without the busy handler) rather
    than let them wait on each other, so the refused one tries again.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)

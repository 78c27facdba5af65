"""Bring a database to the schema of this version of cowrieprocessor with Alembic.

The revisions ship inside the package (``cowrieprocessor/db/migrations``); the
Alembic configuration is built here, so no ``alembic.ini`` is needed. Every
function takes a database URL, a :class:`~cowrieprocessor.db.engine.Database`,
an :class:`~sqlalchemy.engine.Engine` or a :class:`~sqlalchemy.engine.Connection`;
``sqlite:///:memory:`` needs one of the last three, since its data lives only as
long as its engine. A connection already inside a transaction is left for its
owner to commit; in every other case the work is committed before returning.
Upgrades hold a lock (an advisory lock on PostgreSQL, the write lock from the first
statement on SQLite), so workers that start together apply each revision once.

>>> from cowrieprocessor.db import open_database
>>> db = open_database("sqlite:///:memory:")
>>> upgrade_database(db) == head_revision()
True
>>> pending_migrations(db)
False
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cowrieprocessor.db.engine import WRITE_LOCK_FIRST, Database, open_database
from cowrieprocessor.db.models import Base

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationError",
    "MigrationTarget",
    "current_revision",
    "downgrade_database",
    "head_revision",
    "migration_options",
    "pending_migrations",
    "schema_differences",
    "upgrade_database",
]

logger = logging.getLogger(__name__)

#: Folder of the Alembic environment and of ``versions/``, inside the package.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: What the functions of this module accept to reach a database.
MigrationTarget: TypeAlias = str | Database | Engine | Connection

# Serializes concurrent upgrades on PostgreSQL: many workers may start at once.
_PG_LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtext('cowrieprocessor.migrate'))")
# Alembic's ``context`` and ``op`` are process-wide proxies: one command at a time.
_ALEMBIC_LOCK = threading.Lock()


class MigrationError(RuntimeError):
    """A migration cannot run: unknown revision, or a database newer than this code."""


def upgrade_database(target: MigrationTarget, revision: str = "head") -> str:
    """Apply the revisions up to ``revision`` and return the revision now current.

    Running it on an up-to-date database changes nothing.

    Raises:
        MigrationError: ``revision`` is unknown, or the database carries a revision
            this version of cowrieprocessor does not know.
        DatabaseConfigError: ``target`` is a URL that cannot be used.
    """
    with _connection(target) as connection:
        _run(command.upgrade, connection, revision)
        current = _current(connection)
    if current is None:
        raise MigrationError(f"upgrade to {revision!r} left the database without a revision")
    logger.info("database schema at revision %s", current)
    return current


def downgrade_database(target: MigrationTarget, revision: str = "base") -> str | None:
    """Undo the revisions above ``revision``; return the revision now current.

    ``"base"`` removes every inventory table (their data with them) and returns ``None``.

    Raises:
        MigrationError: ``revision`` is unknown, or the database carries a revision
            this version of cowrieprocessor does not know.
        DatabaseConfigError: ``target`` is a URL that cannot be used.
    """
    with _connection(target) as connection:
        _run(command.downgrade, connection, revision)
        current = _current(connection)
    logger.info("database schema at revision %s", current or "base")
    return current


def current_revision(target: MigrationTarget) -> str | None:
    """The revision the database is at, ``None`` when it was never migrated.

    Raises:
        DatabaseConfigError: ``target`` is a URL that cannot be used.
    """
    with _connection(target) as connection:
        return _current(connection)


def head_revision() -> str:
    """The newest revision shipped with this version of cowrieprocessor.

    Raises:
        MigrationError: the shipped revisions are missing or have several heads.
    """
    try:
        head = ScriptDirectory.from_config(_config()).get_current_head()
    except CommandError as exc:
        raise MigrationError(str(exc)) from exc
    if head is None:
        raise MigrationError(f"no revision found in {MIGRATIONS_DIR}")
    return head


def pending_migrations(target: MigrationTarget) -> bool:
    """True when the database is not yet at :func:`head_revision`.

    Raises:
        DatabaseConfigError: ``target`` is a URL that cannot be used.
    """
    return current_revision(target) != head_revision()


def schema_differences(target: MigrationTarget) -> list[Any]:
    """What Alembic's autogenerate sees between the database and the models.

    An empty list means the database has the tables, columns (types,
    nullability, server defaults), indexes and foreign keys of
    :mod:`cowrieprocessor.db.models`. Alembic does not compare CHECK constraints
    nor whether a foreign key is deferrable.

    Raises:
        DatabaseConfigError: ``target`` is a URL that cannot be used.
    """
    with _connection(target) as connection:
        context = MigrationContext.configure(
            connection, opts=migration_options(connection.dialect.name)
        )
        return list(compare_metadata(context, Base.metadata))


def migration_options(dialect_name: str) -> dict[str, Any]:
    """Options of Alembic's migration context, shared by ``env.py`` and the checks.

    Alembic compares a ``TypeDecorator`` (``UTCDateTime``) through the type it
    stores and a variant (``JSON`` / ``JSONB``) through the dialect's choice, so
    its own type and server-default comparisons need no hook here.
    """
    return {
        "compare_type": True,
        "compare_server_default": True,
        "render_as_batch": dialect_name == "sqlite",
    }


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run(step: Callable[[Config, str], None], connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(_PG_LOCK_SQL)
    try:
        with _ALEMBIC_LOCK:
            step(_config(connection), revision)
    except CommandError as exc:
        raise MigrationError(str(exc)) from exc


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _connection(target: MigrationTarget) -> Iterator[Connection]:
    """A connection inside a transaction that commits when the block succeeds."""
    if isinstance(target, Connection):
        if target.in_transaction():
            yield target
        else:
            with target.begin():
                yield target
        return
    if isinstance(target, Engine | Database):
        with _writing(target if isinstance(target, Engine) else target.engine) as connection:
            yield connection
        return
    database = open_database(target)
    try:
        with _writing(database.engine) as connection:
            yield connection
    finally:
        database.dispose()


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds SQLite's write lock before it reads the revision.

    Upgrades that start together then run one after the other, as the advisory
    lock makes them on PostgreSQL (where the option does nothing).
    """
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_LOCK_FIRST: True})
        with connection.begin():
            yield connection

"""Alembic environment: run the revisions on the connection handed over by the caller.

:mod:`cowrieprocessor.db.migrate` opens the database and passes its connection in
``config.attributes["connection"]``, so this file never sees a URL and never
logs one. Offline (``--sql``) mode is not supported.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from cowrieprocessor.db.migrate import migration_options
from cowrieprocessor.db.models import Base

__all__: list[str] = []


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        **migration_options(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported; use a database URL")
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "run migrations through cowrieprocessor.db.migrate (no connection was provided)"
        )
    _run_migrations(connection)


# Alembic runs this file as a script (module ``env_py``); importing it as a
# module of the package, e.g. to list the package's contents, does nothing.
if not __name__.startswith("cowrieprocessor."):
    _main()

"""Real databases for tests: SQLite files and a private schema on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get(
    "COWRIEPROCESSOR_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_required() -> bool:
    return os.environ.get("COWRIEPROCESSOR_REQUIRE_POSTGRES") == "1"


def _unavailable(reason: str) -> None:
    message = f"PostgreSQL at {PG_ADMIN_URL} unavailable: {reason}"
    if postgres_required():
        pytest.fail(message + "; COWRIEPROCESSOR_REQUIRE_POSTGRES=1 makes it mandatory")
    pytest.skip(message)


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Create a throw-away schema and yield a URL whose search_path is that schema."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        _unavailable(type(exc.orig).__name__ if exc.orig else str(exc))
    separator = "&" if "?" in PG_ADMIN_URL else "?"
    url = f"{PG_ADMIN_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

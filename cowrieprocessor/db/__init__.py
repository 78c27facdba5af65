"""Database layer: models, engines, upserts and migrations."""

from cowrieprocessor.db.engine import (
    DEFAULT_DATABASE_URL,
    Database,
    DatabaseConfigError,
    open_database,
    redact_url,
)
from cowrieprocessor.db.models import (
    ASNInventory,
    Base,
    IPASNHistory,
    IPInventory,
    SessionSummary,
)

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ASNInventory",
    "Base",
    "Database",
    "DatabaseConfigError",
    "IPASNHistory",
    "IPInventory",
    "SessionSummary",
    "open_database",
    "redact_url",
]

"""Alembic revisions of the inventory schema, one per file, oldest first."""

__all__: list[str] = []

"""Alembic environment and revisions of the inventory schema.

Run them through :mod:`cowrieprocessor.db.migrate`; no ``alembic.ini`` is needed.
"""

__all__: list[str] = []

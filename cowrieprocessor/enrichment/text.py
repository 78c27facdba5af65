"""Sanitizing of text that comes from the sources before it is stored.

PostgreSQL refuses U+0000 in ``text`` and ``jsonb``, and control characters in
an organization name only break terminals and dashboards. The rule, applied to
every string the cascade stores (organization names, GreyNoise names, any
string inside ``enrichment``): U+0000, the other C0/C1 control characters and
lone UTF-16 surrogates (which no encoder accepts) are removed, tab and newline
become a space, surrounding whitespace is stripped, and the result is cut to
``MAX_TEXT`` characters. Non-ASCII text is kept as it is.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_TEXT", "clean_entry", "clean_json", "clean_text"]

MAX_TEXT = 1024

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACE = re.compile(r"[\t\n]")


def clean_text(value: str, *, limit: int = MAX_TEXT) -> str:
    """Return ``value`` without control characters, trimmed and length-limited.

    >>> clean_text("Evil\\x00 Corp\\n")
    'Evil Corp'
    """
    if value.isprintable() and len(value) <= limit and value == value.strip():
        return value
    text = _CONTROL.sub("", _SPACE.sub(" ", value)).strip()
    return text[:limit]


def clean_json(value: Any) -> Any:
    """Apply :func:`clean_text` to every string (keys too) inside a JSON value."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {
            clean_text(key) if isinstance(key, str) else str(key): (
                clean_text(item) if isinstance(item, str) else clean_json(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


def clean_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """Clean the string values of a source's flat JSON entry in place and return it."""
    for key, value in entry.items():
        if isinstance(value, str):
            entry[key] = clean_text(value)
        elif isinstance(value, dict | list):
            entry[key] = clean_json(value)
    return entry

"""Where the real samples live, and whether this run must have them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``../shared/data`` beside the clone, or ``COWRIEPROCESSOR_SHARED_DATA``."""
    override = os.environ.get("COWRIEPROCESSOR_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


def require_shared_data() -> Path:
    """Return the samples folder, or skip (fail in CI) when it is absent."""
    path = shared_data_dir()
    if path.is_dir():
        return path
    message = f"real samples not found at {path} (clone without ../shared)"
    if os.environ.get("COWRIEPROCESSOR_REQUIRE_SHARED_DATA") == "1":
        pytest.fail(message + "; COWRIEPROCESSOR_REQUIRE_SHARED_DATA=1 makes them mandatory")
    pytest.skip(message)

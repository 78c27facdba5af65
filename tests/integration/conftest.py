"""Fixtures shared by the integration test modules."""

from tests.integration.test_cli import scenario

__all__ = ["scenario"]

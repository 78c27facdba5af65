"""The ``cowrieprocessor`` command line: a thin layer over the library."""

from cowrieprocessor.cli.app import main

__all__ = ["main"]

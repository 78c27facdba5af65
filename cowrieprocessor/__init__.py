"""Enrich Cowrie honeypot attacker IPs into an IP and ASN inventory."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cowrieprocessor")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]

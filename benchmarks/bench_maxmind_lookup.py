"""Mean cost of one MaxMindClient.lookup_ip on synthetic City + ASN databases.

Run from the repository root:

    .venv/bin/python -m benchmarks.bench_maxmind_lookup --lookups 200000 --compare

Writes GeoLite2-format demo databases (synthetic data) into a temporary
directory, or reuses ``--directory`` when it already holds them, then times
``lookup_ip`` over addresses drawn from the written networks. ``--compare``
also times the raw maxminddb readers and geoip2's model-building Reader on the
same addresses, to show what the client adds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import geoip2.database
import geoip2.errors
import maxminddb

from cowrieprocessor.demo.geodb import (
    ASN_FILENAME,
    CITY_FILENAME,
    GeoRecord,
    demo_ips,
    demo_records,
    write_geolite2_databases,
)
from cowrieprocessor.enrichment.maxmind_client import MaxMindClient

__all__ = ["main"]

TARGET_MICROSECONDS = 50.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lookups", type=int, default=200_000, help="timed lookups")
    parser.add_argument("--networks", type=int, default=20_000, help="networks in the DBs")
    parser.add_argument("--asns", type=int, default=None, help="distinct ASNs (default: one each)")
    parser.add_argument("--addresses", type=int, default=100_000, help="distinct addresses")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--directory", type=Path, default=None, help="reuse/keep the DBs here")
    parser.add_argument("--compare", action="store_true", help="also time maxminddb and geoip2")
    return parser.parse_args(argv)


def prepare(directory: Path, networks: int, asns: int | None, seed: int) -> list[GeoRecord]:
    """Write the databases unless present; return the synthetic records."""
    records = demo_records(networks, seed, asn_count=asns)
    if (directory / CITY_FILENAME).is_file() and (directory / ASN_FILENAME).is_file():
        print(f"reusing databases in {directory}")
        return records
    started = time.perf_counter()
    write_geolite2_databases(directory, records)
    elapsed = time.perf_counter() - started
    sizes = sum((directory / name).stat().st_size for name in (CITY_FILENAME, ASN_FILENAME))
    print(f"wrote {networks} networks in {elapsed:.2f} s ({sizes / 1e6:.1f} MB) to {directory}")
    return records


def time_per_call(function: Callable[[str], object], addresses: list[str], count: int) -> float:
    """Mean microseconds of ``function(address)`` over ``count`` calls (after a warm-up)."""
    for address in addresses[:1000]:
        function(address)
    size = len(addresses)
    started = time.perf_counter()
    for index in range(count):
        function(addresses[index % size])
    return (time.perf_counter() - started) / count * 1e6


def compare(directory: Path, addresses: list[str], count: int) -> None:
    """Time the raw readers and geoip2's models for reference."""
    city_raw = maxminddb.open_database(str(directory / CITY_FILENAME))
    asn_raw = maxminddb.open_database(str(directory / ASN_FILENAME))
    raw = time_per_call(lambda ip: (city_raw.get(ip), asn_raw.get(ip)), addresses, count)
    print(f"maxminddb get() x2 (no validation, no result): {raw:6.2f} us/lookup")
    city = geoip2.database.Reader(str(directory / CITY_FILENAME))
    asn = geoip2.database.Reader(str(directory / ASN_FILENAME))

    def with_models(ip: str) -> object:
        try:
            return city.city(ip), asn.asn(ip)
        except geoip2.errors.AddressNotFoundError:
            return None

    models = time_per_call(with_models, addresses, count)
    print(f"geoip2 Reader city() + asn() (model objects): {models:6.2f} us/lookup")
    for reader in (city_raw, asn_raw, city, asn):
        reader.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-maxmind-") as scratch:
        directory = args.directory or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        records = prepare(directory, args.networks, args.asns, args.seed)
        addresses = demo_ips(records, args.addresses, args.seed)
        with MaxMindClient(directory, search_dirs=()) as client:
            per_lookup = time_per_call(client.lookup_ip, addresses, args.lookups)
            stats = client.stats()
        print(
            f"MaxMindClient.lookup_ip: {per_lookup:6.2f} us/lookup over {args.lookups} lookups "
            f"({stats.hits} hits, {stats.misses} misses, {stats.errors} errors)"
        )
        if args.compare:
            compare(directory, addresses, args.lookups)
    verdict = "OK" if per_lookup < TARGET_MICROSECONDS else "SLOWER THAN TARGET"
    print(f"target < {TARGET_MICROSECONDS:.0f} us/lookup: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

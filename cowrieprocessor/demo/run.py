"""Lay out the demo: synthetic GeoLite2-format databases, a synthetic Cowrie log, a README.

``cowrieprocessor demo`` calls :func:`prepare_demo` and then enriches the log
offline, through the same code as ``cowrieprocessor enrich``, into
``DIR/cowrieprocessor.sqlite``. Nothing here needs a network, a MaxMind account
or the real samples; everything written is made up and labelled so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cowrieprocessor.demo.geodb import demo_records, write_geolite2_databases
from cowrieprocessor.demo.sample_log import SampleLog, write_sample_log

__all__ = ["DEMO_ASNS", "DEMO_NETWORKS", "DemoData", "prepare_demo"]

#: Networks and distinct AS numbers of the synthetic GeoLite2 databases.
DEMO_NETWORKS = 24
DEMO_ASNS = 8

_README = """\
SYNTHETIC DEMO DATA - NOT REAL
==============================

Everything in this folder was made up by `cowrieprocessor demo` (seed {seed}):

  maxmind/GeoLite2-City.mmdb, maxmind/GeoLite2-ASN.mmdb
      GeoLite2-format databases with random public networks, AS numbers from the
      private-use ranges and organisation names that say "synthetic". Not real
      geolocation; never use them for real enrichment.
  logs/cowrie.json
      {events:,} Cowrie events in {sessions:,} sessions from {ips} addresses; sensor
      "synthetic-demo-sensor", every message starts with "[synthetic demo data]".
  cowrieprocessor.sqlite
      the inventory the demo enriched from the two above.

Look around with, for example:

  cowrieprocessor asn top --db sqlite:///{database}
  cowrieprocessor ip show {first_ip} --db sqlite:///{database}
"""


@dataclass(frozen=True)
class DemoData:
    """Where the demo's files are."""

    directory: Path
    maxmind_dir: Path
    log: SampleLog
    database_path: Path

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.database_path}"


def prepare_demo(directory: Path, *, seed: int = 7) -> DemoData:
    """Write the demo's synthetic databases, log and README into ``directory``.

    Running it again rewrites the files; the inventory database is left as it is.

    Raises:
        RuntimeError: the ``mmdb-writer`` package (``[dev]`` extra) is not installed.
        OSError: ``directory`` cannot be written.
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    records = demo_records(DEMO_NETWORKS, seed, asn_count=DEMO_ASNS)
    maxmind_dir = directory / "maxmind"
    write_geolite2_databases(maxmind_dir, records)
    log = write_sample_log(directory / "logs" / "cowrie.json", records, seed=seed)
    database_path = directory / "cowrieprocessor.sqlite"
    readme = _README.format(
        seed=seed,
        events=log.events,
        sessions=log.sessions,
        ips=len(log.ips),
        database=database_path,
        first_ip=log.ips[0],
    )
    (directory / "README.txt").write_text(readme, encoding="utf-8")
    return DemoData(directory, maxmind_dir, log, database_path)

"""Memory and speed of streaming a large Cowrie log through the reader and the aggregator.

Writes a synthetic log (1,000,000 lines by default, about 50,000 source IPs, a few
hundred sessions open at any moment, realistic event mix), then reads it the way
the command line does: ``read_events`` into ``SessionAggregator``, taking closed
sessions out as it goes. Prints resident memory (``psutil``) and peak resident
memory (``getrusage``) at 100k, 500k and 1M lines, and the lines per second.

Run from the repository root::

    .venv/bin/python -m benchmarks.bench_ingest_memory
    .venv/bin/python -m benchmarks.bench_ingest_memory --lines 200000 --keep

The numbers depend on the machine; what should hold everywhere is that memory
stays flat apart from the per-IP aggregates, which grow with distinct IPs only.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

from cowrieprocessor.ingest import (
    CowrieEvent,
    IngestCounters,
    SessionAggregator,
    expand_inputs,
    read_events,
)

__all__ = ["Checkpoint", "main", "measure", "write_log"]

SENSOR = "bench-sensor-01"
USERNAMES = ["root", "admin", "user", "test", "ubnt", "pi", "oracle", "support"]
COMMANDS = ["uname -a", "cat /proc/cpuinfo", "wget http://192.0.2.1/x", "cd /tmp", "ls -la"]
POP_EVERY = 1000


@dataclass(frozen=True)
class Checkpoint:
    lines: int
    seconds: float
    rss_mib: float
    peak_rss_mib: float
    open_sessions: int
    unique_ips: int
    closed_records: int


def _script(rng: random.Random) -> list[str]:
    """The events of one session after its connect, ending with the close."""
    events = ["cowrie.client.version"]
    events += ["cowrie.login.failed"] * rng.randint(0, 5)
    if rng.random() < 0.3:
        events.append("cowrie.login.success")
        events += ["cowrie.command.input"] * rng.randint(0, 4)
    events.append("cowrie.session.closed")
    return events


def _event(eventid: str, session: str, ip: str, when: datetime, rng: random.Random) -> str:
    data: dict[str, object] = {
        "eventid": eventid,
        "session": session,
        "src_ip": ip,
        "timestamp": when.isoformat().replace("+00:00", "Z"),
        "sensor": SENSOR,
        "isError": 0,
        "system": f"HoneyPotSSHTransport,{rng.randint(1, 99999)},{ip}",
    }
    if eventid == "cowrie.session.connect":
        data.update(src_port=rng.randint(1024, 65535), dst_ip="172.17.0.3", dst_port=2222)
        data["message"] = f"New connection: {ip} [session: {session}]"
    elif eventid.startswith("cowrie.login."):
        data.update(username=rng.choice(USERNAMES), password=f"pw{rng.randint(0, 9999)}")
    elif eventid == "cowrie.command.input":
        data["input"] = rng.choice(COMMANDS)
    elif eventid == "cowrie.client.version":
        data["version"] = "SSH-2.0-libssh2_1.4.3"
    return json.dumps(data)


def _lines(total: int, ips: int, concurrency: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    pool = [
        f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{i // 256 % 256}.{i % 256}"
        for i in range(ips)
    ]
    clock = datetime(2024, 1, 1, tzinfo=UTC)
    active: list[tuple[str, str, list[str]]] = []
    for _ in range(total):
        clock += timedelta(microseconds=rng.randint(1, 200_000))
        if len(active) < concurrency and rng.random() < 0.5:
            session = f"{rng.getrandbits(48):012x}"
            ip = rng.choice(pool)
            active.append((session, ip, _script(rng)))
            yield _event("cowrie.session.connect", session, ip, clock, rng)
            continue
        if not active:
            continue
        index = rng.randrange(len(active))
        session, ip, script = active[index]
        yield _event(script.pop(0), session, ip, clock, rng)
        if not script:
            active[index] = active[-1]
            active.pop()


def write_log(
    path: Path, total: int, *, ips: int = 50_000, concurrency: int = 300, seed: int = 7
) -> int:
    """Write a synthetic log of at most ``total`` lines; return the number written."""
    written = 0
    with path.open("w", encoding="utf-8", buffering=1024 * 1024) as out:
        for line in _lines(total, ips, concurrency, seed):
            out.write(line)
            out.write("\n")
            written += 1
    return written


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(path: Path, checkpoints: Sequence[int]) -> list[Checkpoint]:
    """Stream ``path`` as the CLI does and take a reading at each checkpoint line."""
    process = psutil.Process()
    counters = IngestCounters()
    aggregator = SessionAggregator()
    pending = sorted(checkpoints)
    results: list[Checkpoint] = []
    closed = 0
    start = time.perf_counter()
    for item in read_events(expand_inputs([str(path)]), counters=counters):
        if isinstance(item, CowrieEvent):
            aggregator.add(item)
        if counters.lines % POP_EVERY == 0:
            closed += len(aggregator.pop_closed())
        if pending and counters.lines >= pending[0]:
            pending.pop(0)
            summary = aggregator.summary()
            results.append(
                Checkpoint(
                    lines=counters.lines,
                    seconds=time.perf_counter() - start,
                    rss_mib=process.memory_info().rss / (1024 * 1024),
                    peak_rss_mib=_peak_rss_mib(),
                    open_sessions=summary.open_sessions,
                    unique_ips=summary.unique_ips,
                    closed_records=closed,
                )
            )
    return results


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines to generate")
    parser.add_argument("--ips", type=int, default=50_000, help="distinct source IPs in the pool")
    parser.add_argument("--concurrency", type=int, default=300, help="sessions open at once")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the log")
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    return parser.parse_args(argv)


def _report(results: Sequence[Checkpoint], baseline_mib: float) -> None:
    print(f"RSS before reading: {baseline_mib:.1f} MiB")
    print(
        f"{'lines':>9} {'seconds':>8} {'lines/s':>9} {'RSS MiB':>8} {'peak MiB':>9} "
        f"{'open':>5} {'IPs':>6} {'closed':>7}"
    )
    for point in results:
        rate = point.lines / point.seconds if point.seconds else 0.0
        print(
            f"{point.lines:>9} {point.seconds:>8.1f} {rate:>9.0f} {point.rss_mib:>8.1f} "
            f"{point.peak_rss_mib:>9.1f} {point.open_sessions:>5} {point.unique_ips:>6} "
            f"{point.closed_records:>7}"
        )
    if len(results) >= 2:
        growth = results[-1].peak_rss_mib - results[0].peak_rss_mib
        first, last = results[0].lines, results[-1].lines
        print(f"peak RSS growth from {first} to {last} lines: {growth:.1f} MiB")


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir=args.dir))
    try:
        log = folder / "cowrie.json"
        began = time.perf_counter()
        written = write_log(
            log, args.lines, ips=args.ips, concurrency=args.concurrency, seed=args.seed
        )
        took = time.perf_counter() - began
        size_mib = log.stat().st_size / (1024 * 1024)
        print(f"wrote {written} lines ({size_mib:.0f} MiB) to {log} in {took:.1f} s")
        checkpoints = {n for n in (100_000, 500_000, 1_000_000) if n < written} | {written}
        baseline = psutil.Process().memory_info().rss / (1024 * 1024)
        _report(measure(log, sorted(checkpoints)), baseline)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

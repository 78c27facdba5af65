"""``main``: parse the command line, run one command, turn failures into exit codes.

Exit codes: 0 success, 1 failure (database unreachable, a database error, a
status file that cannot be written), 2 bad usage or unreadable input, 130 and
143 after SIGINT and SIGTERM. A failure is one line on stderr starting with
``cowrieprocessor: error:``; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError

from cowrieprocessor.cli.enrich import EnrichOptions, run_enrich
from cowrieprocessor.cli.errors import EXIT_FAILURE, EXIT_SIGINT, CommandError
from cowrieprocessor.cli.inventory import (
    asn_show,
    asn_top,
    db_upgrade,
    ip_show,
    rebuild_counts,
)
from cowrieprocessor.cli.parser import parse_args
from cowrieprocessor.cli.runtime import (
    Console,
    TelemetryChoice,
    database_secrets,
    describe_db_error,
)
from cowrieprocessor.cli.sources import SourceOptions
from cowrieprocessor.cli.status import show_status
from cowrieprocessor.db.migrate import MigrationError

__all__ = ["main"]

logger = logging.getLogger(__name__)

_PREFIX = "cowrieprocessor: error: "


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return its exit code."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(arguments, os.environ)
    except CommandError as exc:
        sys.stderr.write(f"{_PREFIX}{exc}\n")
        return exc.exit_code
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    with _logging_to_stderr(args.verbose, quiet=args.quiet):
        return _run(args, Console(sys.stdout, sys.stderr, quiet=args.quiet))


def _run(args: argparse.Namespace, console: Console) -> int:
    try:
        return _COMMANDS[_command_key(args)](args, console)
    except KeyboardInterrupt:
        sys.stderr.write("cowrieprocessor: interrupted\n")
        return EXIT_SIGINT
    except (CommandError, SQLAlchemyError, MigrationError, OSError) as exc:
        message, code = _describe_failure(args, exc)
        if args.verbose:
            traceback.print_exc(file=sys.stderr)
        sys.stderr.write(f"{_PREFIX}{message}\n")
        return code


def _describe_failure(args: argparse.Namespace, exc: Exception) -> tuple[str, int]:
    if isinstance(exc, CommandError):
        return str(exc), exc.exit_code
    if isinstance(exc, SQLAlchemyError):
        secrets = database_secrets(getattr(args, "database_url", "") or "")
        return f"database error: {describe_db_error(exc, secrets)}", EXIT_FAILURE
    if isinstance(exc, MigrationError):
        return f"cannot migrate the database: {exc}", EXIT_FAILURE
    where = f" {exc.filename}" if isinstance(exc, OSError) and exc.filename else ""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot use{where}: {reason}", EXIT_FAILURE


@contextmanager
def _logging_to_stderr(verbose: int, *, quiet: bool) -> Iterator[None]:
    """Log lines on stderr while a command runs: warnings, more with ``-v``, errors with ``-q``.

    The logging setup found before is restored afterwards.
    """
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    level = logging.ERROR if quiet else levels[min(verbose, 2)]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LevelFormatter("cowrieprocessor: %(levelname)s: %(message)s"))
    root, package = logging.getLogger(), logging.getLogger("cowrieprocessor")
    saved = (root.handlers[:], root.level, package.level)
    root.handlers[:] = [handler]
    root.setLevel(level if verbose >= 2 else max(level, logging.WARNING))
    package.setLevel(level)
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        package.setLevel(saved[2])


class _LevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _command_key(args: argparse.Namespace) -> str:
    sub = getattr(args, f"{args.command}_command", None)
    return f"{args.command} {sub}" if sub else str(args.command)


def _enrich(args: argparse.Namespace, console: Console) -> int:
    return run_enrich(_enrich_options(args), console)


def _status(args: argparse.Namespace, console: Console) -> int:
    return show_status(console, args.directory, as_json=args.json_output)


def _db_upgrade(args: argparse.Namespace, console: Console) -> int:
    return db_upgrade(console, args.database_url)


def _ip_show(args: argparse.Namespace, console: Console) -> int:
    return ip_show(console, args.database_url, args.ip, as_json=args.json_output)


def _asn_top(args: argparse.Namespace, console: Console) -> int:
    return asn_top(
        console, args.database_url, by=args.by, limit=args.limit, as_json=args.json_output
    )


def _asn_show(args: argparse.Namespace, console: Console) -> int:
    return asn_show(console, args.database_url, args.asn, as_json=args.json_output)


def _rebuild_counts(args: argparse.Namespace, console: Console) -> int:
    return rebuild_counts(
        console, args.database_url, dry_run=args.dry_run, as_json=args.json_output
    )


def _enrich_options(args: argparse.Namespace) -> EnrichOptions:
    return EnrichOptions(
        inputs=tuple(args.inputs),
        database_url=args.database_url,
        sources=SourceOptions(
            maxmind_dir=args.maxmind_dir,
            cymru=args.cymru,
            cymru_host=args.cymru_host,
            cymru_port=args.cymru_port,
            greynoise=args.greynoise,
            greynoise_key=args.greynoise_key,
            greynoise_url=args.greynoise_url,
            greynoise_daily_budget=args.greynoise_daily_budget,
        ),
        telemetry=TelemetryChoice(
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
            metrics_linger_s=args.metrics_linger,
            otlp_endpoint=args.otlp_endpoint,
            console=args.console_telemetry,
        ),
        batch_size=args.batch_size,
        status_dir=args.status_dir,
        json_output=args.json_output,
    )


def _demo(args: argparse.Namespace, console: Console) -> int:
    from cowrieprocessor.demo.run import prepare_demo

    try:
        demo = prepare_demo(args.directory, seed=args.seed)
    except RuntimeError as exc:
        raise CommandError(str(exc)) from exc
    if not console.quiet:
        console.err(
            f"wrote SYNTHETIC demo data to {demo.directory} ({demo.log.events:,} events, "
            f"{demo.log.sessions:,} sessions, {len(demo.log.ips)} IPs); enriching it offline"
        )
    options = EnrichOptions(
        inputs=(str(demo.log.path),),
        database_url=demo.database_url,
        sources=SourceOptions(maxmind_dir=demo.maxmind_dir, cymru=False, greynoise=False),
        json_output=args.json_output,
    )
    return run_enrich(options, console)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "enrich": _enrich,
    "demo": _demo,
    "status": _status,
    "db upgrade": _db_upgrade,
    "ip show": _ip_show,
    "asn top": _asn_top,
    "asn show": _asn_show,
    "asn rebuild-counts": _rebuild_counts,
}

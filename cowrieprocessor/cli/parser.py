"""The argument parser of the ``cowrieprocessor`` command and its environment defaults.

Every option that reads the environment does it here, when the parser is built,
so ``--help`` and the parsed values agree. The GreyNoise key is never shown as a
default, nor anywhere else.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from cowrieprocessor import __version__
from cowrieprocessor.cli.errors import UsageError
from cowrieprocessor.db.engine import DEFAULT_DATABASE_URL

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEMO_DIR",
    "ENV_CYMRU_HOST",
    "ENV_CYMRU_PORT",
    "ENV_DATABASE",
    "ENV_GREYNOISE_KEY",
    "ENV_GREYNOISE_URL",
    "ENV_MAXMIND_DIR",
    "build_parser",
    "parse_args",
]

ENV_DATABASE = "COWRIEPROCESSOR_DB"
ENV_MAXMIND_DIR = "COWRIEPROCESSOR_MAXMIND_DIR"
ENV_CYMRU_HOST = "COWRIEPROCESSOR_CYMRU_HOST"
ENV_CYMRU_PORT = "COWRIEPROCESSOR_CYMRU_PORT"
ENV_GREYNOISE_KEY = "GREYNOISE_API_KEY"
ENV_GREYNOISE_URL = "COWRIEPROCESSOR_GREYNOISE_URL"
ENV_GREYNOISE_BUDGET = "COWRIEPROCESSOR_GREYNOISE_DAILY_BUDGET"

DEFAULT_BATCH_SIZE = 500
DEFAULT_DEMO_DIR = Path("demo-output")
_CYMRU_HOST = "whois.cymru.com"
_CYMRU_PORT = 43
_GREYNOISE_URL = "https://api.greynoise.io"


class _Parser(argparse.ArgumentParser):
    """Reports a usage problem as one line (raised as :class:`UsageError`), never exits."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be within 0-65535, got {value}")
    return value


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _env_port(environ: Mapping[str, str]) -> int:
    text = environ.get(ENV_CYMRU_PORT, "").strip()
    if not text:
        return _CYMRU_PORT
    try:
        return _port(text)
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{ENV_CYMRU_PORT}: {exc}") from None


def _common(environ: Mapping[str, str], *, database: bool) -> _Parser:
    """Options every subcommand takes: verbosity and, where it applies, the database."""
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="count", default=argparse.SUPPRESS,
        help="more detail on stderr (-vv for debug); shows tracebacks of errors",
    )  # fmt: skip
    common.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="only errors on stderr; no progress and no summary table",
    )  # fmt: skip
    if database:
        common.add_argument(
            "--db", dest="database_url", metavar="URL",
            default=environ.get(ENV_DATABASE) or DEFAULT_DATABASE_URL,
            help=f"database URL (env {ENV_DATABASE}; default {DEFAULT_DATABASE_URL})",
        )  # fmt: skip
    return common


def _add_enrich(
    subparsers: argparse._SubParsersAction[_Parser],
    db: _Parser,
    env: Mapping[str, str],
) -> None:
    parser = subparsers.add_parser(
        "enrich",
        parents=[db],
        help="read Cowrie JSON logs and enrich their source IPs into the inventory",
        description="Read Cowrie JSON logs (files, directories, globs, .gz, '-' for stdin), "
        "store session summaries and enrich every source IP into the IP and ASN inventory.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH", help="log file, directory or glob")
    sources = parser.add_argument_group("sources")
    sources.add_argument(
        "--maxmind-dir", type=Path, metavar="DIR",
        default=Path(env[ENV_MAXMIND_DIR]) if env.get(ENV_MAXMIND_DIR) else None,
        help=f"folder of GeoLite2-City/ASN .mmdb files (env {ENV_MAXMIND_DIR}; "
        "default: /usr/share/GeoIP, /var/lib/GeoIP)",
    )  # fmt: skip
    sources.add_argument(
        "--cymru", action=argparse.BooleanOptionalAction, default=True,
        help="ask Team Cymru's whois for IPs MaxMind has no ASN for (default: on)",
    )  # fmt: skip
    sources.add_argument(
        "--cymru-host", metavar="HOST", default=env.get(ENV_CYMRU_HOST) or _CYMRU_HOST,
        help=f"bulk whois server (env {ENV_CYMRU_HOST}; default {_CYMRU_HOST})",
    )  # fmt: skip
    sources.add_argument(
        "--cymru-port", metavar="PORT", type=_port, default=_env_port(env),
        help=f"bulk whois port (env {ENV_CYMRU_PORT}; default {_CYMRU_PORT})",
    )  # fmt: skip
    sources.add_argument(
        "--greynoise-key", metavar="KEY", default=env.get(ENV_GREYNOISE_KEY) or None,
        help=f"GreyNoise API key; enables GreyNoise (prefer the env variable {ENV_GREYNOISE_KEY}: "
        "arguments are visible to other users in ps)",
    )  # fmt: skip
    sources.add_argument(
        "--greynoise", action="store_true",
        help="use GreyNoise without a key (the small unauthenticated community quota)",
    )  # fmt: skip
    sources.add_argument(
        "--greynoise-url", metavar="URL", default=env.get(ENV_GREYNOISE_URL) or _GREYNOISE_URL,
        help=f"GreyNoise API base URL (env {ENV_GREYNOISE_URL})",
    )  # fmt: skip
    sources.add_argument(
        "--greynoise-daily-budget", metavar="N", type=_positive,
        default=env.get(ENV_GREYNOISE_BUDGET) or None,
        help="GreyNoise requests allowed per UTC day; the quota left is then exported as "
        f"enrichment_greynoise_quota_remaining (env {ENV_GREYNOISE_BUDGET})",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE, metavar="N",
        help=f"IPs per batch and commit (default {DEFAULT_BATCH_SIZE})",
    )  # fmt: skip
    _add_observability(parser)


def _add_observability(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("observability")
    group.add_argument(
        "--metrics-port", type=_port, metavar="PORT",
        help="serve Prometheus metrics on http://HOST:PORT/metrics during the run",
    )  # fmt: skip
    group.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST",
        help="address the metrics endpoint listens on (default 127.0.0.1)",
    )  # fmt: skip
    group.add_argument(
        "--metrics-linger", type=_seconds, default=0.0, metavar="SECONDS",
        help="keep serving /metrics this long after the run, for a last scrape (default 0)",
    )  # fmt: skip
    group.add_argument(
        "--otlp-endpoint", metavar="URL",
        help="send traces and metrics over OTLP/HTTP to this base URL "
        "(the OTEL_EXPORTER_OTLP_* variables work too)",
    )  # fmt: skip
    group.add_argument(
        "--console-telemetry", action="store_true",
        help="print spans and metrics as JSON on stderr",
    )  # fmt: skip
    group.add_argument(
        "--status-dir", type=Path, metavar="DIR",
        help="keep a JSON status file in DIR, updated after every batch",
    )  # fmt: skip
    group.add_argument(
        "--json", dest="json_output", action="store_true",
        help="print the summary as JSON on stdout (the table goes to stderr)",
    )  # fmt: skip


def _add_inventory(subparsers: argparse._SubParsersAction[_Parser], db: _Parser) -> None:
    asn = subparsers.add_parser("asn", help="look at the ASN inventory")
    asn_commands = asn.add_subparsers(dest="asn_command", metavar="COMMAND", required=True)
    top = asn_commands.add_parser("top", parents=[db], help="the ASNs with most sessions or IPs")
    top.add_argument("--by", choices=("sessions", "ips"), default="sessions")
    top.add_argument("-n", "--limit", type=_positive, default=10, metavar="N")
    top.add_argument("--json", dest="json_output", action="store_true")
    show = asn_commands.add_parser("show", parents=[db], help="one ASN, its counts and its IPs")
    show.add_argument("asn", metavar="ASN", help="AS number (12345 or AS12345)")
    show.add_argument("--json", dest="json_output", action="store_true")
    rebuild = asn_commands.add_parser(
        "rebuild-counts", parents=[db], help="recompute the IP and session counts of every ASN"
    )
    rebuild.add_argument("--dry-run", action="store_true", help="report drift, change nothing")
    rebuild.add_argument("--json", dest="json_output", action="store_true")
    ip = subparsers.add_parser("ip", help="look at the IP inventory")
    ip_commands = ip.add_subparsers(dest="ip_command", metavar="COMMAND", required=True)
    ip_show = ip_commands.add_parser("show", parents=[db], help="everything known about one IP")
    ip_show.add_argument("ip", metavar="IP")
    ip_show.add_argument("--json", dest="json_output", action="store_true")
    database = subparsers.add_parser("db", help="database maintenance")
    db_commands = database.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    db_commands.add_parser("upgrade", parents=[db], help="apply pending schema migrations")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The parser of every command, with defaults read from ``environ``.

    Raises:
        UsageError: an environment variable holds an unusable value.
    """
    parser = _Parser(
        prog="cowrieprocessor",
        description="Enrich Cowrie honeypot attacker IPs into an IP and ASN inventory.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    db = _common(environ, database=True)
    plain = _common(environ, database=False)
    _add_enrich(subparsers, db, environ)
    _add_inventory(subparsers, db)
    status = subparsers.add_parser("status", parents=[plain], help="show a run's status file")
    status.add_argument("directory", nargs="?", type=Path, default=Path(), metavar="DIR")
    status.add_argument("--json", dest="json_output", action="store_true")
    demo = subparsers.add_parser(
        "demo",
        parents=[plain],
        help="write synthetic demo data and enrich it offline",
        description="Write clearly labelled synthetic data (GeoLite2-format databases and a "
        "Cowrie log) into DIR and enrich it offline into DIR/cowrieprocessor.sqlite.",
    )
    demo.add_argument("--dir", dest="directory", type=Path, default=DEFAULT_DEMO_DIR)
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    demo.add_argument("--json", dest="json_output", action="store_true")
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse ``argv`` (without the program name).

    Raises:
        UsageError: the arguments or an environment default are not usable.
        SystemExit: ``--help`` or ``--version`` was printed (code 0).
    """
    args = build_parser(environ).parse_args(list(argv))
    if getattr(args, "verbose", 0) and getattr(args, "quiet", False):
        raise UsageError("-v and -q cannot be used together")
    return args

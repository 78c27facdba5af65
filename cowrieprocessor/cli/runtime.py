"""What the commands share at run time: output streams, the status file, telemetry, errors."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from cowrieprocessor.cli.errors import CommandError
from cowrieprocessor.db.engine import Database
from cowrieprocessor.enrichment.cascade_enricher import CascadeStats
from cowrieprocessor.status_emitter import StatusEmitter, StatusFileError, scrub

if TYPE_CHECKING:
    from cowrieprocessor.telemetry.setup import Telemetry

__all__ = [
    "Console",
    "StatusWriter",
    "TelemetryChoice",
    "add_stats",
    "commit_with_retry",
    "database_secrets",
    "describe_db_error",
    "discard_session",
    "open_telemetry",
]

logger = logging.getLogger(__name__)

#: Environment variables that turn OTLP export on without a command-line option.
OTLP_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
_MAX_ERROR_CHARS = 300
_T = TypeVar("_T")


@dataclass(frozen=True)
class TelemetryChoice:
    """Where telemetry goes; nothing is set up when none of it is asked for."""

    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    metrics_linger_s: float = 0.0
    otlp_endpoint: str | None = None
    console: bool = False


@dataclass(frozen=True)
class Console:
    """The streams a command writes to; ``quiet`` silences everything but errors and JSON."""

    stdout: TextIO
    stderr: TextIO
    quiet: bool = False

    @property
    def stderr_tty(self) -> bool:
        isatty = getattr(self.stderr, "isatty", None)
        return bool(isatty and isatty())

    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def err(self, text: str) -> None:
        self.stderr.write(text + "\n")
        self.stderr.flush()


class StatusWriter:
    """The run's status file, or nothing when no ``--status-dir`` was given.

    A status file that cannot be written is reported once and never stops the run.
    """

    def __init__(self, emitter: StatusEmitter | None) -> None:
        self._emitter = emitter
        self._warned = False

    @classmethod
    def open(cls, directory: Path | None, secrets: Sequence[str]) -> StatusWriter:
        """Raises: CommandError: the status directory cannot be created."""
        if directory is None:
            return cls(None)
        try:
            return cls(StatusEmitter(directory, secrets=[s for s in secrets if s]))
        except StatusFileError as exc:
            raise CommandError(str(exc)) from exc

    def update(self, **values: Any) -> None:
        if self._emitter is None:
            return
        try:
            self._emitter.update(**values)
        except StatusFileError as exc:
            self._warn(exc)

    def finish(self, phase: str, **values: Any) -> None:
        """Write the last status: ``finished``, ``failed`` or ``interrupted``."""
        if self._emitter is None:
            return
        try:
            self._emitter.finish(phase, **values)
        except StatusFileError as exc:
            self._warn(exc)

    def _warn(self, exc: StatusFileError) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("%s; the run goes on without updating it", exc)


def add_stats(total: CascadeStats, part: CascadeStats) -> None:
    """Add the counters of ``part`` to ``total`` (the ASN sets are united)."""
    for item in fields(CascadeStats):
        if item.name == "asn_unique_seen":
            total.asn_unique_seen |= part.asn_unique_seen
        else:
            setattr(total, item.name, getattr(total, item.name) + getattr(part, item.name))


def database_secrets(url: str) -> list[str]:
    """The password of a database URL, as written and URL-encoded, to scrub from output."""
    try:
        password = make_url(url).password
    except ArgumentError:
        return []
    if not password:
        return []
    return [str(password), quote(str(password), safe="")]


def describe_db_error(exc: SQLAlchemyError, secrets: Sequence[str]) -> str:
    """One line about a database error: the driver's message, without SQL or secrets."""
    origin = getattr(exc, "orig", None)
    cause = origin if isinstance(origin, BaseException) else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if text.startswith("("):  # SQLAlchemy's own "(driver.Error) message" form
        text = text.partition(") ")[2] or text
    text = scrub(text, secrets)[:_MAX_ERROR_CHARS]
    name = type(cause).__name__
    return f"{name}: {text}" if text else name


def open_telemetry(choice: TelemetryChoice) -> Telemetry | None:
    """Set up telemetry when an option or an ``OTEL_EXPORTER_OTLP_*`` variable asks for it.

    Raises:
        CommandError: the optional OpenTelemetry packages are not installed.
    """
    wanted = (
        choice.metrics_port is not None
        or bool(choice.otlp_endpoint)
        or choice.console
        or any(os.environ.get(name, "").strip() for name in OTLP_VARIABLES)
    )
    if not wanted:
        return None
    from cowrieprocessor.telemetry.setup import (
        TelemetryOptions,
        TelemetryUnavailableError,
        configure_telemetry,
    )

    try:
        return configure_telemetry(
            TelemetryOptions(
                metrics_port=choice.metrics_port,
                metrics_host=choice.metrics_host,
                otlp_endpoint=choice.otlp_endpoint,
                console=choice.console,
            )
        )
    except TelemetryUnavailableError as exc:
        raise CommandError(str(exc)) from exc


def commit_with_retry(
    database: Database, work: Callable[[Session], _T], secrets: Sequence[str]
) -> _T:
    """Run ``work`` in a new session and commit; after a database error, once more.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the second attempt failed too.
    """
    try:
        return _commit(database, work)
    except SQLAlchemyError as exc:
        detail = describe_db_error(exc, secrets)
        logger.warning("database error (%s); retrying once on a new connection", detail)
    return _commit(database, work)


def _commit(database: Database, work: Callable[[Session], _T]) -> _T:
    session = database.sessions()
    try:
        result = work(session)
        session.commit()
    except SQLAlchemyError:
        discard_session(session)
        raise
    finally:
        session.close()
    return result


def discard_session(session: Session) -> None:
    """Roll back and close ``session``, whatever state its connection is in."""
    try:
        session.rollback()
    except SQLAlchemyError:
        logger.debug("rollback failed; the connection is discarded", exc_info=True)
    finally:
        try:
            session.close()
        except SQLAlchemyError:
            logger.debug("close failed; the connection is discarded", exc_info=True)

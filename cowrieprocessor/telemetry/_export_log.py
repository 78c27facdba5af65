"""The export-problem log filter of ``configure_telemetry``: one warning line per process.

The OpenTelemetry exporters log every failed export; :class:`ExportProblems` turns the
first of those warnings into one line (with OTLP header values and URL passwords blanked
out) and only counts the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote, urlsplit

__all__ = ["ExportProblems", "export_secrets"]

# Records keep the logger name of the public module, as before this code moved here.
logger = logging.getLogger("cowrieprocessor.telemetry.setup")

#: Loggers whose warnings and errors about exporting are collapsed into one warning line.
_EXPORT_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.metrics._internal.export",
)
_HEADER_VARIABLES = (
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
)


def export_secrets(environ: Mapping[str, str], urls: Iterable[str | None]) -> list[str]:
    """OTLP header values and the passwords of ``urls``, longest first, to blank out."""
    values: set[str] = set()
    for variable in _HEADER_VARIABLES:
        for item in environ.get(variable, "").split(","):
            value = item.partition("=")[2].strip()
            values.update((value, unquote(value)))
    for url in urls:
        password = urlsplit(url).password if url else None
        values.update((password, unquote(password)) if password else ())
    return sorted((v for v in values if v), key=len, reverse=True)


class ExportProblems(logging.Filter):
    """Turns the exporters' warnings into one warning line; later ones are only counted."""

    def __init__(self, warnings: list[str], secrets: Sequence[str]) -> None:
        super().__init__()
        self._warnings = warnings
        self._secrets = secrets
        self._lock = threading.Lock()
        self._reported = False
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text = f"{text}: {record.exc_info[1]!r}"
        self.report(text)
        return False

    def report(self, text: str) -> None:
        with self._lock:
            first = not self._reported
            self._reported = True
            if not first:
                self.suppressed += 1
        if not first:
            return
        line = " ".join(text.split())
        for secret in self._secrets:
            line = line.replace(secret, "***")
        message = f"telemetry export problem: {line} (further export messages are suppressed)"
        self._warnings.append(message)
        logger.warning("%s", message)

    def attach(self) -> None:
        for name in _EXPORT_LOGGERS:
            logging.getLogger(name).addFilter(self)

    @property
    def reported(self) -> bool:
        return self._reported

    def detach(self) -> None:
        for name in _EXPORT_LOGGERS:
            logging.getLogger(name).removeFilter(self)
        if self.suppressed:
            logger.info("%d further telemetry export messages were suppressed", self.suppressed)

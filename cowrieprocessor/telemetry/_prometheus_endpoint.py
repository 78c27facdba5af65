"""The Prometheus scrape endpoint started by ``configure_telemetry``.

The prometheus-client and opentelemetry-exporter-prometheus packages are imported lazily,
inside ``optional_extra`` (the caller's guard that turns an ``ImportError`` into its own
error naming the missing package).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader

__all__ = ["PrometheusEndpoint"]


class PrometheusEndpoint:
    """The scrape endpoint: a private registry served over HTTP on a daemon thread."""

    def __init__(
        self, host: str, port: int, optional_extra: Callable[[str], AbstractContextManager[None]]
    ) -> None:
        with optional_extra("prometheus-client"):
            from prometheus_client import CollectorRegistry, start_http_server
        with optional_extra("opentelemetry-exporter-prometheus"):
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

        registry = CollectorRegistry()
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.reader: MetricReader = PrometheusMetricReader(registry=registry)
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{url_host}:{self._server.server_port}/metrics"

    def stop(self, join_timeout_s: float) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(join_timeout_s)

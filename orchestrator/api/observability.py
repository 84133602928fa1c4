"""Logs, metrics and traces of the serving process.

- Logs: one JSON object per line with the request and tenant ids of the call being served
  (python-json-logger). Log lines carry names, codes and timings, never tool source,
  questions, answers or keys; known secrets are redacted besides (``orchestrator.secrets``).
- Metrics: Prometheus, over HTTP on ``metrics_listen``; the sandbox pool sizes are read from
  the backends at scrape time.
- Traces: OpenTelemetry, off by default; ``console`` prints spans, ``otlp`` sends them to a
  collector (extra ``latm[otlp]``).
"""

from __future__ import annotations

import logging
import sys
import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pythonjsonlogger.json import JsonFormatter

from orchestrator.api.service import REQUEST_ID, TENANT
from orchestrator.config import Settings
from orchestrator.errors import MissingDependencyError
from orchestrator.sandboxes import SandboxBackend
from orchestrator.secrets import install_log_redaction


class _RequestContext(logging.Filter):
    """Adds the request and tenant ids of the current call to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.tenant = TENANT.get()
        return True


def setup_logging(settings: Settings, stream: object = None) -> None:
    """Send the root logger's records to stderr as JSON lines (or text)."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(_RequestContext())
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}{request_id}{tenant}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        text = "%(asctime)s %(levelname)s %(name)s [%(tenant)s %(request_id)s] %(message)s"
        handler.setFormatter(logging.Formatter(text))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    install_log_redaction()


class _PoolCollector(Collector):
    """Sandboxes by backend and state, read from the live backends when scraped."""

    def __init__(self) -> None:
        self.backends: weakref.WeakSet[SandboxBackend] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "latm_sandboxes", "Sandboxes held by the backend, by state", labels=["backend", "state"]
        )
        totals: dict[tuple[str, str], int] = {}
        for backend in list(self.backends):
            for state, count in backend.stats().items():
                totals[backend.name, state] = totals.get((backend.name, state), 0) + count
        for (name, state), count in sorted(totals.items()):
            family.add_metric([name, state], count)
        yield family


_pools = _PoolCollector()
REGISTRY.register(_pools)


def register_backend(backend: SandboxBackend) -> None:
    _pools.backends.add(backend)


def start_metrics(listen: str) -> None:
    """Serve Prometheus metrics over HTTP at ``HOST:PORT`` (a daemon thread)."""
    host, _, port = listen.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")


def setup_tracing(settings: Settings) -> None:
    """Install the OpenTelemetry SDK when tracing is on (it is off by default)."""
    if settings.tracing == "off":
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if settings.tracing == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise MissingDependencyError.for_extra("opentelemetry-exporter-otlp", "otlp") from None
        exporter = OTLPSpanExporter(endpoint=settings.otlp_endpoint or None)
    provider = TracerProvider(resource=Resource.create({"service.name": "latm-orchestrator"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

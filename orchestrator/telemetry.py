"""Metrics and tracing shared by every layer of the orchestrator.

Metrics are Prometheus counters and histograms in the default registry; ``latm serve``
exposes them over HTTP when ``metrics_listen`` is set. Tracing uses the OpenTelemetry API:
without a configured SDK (the default, ``tracing = "off"``) every span is a no-op, so the
layers below can open spans unconditionally. Neither ever carries tool source, questions,
answers or keys: only names, codes, counts and durations.
"""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

tracer = trace.get_tracer("latm.orchestrator")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "latm_api_requests", "API calls answered, by method and status code", ["method", "code"]
)
REQUEST_SECONDS = Histogram(
    "latm_api_request_seconds",
    "API call latency, by method and status code",
    ["method", "code"],
    buckets=LATENCY_BUCKETS,
)
CARD_CACHE_BYTES = Gauge(
    "latm_card_cache_bytes", "Bytes of tool cards held by the engine's card cache"
)
SANDBOX_STARTS = Counter("latm_sandbox_starts", "Sandboxes started, by backend", ["backend"])
SANDBOX_CALLS = Counter(
    "latm_sandbox_calls", "Calls run in sandboxes, by backend and status", ["backend", "status"]
)
SANDBOX_FAULTS = Counter(
    "latm_sandbox_faults",
    "Calls that ended a sandbox's life (timeout, memory, output, crash), by status",
    ["backend", "status"],
)
MODEL_TOKENS = Counter(
    "latm_model_tokens", "Model tokens, by model spec and kind (prompt, completion)",
    ["model", "kind"],
)  # fmt: skip
MODEL_COST = Counter("latm_model_cost_usd", "Model cost in US dollars, by model spec", ["model"])
MODEL_SECONDS = Histogram(
    "latm_model_seconds", "Model completion latency, by model spec", ["model"],
    buckets=LATENCY_BUCKETS,
)  # fmt: skip
MODEL_AVAILABLE = Gauge(
    "latm_model_available",
    "1 when a role's model can be used, 0 while it cannot (a local model not fetched yet)",
    ["role", "model"],
)
MODEL_QUEUE_WAITING = Gauge(
    "latm_model_queue_waiting", "Completions waiting for a shared local model, by model spec",
    ["model"],
)  # fmt: skip
MODEL_QUEUE_SECONDS = Histogram(
    "latm_model_queue_seconds", "Time a completion waited for a shared local model",
    ["model"], buckets=LATENCY_BUCKETS,
)  # fmt: skip

"""The worker's telemetry: a Temporal runtime that serves Prometheus metrics, and optional tracing.

Metrics: the SDK's runtime serves `/metrics` on `BATON_WORKER_METRICS_ADDRESS`, with the SDK's own
`temporal_*` series and Baton's (recorded through the SDK's metric meter; contract/metrics.py lists
them). One runtime per process: every client connected with it, and every worker on those clients,
reports there.

Tracing: with `BATON_OTLP_ENDPOINT` set, spans for workflow starts, updates, workflow runs and
activities go to an OpenTelemetry collector over OTLP/HTTP through
`temporalio.contrib.opentelemetry.TracingInterceptor`. It needs the `otel` extra
(`pip install 'baton[otel]'`); without it the worker refuses to start rather than silently not trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from temporalio.client import Interceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from baton.contract import metrics
from baton.settings import Settings


class TracingUnavailable(RuntimeError):
    """An OTLP endpoint is configured but the OpenTelemetry packages are not installed."""


def histogram_buckets() -> dict[str, Sequence[float]]:
    return {series.name: series.buckets for series in metrics.WORKER_SERIES if series.buckets}


def metrics_runtime(bind_address: str) -> Runtime:
    """A runtime whose metrics Prometheus scrapes at http://<bind_address>/metrics."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                # OpenMetrics names (counters end in _total) and durations in seconds, like Baton's own series.
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides=histogram_buckets(),
            )
        )
    )


def runtime_for(settings: Settings) -> Runtime | None:
    """The metrics runtime when an address is configured; None keeps the SDK's default runtime."""
    return metrics_runtime(settings.worker_metrics_address) if settings.worker_metrics_address else None


@dataclass
class Tracing:
    """Interceptors for the client (workers on it use them too), and how to flush the spans at exit."""

    interceptors: list[Interceptor] = field(default_factory=list)
    shutdown: Callable[[], None] = lambda: None


def tracing_for(settings: Settings, service_name: str) -> Tracing:
    """The tracing interceptor when an OTLP endpoint is configured; nothing otherwise."""
    if not settings.otlp_endpoint:
        return Tracing()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from temporalio.contrib.opentelemetry import TracingInterceptor
    except ImportError as err:
        raise TracingUnavailable(
            f"otlp_endpoint is set ({settings.otlp_endpoint}) but OpenTelemetry is not installed: "
            "pip install 'baton[otel]'"
        ) from err
    # A provider of its own rather than the global one: a process may build more than one (tests do).
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    endpoint = settings.otlp_endpoint.rstrip("/")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")))
    return Tracing([TracingInterceptor(provider.get_tracer("baton"))], provider.shutdown)

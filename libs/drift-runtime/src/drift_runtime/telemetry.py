"""OpenTelemetry setup and W3C trace-context propagation through message headers.

Export is configured only by the standard `OTEL_*` variables: with
`OTEL_EXPORTER_OTLP_ENDPOINT` unset, spans are created (so context still
propagates) but nothing is exported.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_provider: TracerProvider | None = None


def setup_tracing(service_name: str) -> TracerProvider:
    """Install a tracer provider named after the service (once per process)."""
    global _provider
    if _provider is not None:
        return _provider
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    instrument_clients()
    return provider


def instrument_clients() -> None:
    """Standard instrumentation of the clients Drift uses, where a maintained package exists.

    Every httpx client (the dsl-store hops, webhooks, HTTP nodes) gets a CLIENT span and sends its
    `traceparent`, so the server's span joins the caller's trace; every Redis command gets a span
    beside Drift's own domain spans. NATS has no maintained instrumentation: `messaging` propagates
    the context itself.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    httpx_instrumentor = HTTPXClientInstrumentor()
    if not httpx_instrumentor.is_instrumented_by_opentelemetry:
        httpx_instrumentor.instrument()
    redis_instrumentor = RedisInstrumentor()
    if not redis_instrumentor.is_instrumented_by_opentelemetry:
        redis_instrumentor.instrument()


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.shutdown()


def inject_headers(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers with the current context's `traceparent` (and `tracestate`) added."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context a message's headers carry (empty when none)."""
    return propagate.extract(dict(headers or {}))


@contextlib.contextmanager
def continued_from(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace context `carrier` holds the current one; with an empty carrier nothing changes."""
    if not carrier:
        yield
        return
    token = otel_context.attach(extract_context(carrier))
    try:
        yield
    finally:
        otel_context.detach(token)

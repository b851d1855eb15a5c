"""HTTP nodes make a CLIENT span per call and pass its context to the callee in `traceparent`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from drift_worker.http_activity import span_url
from worker.worker_support import Runner, Stub, definition, new_id, state, success


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans ended in this process while the module runs (the in-process worker's included)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        # The first SDK provider of the process wins; later set_tracer_provider calls are ignored.
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()  # the provider keeps the processor; a stopped exporter drops what comes later


def flow(request: dict[str, Any]) -> Any:
    call = state({"type": "HTTP", "request": request, "retry": {"maxAttempts": 1}}, "done")
    return definition({"call": call, "done": success("OK")}, start="call")


def client_spans(exporter: InMemorySpanExporter, url: str) -> list[ReadableSpan]:
    return [
        span
        for span in exporter.get_finished_spans()
        if span.kind is SpanKind.CLIENT and (span.attributes or {}).get("url.full") == url
    ]


async def test_a_call_is_a_client_span_whose_context_reaches_the_callee(
    runner: Runner, stub: Stub, spans: InMemorySpanExporter
) -> None:
    """The callee gets the span's `traceparent`; the span has method, status and the url without userinfo or query."""
    path = f"/orders/{new_id('trace')}"
    secret_url = stub.url(path).replace("://", "://user:hunter2@", 1) + "?token=s3cret"
    snapshot = await runner.run(flow({"method": "GET", "url": secret_url}))
    assert snapshot.workflow_status == "COMPLETED"

    [span] = client_spans(spans, stub.url(path))
    attributes = dict(span.attributes or {})
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert attributes["server.port"] == stub.port
    assert "hunter2" not in str(attributes) and "s3cret" not in str(attributes)
    assert span.status.status_code is StatusCode.UNSET
    assert span.parent is not None, "the span is a child of the activity's span, not a trace of its own"

    [seen] = stub.requests(path)
    context = span.get_span_context()
    assert context is not None
    assert seen.headers["traceparent"].startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")


async def test_an_error_answer_marks_the_span_as_failed(
    runner: Runner, stub: Stub, spans: InMemorySpanExporter
) -> None:
    """An HTTP 503 answer ends the node's CLIENT span with error status and the status code."""
    path = "/status/503"
    before = len(client_spans(spans, stub.url(path)))
    snapshot = await runner.run(flow({"method": "GET", "url": stub.url(path)}))
    assert snapshot.workflow_status == "FAILED"
    span = client_spans(spans, stub.url(path))[before]
    assert (span.attributes or {})["http.response.status_code"] == 503
    assert span.status.status_code is StatusCode.ERROR


async def test_a_refused_call_is_a_failed_span_and_nothing_is_sent(
    runner: Runner, stub: Stub, spans: InMemorySpanExporter
) -> None:
    """A call the SSRF guard refuses ends its span with error status and no status code."""
    url = stub.url(f"/orders/{new_id('refused')}", host="127.0.0.1")
    snapshot = await runner.run(flow({"method": "GET", "url": url}))
    assert snapshot.workflow_status == "FAILED"
    [span] = client_spans(spans, url)
    assert span.status.status_code is StatusCode.ERROR
    assert "http.response.status_code" not in (span.attributes or {})


def test_span_url_drops_userinfo_query_and_fragment() -> None:
    """Credentials in userinfo and tokens in the query or fragment never reach a span attribute."""
    assert span_url(httpx.URL("https://u:p@api.example.test:8443/a/b?token=x#frag")) == (
        "https://api.example.test:8443/a/b"
    )
    assert span_url(httpx.URL("http://[::1]:81")) == "http://[::1]:81/"

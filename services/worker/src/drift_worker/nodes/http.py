"""HTTP: an outgoing call built from expressions, run as a regular activity with the node's retry policy.

The workflow half only schedules `drift.http_node` (see `drift_worker.http_activity`)
with the node's `timeoutMs` per attempt and its `retry` mapped onto Temporal's
retry policy; the activity renders the request with `prepare`, sends it through
the SSRF guard, and renders `output` with `$response` bound by `respond`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from drift_schema import expressions
from drift_schema.nodes import HttpNode
from drift_schema.nodes import RetryPolicy as NodeRetry
from drift_worker.model import NODE_FAILED, TENANT_BUSY, NodeResult, NodeTask
from drift_worker.nodes.base import Interpreter, Step, Visit, WorkflowNode, node_of, render_field

HTTP_ACTIVITY = "drift.http_node"
DEFAULT_HTTP_TIMEOUT = timedelta(seconds=30)
# While the tenant holds its share of the worker's activity slots, a call waits 0.5 s, 1 s, 2 s ... 5 s between
# tries, for about ten minutes in all; then the node fails.
BUSY_FIRST_DELAY_S = 0.5
BUSY_MAX_DELAY_S = 5.0
MAX_BUSY_WAITS = 120
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class HttpCall:
    """A rendered request: what the node's expressions asked for, before credentials and the guard."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    content_type: str | None = None


def _string_map(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise expressions.ExpressionError(f"{name}: must be an object, got {type(value).__name__}")
    return {str(key): item for key, item in value.items() if item is not None}


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def temporal_retry(policy: NodeRetry | None) -> RetryPolicy:
    """A node's `retry` as Temporal's policy; without one, a single attempt."""
    if policy is None:
        return RetryPolicy(maximum_attempts=1, non_retryable_error_types=[NODE_FAILED])
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=policy.initial_interval_ms),
        backoff_coefficient=policy.backoff_coefficient,
        maximum_interval=timedelta(milliseconds=policy.max_interval_ms) if policy.max_interval_ms else None,
        maximum_attempts=policy.max_attempts,
        non_retryable_error_types=[NODE_FAILED],
    )


class Http(WorkflowNode):
    type = "HTTP"

    def prepare(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> HttpCall:
        """Render method, url, headers, query, body and content type from the node's expressions."""
        node = node_of(task.node, HttpNode)
        request = node.request
        method = str(render_field("request/method", request.method, bindings, bounds) or "GET").upper()
        if method not in METHODS:
            raise expressions.ExpressionError(f"request/method: '{method}' is not an HTTP method a node may use")
        url = render_field("request/url", request.url, bindings, bounds)
        if not isinstance(url, str) or not url:
            raise expressions.ExpressionError("request/url: must evaluate to a non-empty string")
        headers = _string_map("request/headers", render_field("request/headers", request.headers, bindings, bounds))
        query = _string_map("request/query", render_field("request/query", request.query, bindings, bounds))
        body = render_field("request/body", request.body, bindings, bounds)
        content_type = render_field("request/contentType", request.content_type, bindings, bounds)
        if content_type is not None and not isinstance(content_type, str):
            raise expressions.ExpressionError("request/contentType: must evaluate to a string")
        if content_type is None and body is not None:
            content_type = TEXT if isinstance(body, str) else JSON
        return HttpCall(
            method=method,
            url=url,
            headers={name: _scalar_text(value) for name, value in headers.items()},
            query=query,
            body=body,
            content_type=content_type,
        )

    def evaluate(self, task: NodeTask, bindings: Mapping[str, Any], bounds: expressions.Bounds) -> NodeResult:
        """The request as it would be sent (the call itself is the HTTP activity's)."""
        return NodeResult(output=asdict(self.prepare(task, bindings, bounds)))

    def respond(
        self, task: NodeTask, bindings: Mapping[str, Any], response: dict[str, Any], bounds: expressions.Bounds
    ) -> Any:
        """The node's output: `output` rendered with `$response` bound (only here)."""
        node = node_of(task.node, HttpNode)
        return render_field("output", node.output, {**bindings, "response": response}, bounds)

    async def execute(self, run: Interpreter, visit: Visit) -> Step:
        node = node_of(visit.node, HttpNode)
        timeout = timedelta(milliseconds=node.timeout_ms) if node.timeout_ms else DEFAULT_HTTP_TIMEOUT
        busy = 0
        while True:
            try:
                result = await workflow.execute_activity(
                    HTTP_ACTIVITY,
                    run.task(visit),
                    result_type=NodeResult,
                    start_to_close_timeout=timeout,
                    retry_policy=temporal_retry(node.retry),
                    summary=run.summary(visit),
                )
                break
            except ActivityError as error:
                # The tenant holds its share of the worker's slots: wait on a timer, no attempt spent.
                if not _tenant_busy(error) or busy >= MAX_BUSY_WAITS:
                    raise
                busy += 1
                await workflow.sleep(min(BUSY_MAX_DELAY_S, BUSY_FIRST_DELAY_S * 2 ** (busy - 1)))
        return Step(next_node=visit.next_node, output=result.output)


def _tenant_busy(error: ActivityError) -> bool:
    cause = error.cause
    return isinstance(cause, ApplicationError) and cause.type == TENANT_BUSY

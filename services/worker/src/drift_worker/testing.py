"""Test runs (contract 8.3): the real interpreter with its outside world replaced.

The generic workflow hands a test run's visits here (`TestMode`) when its input carries a
`TestConfig`: a mocked instance does not execute (`output` completes it, `error` fails it,
`response` answers an HTTP node's call), an HTTP node without a mock fails rather than call out,
INSTRUCTION and ON_EVENT waits are answered at once from the request, timers fire at once, and no
event is published: the visits are kept as the run's trace instead. Expressions still run, in
local activities that publish nothing (`TestActivities`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from drift_schema import ids
from drift_schema.events import NodeEvent
from drift_schema.nodes import node_type
from drift_schema.testrun import MAX_TRACE_ENTRIES, MockResponse, TestConfig, TestTrace, TraceEntry
from drift_worker.activities import NodeActivities, failing_node, node_failed
from drift_worker.evaluator import HTTP_PREPARE, HTTP_RESPOND, NODE
from drift_worker.model import NodeResult, NodeTask
from drift_worker.nodes import NodeFailure, SelectionError, Step, Visit, check_selections

if TYPE_CHECKING:
    from drift_worker.nodes.base import Interpreter

TEST_EVALUATE = "drift.test_evaluate"
TEST_HTTP_RESPONSE = "drift.test_http_response"
MOCK_TIMEOUT = timedelta(seconds=10)
# Only a worker lost mid-evaluation retries: the canned answer itself fails the node at once.
MOCK_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5)


class MockedResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True, rename="camel", kw_only=True):
    """The mocked-HTTP activity's argument: the visit and the canned answer."""

    task: NodeTask
    response: MockResponse


class TestMode:
    """A test run's replacements, and its trace (visits in visit order)."""

    __test__ = False

    def __init__(self, config: TestConfig, carried: TestTrace | None = None) -> None:
        self.config = config
        self.entries: dict[int, TraceEntry] = dict(carried.entries) if carried else {}
        self.omitted = carried.omitted if carried else 0

    def trace(self) -> list[TraceEntry]:
        return [self.entries[number] for number in sorted(self.entries)]

    def carried(self) -> TestTrace:
        """The trace, for the run's continue-as-new input."""
        return TestTrace(entries=self.entries, omitted=self.omitted)

    def _keep(self, number: int, entry: TraceEntry) -> None:
        self.entries[number] = entry
        if len(self.entries) > MAX_TRACE_ENTRIES:
            del self.entries[min(self.entries)]
            self.omitted += 1

    def record(self, events: list[NodeEvent]) -> None:
        """Keep node events as trace entries instead of publishing them."""
        for event in events:
            visit = ids.visit_number_of(event.event_id)
            number = visit if visit is not None else len(self.entries) + 1
            entry = TraceEntry(
                instance_name=event.instance_name,
                node_type=event.node_type,
                status=event.status,
                output=event.output,
                error=event.error,
            )
            self._keep(number, entry)

    def completed(self, visit: Visit, output: Any) -> None:
        """A visit whose activity would have published its own COMPLETED event."""
        entry = TraceEntry(
            instance_name=visit.instance, node_type=node_type(visit.node), status="COMPLETED", output=output
        )
        self._keep(visit.number, entry)

    async def intercept(self, run: Interpreter, visit: Visit) -> Step | None:
        """The visit's step when the test replaces it; None when the node runs as usual."""
        mock = self.config.mocks.get(visit.instance)
        kind = node_type(visit.node)
        if mock is None:
            if kind == "HTTP":
                raise NodeFailure(
                    f"test run: HTTP node '{visit.instance}' has no mock, and a test run never calls out "
                    "(add mocks/" + visit.instance + " with an output, a response or an error)"
                )
            return None
        if mock.error is not None:
            raise NodeFailure(mock.error)
        if mock.response is not None:
            output = await run_mocked_response(run, visit, mock.response)
        else:
            output = None if mock.output is msgspec.UNSET else mock.output
        await run.completed(visit, output)
        return Step(next_node=visit.next_node, output=output)

    def selections(self, visit: Visit, view: Any) -> dict[str, Any]:
        """An INSTRUCTION's selections from the request, checked against its rendered view."""
        selected = self.config.selections.get(visit.instance)
        if selected is None:
            raise NodeFailure(f"test run: INSTRUCTION '{visit.instance}' has no entry in the request's selections")
        try:
            check_selections(view, selected)
        except SelectionError as error:
            raise NodeFailure(f"test run: selections for '{visit.instance}': {error}") from None
        return selected

    def event(self, visit: Visit, event: str) -> Any:
        """An ON_EVENT wait's payload from the request."""
        if event not in self.config.events:
            raise NodeFailure(
                f"test run: '{visit.instance}' waits for event '{event}', which the request's events do not hold"
            )
        return self.config.events[event]


async def run_mocked_response(run: Interpreter, visit: Visit, response: MockResponse) -> Any:
    """An HTTP node's output for a canned answer: rendered request, 2xx rule and `output`, no call."""
    result: NodeResult = await workflow.execute_local_activity(
        TEST_HTTP_RESPONSE,
        MockedResponse(task=run.task(visit), response=response),
        result_type=NodeResult,
        start_to_close_timeout=MOCK_TIMEOUT,
        retry_policy=MOCK_RETRY,
    )
    return result.output


class TestActivities:
    """Node evaluation for test runs: the same evaluator pool and bounds as real runs, nothing published."""

    __test__ = False

    def __init__(self, nodes: NodeActivities) -> None:
        self.nodes = nodes

    async def _evaluate(
        self, op: str, task: NodeTask, timeout_ms: int, response: dict[str, Any] | None = None
    ) -> NodeResult:
        nodes = self.nodes
        with failing_node(f"evaluating '{task.instance}'"):
            return await nodes.pool.evaluate(
                op, task, nodes.bounds_for(task), nodes.limits.max_output_bytes, timeout_ms, response
            )

    @activity.defn(name=TEST_EVALUATE)
    async def evaluate(self, task: NodeTask) -> NodeResult:
        """`drift.evaluate_node` without its announcement."""
        return await self._evaluate(NODE, task, task.node.timeout_ms or 0)

    @activity.defn(name=TEST_HTTP_RESPONSE)
    async def http_response(self, mocked: MockedResponse) -> NodeResult:
        """Render the request (its expressions must hold), apply the 2xx rule to the canned answer, render `output`."""
        task = mocked.task
        timeout_ms = task.node.timeout_ms or 0
        call = (await self._evaluate(HTTP_PREPARE, task, timeout_ms)).output or {}
        status = mocked.response.status
        if not 200 <= status < 300:
            raise node_failed(f"{call.get('method')} {call.get('url')} answered HTTP {status} (mocked)")
        answer = {
            "status": status,
            "headers": {name.lower(): value for name, value in mocked.response.headers.items()},
            "body": mocked.response.body,
        }
        return await self._evaluate(HTTP_RESPOND, task, timeout_ms, answer)


def testing_activities(nodes: NodeActivities) -> list[Callable[..., Any]]:
    """The test-run activities a worker registers next to the node activities."""
    tests = TestActivities(nodes)
    return [tests.evaluate, tests.http_response]

"""Test runs (contract 8.3) and retries (8.2): request bodies, what rides into the run, what comes back.

A test run is a real run of the generic workflow whose outside world is replaced: `TestConfig`
rides in its `RunInput` and tells the interpreter which instances are mocked, which INSTRUCTION
selections and ON_EVENT payloads to answer with at once, and that timers fire at once. A test run
publishes no events (so nothing stores, lists or delivers it) and keeps its trace in memory; its
result carries that trace.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from drift_schema.api import SyncTimeoutMs, WorkflowId, WorkflowRef
from drift_schema.base import Message, Shape
from drift_schema.statuses import WorkflowStatus
from drift_schema.workflow import WorkflowDefinition

MIN_TEST_TIMEOUT_MS = 60_000
"""A test run answers when it ends; the caller's `syncTimeoutMs` never makes it wait less than this."""
MAX_TEST_TIMEOUT_MS = 600_000
TEST_ID_PREFIX = "test-"
"""Public ids of test runs start with this, so they never take the id of an ordinary run."""


class MockResponse(Shape, frozen=True):
    """A canned HTTP answer: it goes through the node's `output` expression and its 2xx rule."""

    status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 200
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body: Any = None


class Mock(Shape, frozen=True):
    """What one instance does in a test run instead of its work: exactly one of the three fields.

    `output`: the visit completes with this output (its node is not executed). `response`: HTTP nodes
    only, the answer its call would have had. `error`: the visit fails with this message.
    """

    output: Any | msgspec.UnsetType = msgspec.UNSET
    response: MockResponse | None = None
    error: str | None = None

    @property
    def kinds(self) -> list[str]:
        """Which of the three fields are set (a valid mock has exactly one)."""
        kinds = ["output"] if self.output is not msgspec.UNSET else []
        if self.response is not None:
            kinds.append("response")
        if self.error is not None:
            kinds.append("error")
        return kinds


class TestRequest(Shape, frozen=True):
    """`POST /v3/workflow/test`: a stored definition (`workflow`) or one given here (`definition`)."""

    __test__ = False  # not a pytest class

    workflow: WorkflowRef | None = None
    definition: WorkflowDefinition | None = None
    workflow_id: WorkflowId | None = None
    params: Any = None
    issue_detail: Any = None
    customer: Any = None
    order_details: Any = None
    callback_url: str | None = None
    """Accepted like start's, and never called: test runs send no webhooks."""
    sync_timeout_ms: SyncTimeoutMs | None = None
    mocks: dict[str, Mock] = msgspec.field(default_factory=dict)
    selections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    events: dict[str, Any] = msgspec.field(default_factory=dict)


def mock_faults(mocks: dict[str, Mock]) -> dict[str, str]:
    """Mocks that do not hold exactly one of `output`, `response` or `error`: {instance: message}."""
    return {
        instance: "a mock holds exactly one of output, response or error"
        for instance, mock in mocks.items()
        if len(mock.kinds) != 1
    }


class TestConfig(Message, frozen=True):
    """The outside world of a test run, carried in its `RunInput` (and handed to its CHILD runs)."""

    __test__ = False

    mocks: dict[str, Mock] = msgspec.field(default_factory=dict)
    selections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    events: dict[str, Any] = msgspec.field(default_factory=dict)


class TraceEntry(Message, frozen=True):
    """One node visit of a test run."""

    instance_name: str
    node_type: str
    status: str
    output: Any = None
    error: str | None = None


MAX_TRACE_ENTRIES = 1_000
"""A test run's trace keeps its latest visits up to this many (a long loop must not outgrow Temporal's payloads)."""


class TestTrace(Message, frozen=True):
    """A test run's trace as it is carried across continue-as-new."""

    __test__ = False

    entries: dict[int, TraceEntry] = msgspec.field(default_factory=dict)
    """Trace entries by visit number."""
    omitted: int = 0


class TestResponse(Message, frozen=True):
    """`POST /v3/workflow/test`'s answer once the run has ended."""

    __test__ = False

    workflow_id: str
    workflow_status: WorkflowStatus
    disposition: Any = None
    error_message: str | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    trace: list[TraceEntry] = msgspec.field(default_factory=list)
    trace_omitted: int = 0
    """Visits left out of `trace`, the earliest first: it keeps a test run's latest `MAX_TRACE_ENTRIES` visits."""


class RetryRequest(Shape, frozen=True):
    """`PUT /v3/workflow/retry/{workflowId}`: every field optional."""

    from_node: str | None = None
    callback_url: str | None = None
    sync_timeout_ms: SyncTimeoutMs | None = None


RETRY_QUERY = "retryPoint"
"""The query a closed run answers with what a retry needs (`RetryPoint`)."""


class RetryQuery(Message, frozen=True):
    """The `retryPoint` query's argument: the node to retry from (None: the run's own choice)."""

    from_node: str | None = None


class RetryPoint(Message, frozen=True):
    """Where and how a closed run would start again (contract 8.2).

    `node` is `from_node` when given, else the node that failed (the first failure, not one on
    the failure path), else the main-path node the run was at. `context` is `$global` as it was
    before `node`'s latest visit; a node the run's latest execution never visited starts with
    `$global` as it was before the failed (or current) node. `skip_branches` names the PARALLEL
    branches that completed in that node's visit: a retry keeps their outputs and does not run them.
    """

    status: WorkflowStatus
    node: str | None
    context: dict[str, Any]
    seq: int
    visits: int
    skip_branches: list[str] = msgspec.field(default_factory=list)
    callback_url: str | None = None

"""Test runs (contract 8.3): a definition run on the real engine with its outside world replaced.

The gateway pins the definition itself (a stored one through the dsl-store, or the request's own,
its referenced nodes read from the dsl-store and nothing stored), checks the request against it,
starts the generic workflow directly on Temporal with a `TestConfig` and waits for its result.
No command goes over NATS and the run publishes no event, so nothing stores, lists (its
`DriftKind` is `test`) or delivers it; its public id starts with `test-`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from litestar.datastructures import State
from litestar.di import Provide
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from drift_client import DriftError, StoreClient, UnreachableError
from drift_gateway.errors import Conflict, Invalid, NotFound, Unavailable
from drift_gateway.runtime import Runtime
from drift_runtime.search_attributes import run_attributes
from drift_runtime.temporal import run_result
from drift_schema import codec, search
from drift_schema.api import ProblemError
from drift_schema.commands import ThreadContext
from drift_schema.graph import check_workflow
from drift_schema.nodes import NODE_TYPES, NodeDefinition, node_type, resolve_children
from drift_schema.pointer import escape
from drift_schema.run import STATE_QUERY, WORKFLOW_NAME, RunInput, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus
from drift_schema.testrun import (
    MAX_TEST_TIMEOUT_MS,
    MIN_TEST_TIMEOUT_MS,
    TEST_ID_PREFIX,
    TestConfig,
    TestRequest,
    TestResponse,
    mock_faults,
)
from drift_schema.workflow import WorkflowDefinition

log = structlog.get_logger("drift.gateway")

RUN_MARGIN = timedelta(seconds=30)
"""Temporal ends a test run this long after the caller's wait, should the gateway be gone by then."""
QUERY_TIMEOUT = timedelta(seconds=5)
MAX_WORKFLOW_ID = 128


@contextlib.contextmanager
def _store_faults() -> Iterator[None]:
    """A dsl-store that cannot answer (or refuses the service token) is the caller's 503: retry shortly."""
    try:
        yield
    except UnreachableError as error:
        log.warning("gateway.dsl_store_unavailable", error=str(error))
        raise Unavailable("the dsl-store is unavailable; retry shortly") from None
    except DriftError as error:
        log.warning("gateway.dsl_store_refused", status=error.status, error=str(error))
        raise Unavailable(f"the dsl-store answered {error.status}; retry shortly") from None


class TestRunner:
    """Pins, checks, runs and awaits one test run for one tenant."""

    __test__ = False

    def __init__(self, runtime: Runtime, task_queue: str, tenant: str) -> None:
        if runtime.store is None:
            raise Unavailable("test runs need the dsl-store (DRIFT_SERVICE_TOKEN is not set)")
        self.runtime = runtime
        self.task_queue = task_queue
        self.store: StoreClient = runtime.store
        self.tenant = tenant

    async def run(self, body: TestRequest, thread_context: ThreadContext) -> TestResponse:
        definition = await self._definition(body)
        children = await resolve_children(definition, self._stored)
        self._check_request(body, definition, children)
        workflow_id = _test_id(body.workflow_id)
        run = RunInput(
            tenant=self.tenant,
            workflow_id=workflow_id,
            definition=definition,
            context={
                "params": body.params,
                "issueDetail": body.issue_detail,
                "customer": body.customer,
                "orderDetails": body.order_details,
                "threadContext": codec.to_builtins(thread_context),
            },
            command_id=uuid.uuid4().hex,
            enums=await self._enums(),
            children=children,
            test=TestConfig(mocks=body.mocks, selections=body.selections, events=body.events),
        )
        timeout_ms = min(max(body.sync_timeout_ms or 0, MIN_TEST_TIMEOUT_MS), MAX_TEST_TIMEOUT_MS)
        handle = await self._start(run, timeout_ms)
        log.info("gateway.test_started", definition_id=definition.id, mocks=len(body.mocks))
        return await self._outcome(handle, workflow_id, timeout_ms)

    # ------------------------------------------------------------ definitions

    async def _stored(self, definition_id: str, version: str) -> WorkflowDefinition | None:
        """The stored workflow at `version` with its nodes inlined; None when it has no such version."""
        with _store_faults():
            return await self.store.workflow(definition_id, version, enriched=True, tenant=self.tenant)

    async def _node(self, node_id: str, version: str) -> NodeDefinition | None:
        with _store_faults():
            return await self.store.node(node_id, version, tenant=self.tenant)

    async def _enums(self) -> dict[str, Any]:
        with _store_faults():
            return await self.store.enums(tenant=self.tenant)

    async def _definition(self, body: TestRequest) -> WorkflowDefinition:
        if (body.workflow is None) == (body.definition is None):
            raise Invalid(
                "a test names a stored workflow or carries a definition",
                errors=[ProblemError(pointer="", message="give exactly one of 'workflow' and 'definition'")],
            )
        if body.workflow is not None:
            ref = body.workflow
            stored = await self._stored(ref.id, ref.version)
            if stored is None:
                raise NotFound(f"workflow definition '{ref.id}' version '{ref.version}' not found")
            return stored
        assert body.definition is not None
        return await self._inlined(body.definition)

    async def _inlined(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        """The request's definition with every referenced node read from the store; 422 with pointers."""
        errors: list[ProblemError] = []
        states = dict(definition.states)
        for name, state in definition.states.items():
            if state.node_definition is not None or state.resource_id is None:
                continue
            node = await self._node(state.resource_id, state.resource_version)
            if node is None:
                errors.append(
                    ProblemError(
                        pointer=f"/definition/states/{escape(name)}/resourceId",
                        message=f"node '{state.resource_id}' version '{state.resource_version}' not found",
                    )
                )
                continue
            states[name] = msgspec.structs.replace(state, node_definition=node)
        resolved = msgspec.structs.replace(definition, states=states)
        errors += [
            ProblemError(pointer=f"/definition{error.pointer}", message=error.message)
            for error in check_workflow(resolved)
        ]
        if errors:
            raise Invalid("the definition is not valid", errors=errors)
        return resolved

    # ---------------------------------------------------------------- request

    def _check_request(
        self, body: TestRequest, definition: WorkflowDefinition, children: dict[str, WorkflowDefinition]
    ) -> None:
        """Mocks and selections must name instances that exist and fit their node type."""
        types: dict[str, str] = {}
        for source in (*children.values(), definition):
            for name, state in source.states.items():
                if state.node_definition is not None:
                    types[name] = node_type(state.node_definition)
        errors: list[ProblemError] = []
        faults = mock_faults(body.mocks)
        for instance, mock in body.mocks.items():
            pointer = f"/mocks/{escape(instance)}"
            kind = types.get(instance)
            if kind is None:
                errors.append(ProblemError(pointer=pointer, message=f"'{instance}' is not a state of the workflow"))
            elif instance in faults:
                errors.append(ProblemError(pointer=pointer, message=faults[instance]))
            elif NODE_TYPES[kind].steers:  # a mock cannot stand in for a node that decides where the run goes
                errors.append(ProblemError(pointer=pointer, message=f"a {kind} node decides the path: it runs as is"))
            elif mock.response is not None and kind != "HTTP":
                errors.append(
                    ProblemError(pointer=f"{pointer}/response", message=f"'{instance}' is a {kind} node, not HTTP")
                )
        for instance in body.selections:
            pointer = f"/selections/{escape(instance)}"
            kind = types.get(instance)
            if kind != "INSTRUCTION":
                what = "not a state of the workflow" if kind is None else f"a {kind} node, not INSTRUCTION"
                errors.append(ProblemError(pointer=pointer, message=f"'{instance}' is {what}"))
        if errors:
            raise Invalid("the test request does not fit the workflow", errors=errors)

    # ------------------------------------------------------------------- run

    async def _start(self, run: RunInput, timeout_ms: int) -> WorkflowHandle[Any, Any]:
        temporal = self.runtime.temporal
        definition = run.definition
        try:
            return await temporal.start_workflow(
                WORKFLOW_NAME,
                run,
                id=temporal_id(self.tenant, run.workflow_id),
                result_type=RunSnapshot,
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                execution_timeout=timedelta(milliseconds=timeout_ms) + RUN_MARGIN,
                memo={"tenant": self.tenant, "definitionId": definition.id, "kind": search.KIND_TEST},
                search_attributes=run_attributes(self.tenant, definition.id, definition.version, kind=search.KIND_TEST),
            )
        except WorkflowAlreadyStartedError:
            raise Conflict(f"test run '{run.workflow_id}' is already running") from None
        except RPCError as error:
            log.warning("gateway.test_not_started", error=error.message)
            raise Unavailable("temporal is unavailable; retry shortly") from None

    async def _outcome(self, handle: WorkflowHandle[Any, Any], workflow_id: str, timeout_ms: int) -> TestResponse:
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                snapshot = await run_result(handle)
        except TimeoutError:
            # Ended here rather than left running: the answer carries the trace so far.
            snapshot = await self._state(handle, workflow_id)
            try:
                await handle.terminate(reason="the test run did not end in time")
            except RPCError as error:  # it ended meanwhile, or Temporal's execution timeout will end it
                log.info("gateway.test_not_terminated", error=error.message)
            return _response(
                snapshot,
                WorkflowStatus.TERMINATED,
                f"the test run did not end within {timeout_ms / 1000:g} s (waits on a real outside world?)",
            )
        except WorkflowFailureError as error:
            return TestResponse(
                workflow_id=workflow_id, workflow_status=WorkflowStatus.FAILED, error_message=str(error)
            )
        except RPCError as error:
            log.warning("gateway.test_unanswered", error=error.message)
            raise Unavailable("temporal is unavailable; the test run's outcome is unknown") from None
        return _response(snapshot, snapshot.workflow_status, snapshot.error_message)

    async def _state(self, handle: WorkflowHandle[Any, Any], workflow_id: str) -> RunSnapshot:
        try:
            state: RunSnapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=QUERY_TIMEOUT)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError) as error:
            # The run's state is a courtesy here: the answer is TERMINATED either way.
            log.info("gateway.test_state_unanswered", error=str(error))
            return RunSnapshot(workflow_id=workflow_id, workflow_status=WorkflowStatus.TERMINATED)
        return state


def _response(snapshot: RunSnapshot, status: WorkflowStatus, error_message: str | None) -> TestResponse:
    return TestResponse(
        workflow_id=snapshot.workflow_id,
        workflow_status=status,
        disposition=snapshot.disposition,
        error_message=error_message,
        context=snapshot.context,
        trace=snapshot.trace or [],
        trace_omitted=snapshot.trace_omitted,
    )


def _test_id(requested: str | None) -> str:
    """`test-<requested or random>`: a test run never takes an ordinary run's id."""
    return (TEST_ID_PREFIX + (requested or uuid.uuid4().hex))[:MAX_WORKFLOW_ID]


class TestRuns:
    """The controller's dependency: a `TestRunner` per call, for the caller's tenant."""

    __test__ = False

    def __init__(self, runtime: Runtime, task_queue: str) -> None:
        self.runtime = runtime
        self.task_queue = task_queue

    def runner(self, tenant: str) -> TestRunner:
        return TestRunner(self.runtime, self.task_queue, tenant)


def testruns_dependency(task_queue: str) -> Provide:
    """`test_runs` for the controllers, over the gateway's clients and the workers' task queue."""

    def provide(state: State) -> TestRuns:
        return TestRuns(state.runtime, task_queue)

    return Provide(provide, sync_to_thread=False)

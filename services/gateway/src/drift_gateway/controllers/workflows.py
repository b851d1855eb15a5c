"""The `/v3/workflow` runtime API (contract 5): commands out over NATS, answers back over Redis."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
import structlog
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from nats.errors import Error as NatsError
from redis.exceptions import RedisError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from drift_client.stream import replay
from drift_gateway.errors import Conflict, Invalid, NotFound, Unavailable, from_decode_error, from_rejection
from drift_gateway.limits import Fairness
from drift_gateway.runtime import Runtime
from drift_gateway.waiters import SyncCall, response_of
from drift_runtime import metrics
from drift_runtime.messaging import publish
from drift_runtime.openapi import json_request
from drift_runtime.ssrf import SsrfRefused
from drift_runtime.web import problem_responses, tenant_of
from drift_schema import codec, subjects
from drift_schema.api import (
    DEFAULT_SYNC_TIMEOUT_MS,
    AcceptedResponse,
    DisconnectedRequest,
    ProblemError,
    ResumeRequest,
    StartRequest,
    TerminateResponse,
    Timeline,
    TimelineEntry,
    WorkflowDetail,
    WorkflowResponse,
)
from drift_schema.commands import EventCommand, ResumeCommand, StartCommand, TerminateCommand, ThreadContext
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.headers import CLIENT_ID, USER_ID, WORKFLOW_ID
from drift_schema.ids import is_event_name, is_workflow_id
from drift_schema.run import (
    DISCONNECTED_UPDATE,
    DisconnectedInput,
    DisconnectedResult,
    temporal_id,
)
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.gateway")

QUERY_TIMEOUT = timedelta(seconds=5)
DISCONNECTED_TIMEOUT = timedelta(seconds=30)
ACCEPTED = {
    HTTP_202_ACCEPTED: ResponseSpec(
        data_container=WorkflowResponse,
        description="Accepted: async with callbackUrl, or the sync wait ran out (the state so far)",
        generate_examples=False,
    )
}
"""The other success answer of every command route (contract 5); errors are documented by web.ProblemResponses."""
ANSWERED = {
    HTTP_200_OK: ResponseSpec(
        data_container=WorkflowResponse,
        description="The run's first stable state caused by this command (sync)",
        generate_examples=False,
    )
}
"""The 200 of every command route: the handlers return a `Response`, so the type is named here."""
COMMAND_RESPONSES = {**ANSWERED, **ACCEPTED, **problem_responses(429)}
"""Command routes also answer 429: a tenant over its starts per second, open sync calls or concurrent runs."""
EXISTS_TIMEOUT = timedelta(seconds=2)


def _decode(body: bytes, into: type[Any]) -> Any:
    try:
        codec.check_depth(body)
        return codec.decode(body, into)
    except codec.DecodeError as error:
        raise from_decode_error(error) from None


def thread_context_of(request: Request[Any, Any, Any]) -> ThreadContext:
    """Who is calling, as the caller's headers say: kept in the run's `threadContext`."""
    return ThreadContext(client_id=request.headers.get(CLIENT_ID), user_id=request.headers.get(USER_ID))


def _checked_id(workflow_id: str) -> str:
    """A workflow id from a path; one that could never have been created cannot exist.

    Checked exactly (`fullmatch`): an id with a trailing newline would become an invalid NATS subject.
    """
    if not is_workflow_id(workflow_id):
        raise NotFound("workflow not found: not a valid workflowId")
    return workflow_id


async def _must_exist(runtime: Runtime, tenant: str, workflow_id: str) -> None:
    """404 at once for a run Temporal does not know, before any command is sent.

    A resume or event of an unknown run would otherwise wait for its REJECTED event over Redis,
    and answer 202 CREATED at its sync timeout when Redis is slow. When Temporal cannot answer
    the command goes on: the dispatcher still rejects it if the run is unknown.
    """
    try:
        await runtime.temporal.get_workflow_handle(temporal_id(tenant, workflow_id)).describe(
            rpc_timeout=EXISTS_TIMEOUT
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"workflow '{workflow_id}' not found") from None
        log.info("gateway.existence_unknown", error=str(error))
    except TimeoutError:
        log.info("gateway.existence_unknown", error="timeout")


async def _check_callback(runtime: Runtime, callback_url: str | None, pointer: str = "/callbackUrl") -> None:
    """Refuse a callbackUrl the SSRF guard would refuse at delivery, before anything runs."""
    if callback_url is None:
        return
    try:
        await runtime.guard.vet(callback_url)
    except SsrfRefused as refused:
        raise Invalid(
            "callbackUrl is not allowed", errors=[ProblemError(pointer=pointer, message=str(refused))]
        ) from None


def _timeline_entry(event: NodeEvent) -> TimelineEntry:
    duration = None
    if event.started_at and event.finished_at:
        started = datetime.fromisoformat(event.started_at)
        finished = datetime.fromisoformat(event.finished_at)
        duration = round((finished - started).total_seconds() * 1000)
    return TimelineEntry(
        instance_name=event.instance_name,
        node_type=event.node_type,
        status=event.status,
        started_at=event.started_at,
        finished_at=event.finished_at,
        duration_ms=duration,
        attempt=event.attempt,
        error=event.error,
    )


def _settled_for(state: WorkflowResponse, kind: str, command_id: str) -> bool:
    """Whether a state found at the sync deadline answers the caller: stable, and after its command.

    A status event names the command that led to it; a state read from Temporal does not, and
    counts only for a start (the run exists because of it). A resume's own WAITING-before state
    never counts, so a resume not yet applied still answers 202.
    """
    if not state.workflow_status.is_stable:
        return False
    if isinstance(state, WorkflowEvent) and state.command_id is not None:
        return state.command_id == command_id or kind == "start"
    return kind == "start"


class WorkflowController(Controller):
    path = "/v3/workflow"
    tags = ["runtime"]

    @post(
        "/start",
        status_code=HTTP_200_OK,
        summary="Start a run (sync, or async with callbackUrl)",
        responses=COMMAND_RESPONSES,
        opt=json_request(StartRequest, "the definition to run, the run's id and params, sync or callbackUrl"),
    )
    async def start(self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime]) -> Response[Any]:
        tenant = tenant_of(request)
        body: StartRequest = _decode(await request.body(), StartRequest)
        workflow_id = body.workflow_id or uuid.uuid4().hex
        await _check_callback(runtime, body.callback_url)
        # After every check of the body: a refused request spends no start.
        runtime.fairness.take_start(tenant)
        command = StartCommand.from_request(body, workflow_id, thread_context_of(request))
        return await send_command(
            runtime, tenant, "start", workflow_id, command, body.callback_url, body.sync_timeout_ms
        )

    @put(
        "/resume/{workflow_id:str}",
        status_code=HTTP_200_OK,
        summary="Resume a WAITING run with selections",
        responses=COMMAND_RESPONSES,
        opt=json_request(ResumeRequest, "the selections answering the run's view"),
    )
    async def resume(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], workflow_id: FromPath[str]
    ) -> Response[Any]:
        tenant = tenant_of(request)
        _checked_id(workflow_id)
        body: ResumeRequest = _decode(await request.body(), ResumeRequest)
        if not body.view_response.selected_options:
            pointer = "/viewResponse/selectedOptions"
            raise Invalid(
                "a resume must select at least one option",
                errors=[ProblemError(pointer=pointer, message="no option selected")],
            )
        await _check_callback(runtime, body.callback_url)
        await _must_exist(runtime, tenant, workflow_id)
        command = ResumeCommand(
            workflow_id=workflow_id, view_response=body.view_response, callback_url=body.callback_url
        )
        return await send_command(
            runtime, tenant, "resume", workflow_id, command, body.callback_url, body.sync_timeout_ms
        )

    @get("/{workflow_id:str}", summary="A run's state and context")
    async def get_run(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], workflow_id: FromPath[str]
    ) -> WorkflowDetail:
        return await runtime.run_states().get(tenant_of(request), _checked_id(workflow_id))

    @delete(
        "/terminate/{workflow_id:str}",
        status_code=HTTP_200_OK,
        summary="Terminate a run",
        media_type="application/json",
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=TerminateResponse, description="The run is terminated", generate_examples=False
            ),
            **ACCEPTED,
        },
    )
    async def terminate(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        workflow_id: FromPath[str],
        reason: FromQuery[str | None] = None,
    ) -> Response[Any]:
        tenant = tenant_of(request)
        command = TerminateCommand(workflow_id=_checked_id(workflow_id), reason=reason)
        answer = await send_command(runtime, tenant, "terminate", workflow_id, command, None, None)
        if answer.status_code != HTTP_200_OK:
            return answer
        return Response(TerminateResponse(workflow_id=workflow_id, workflow_status=WorkflowStatus.TERMINATED))

    @post(
        "/{workflow_id:str}/event/{event:str}",
        status_code=HTTP_200_OK,
        summary="Deliver an ON_EVENT event",
        responses=COMMAND_RESPONSES,
        opt=json_request(Any, "the event's payload: any JSON, or no body", required=False),
    )
    async def event(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        workflow_id: FromPath[str],
        event: FromPath[str],
    ) -> Response[Any]:
        tenant = tenant_of(request)
        _checked_id(workflow_id)
        if not is_event_name(event):
            raise NotFound(f"run '{workflow_id}' does not wait for an event of that name")
        raw = await request.body()
        try:
            codec.check_depth(raw)
            payload = codec.parse(raw) if raw.strip() else None
        except codec.DecodeError as error:
            raise Invalid("the body is not JSON", errors=[error.as_problem_error()]) from None
        await _must_exist(runtime, tenant, workflow_id)
        command = EventCommand(workflow_id=workflow_id, event=event, payload=payload)
        return await send_command(runtime, tenant, "event", workflow_id, command, None, None)

    @post(
        "/{workflow_id:str}/disconnected-node/execute",
        status_code=HTTP_200_OK,
        summary="Run a disconnected node against the run's context",
        opt=json_request(DisconnectedRequest, "the disconnected state to run and its parameters"),
    )
    async def disconnected(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], workflow_id: FromPath[str]
    ) -> DisconnectedResult:
        tenant = tenant_of(request)
        body: DisconnectedRequest = _decode(await request.body(), DisconnectedRequest)
        handle = runtime.temporal.get_workflow_handle(temporal_id(tenant, _checked_id(workflow_id)))
        update = DisconnectedInput(node=body.node, parameters=body.parameters, command_id=uuid.uuid4().hex)
        # Not a command: it moves nothing and answers with a result, so it goes to the run directly.
        try:
            return await handle.execute_update(
                DISCONNECTED_UPDATE, update, result_type=DisconnectedResult, rpc_timeout=DISCONNECTED_TIMEOUT
            )
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(failure)
            if isinstance(cause, ApplicationError) and cause.type == "NOT_FOUND":
                raise NotFound(message) from None
            raise Conflict(message) from None
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"workflow '{workflow_id}' not found or not running") from None
            raise Unavailable("temporal is unavailable; retry shortly") from None

    @get("/{workflow_id:str}/timeline", summary="The node events of a run, in order, with timings")
    async def timeline(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], workflow_id: FromPath[str]
    ) -> Timeline:
        tenant = tenant_of(request)
        subject = subjects.node_events(tenant, _checked_id(workflow_id))
        entries: list[TimelineEntry] = []
        async for msg in replay(runtime.js, subject, subjects.EVENT_STREAM):
            try:
                entries.append(_timeline_entry(codec.decode_with(codec.node_event_decoder, msg.data)))
            except (codec.DecodeError, ValueError) as error:
                # One unreadable event must not cost the caller the rest of the timeline.
                log.warning("gateway.node_event_undecodable", error=str(error))
        if not entries:
            try:
                await runtime.temporal.get_workflow_handle(temporal_id(tenant, workflow_id)).describe(
                    rpc_timeout=QUERY_TIMEOUT
                )
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    raise NotFound(f"workflow '{workflow_id}' not found") from None
                raise Unavailable("temporal is unavailable; retry shortly") from None
        return Timeline(workflow_id=workflow_id, nodes=entries)


async def send_command(
    runtime: Runtime,
    tenant: str,
    kind: str,
    workflow_id: str,
    command: msgspec.Struct,
    callback_url: str | None,
    sync_timeout_ms: int | None,
) -> Response[Any]:
    """Publish a run command and answer as start does: async 202, or the sync wait and its outcome."""
    command_id = uuid.uuid4().hex
    subject = subjects.command(tenant, kind)
    headers = {WORKFLOW_ID: workflow_id}
    structlog.contextvars.bind_contextvars(workflow_id=workflow_id)
    try:
        if callback_url is not None:
            await publish(runtime.js, subject, command, command_id, headers=headers)
            log.info("gateway.command_accepted", kind=kind, mode="async")
            accepted = AcceptedResponse(workflow_id=workflow_id, workflow_status=WorkflowStatus.CREATED)
            return Response(accepted, status_code=HTTP_202_ACCEPTED)
        timeout_s = (sync_timeout_ms if sync_timeout_ms is not None else DEFAULT_SYNC_TIMEOUT_MS) / 1000
        call = SyncCall(runtime.redis, runtime.nats, runtime.js, tenant, workflow_id)
        fairness: Fairness = runtime.fairness
        with fairness.sync_waiter(tenant):
            metrics.sync_waiters.inc()
            try:
                # Raises only before the command is published: after that a failure is a None (202),
                # never a 503 that would have the client send the command twice.
                event = await call.send(
                    lambda: publish(runtime.js, subject, command, command_id, headers=headers),
                    command_id,
                    timeout_s,
                )
            finally:
                metrics.sync_waiters.dec()
        if event is None:
            metrics.sync_timeouts.labels(kind).inc()
            current = await call.best_known(runtime.temporal)
            log.info("gateway.sync_timeout", kind=kind, degraded=call.degraded)
            if current is not None and _settled_for(current, kind, command_id):
                # Stable and caused by this command (or the run this start made): the contract's 200.
                return Response(response_of(current), status_code=HTTP_200_OK)
            pending = (
                response_of(current)
                if current is not None
                else WorkflowResponse(workflow_id=workflow_id, workflow_status=WorkflowStatus.CREATED)
            )
            return Response(pending, status_code=HTTP_202_ACCEPTED)
    except (RedisError, NatsError, TimeoutError) as error:
        log.warning("gateway.dependency_unavailable", kind=kind, error=str(error))
        raise Unavailable("a dependency is unavailable; retry shortly", retry_after_s=2) from None
    if event.workflow_status == WorkflowStatus.REJECTED:
        log.info("gateway.command_rejected", kind=kind, code=event.error_code, seq=event.seq)
        raise from_rejection(event.error_code, event.error_message)
    log.info("gateway.command_answered", kind=kind, status=event.workflow_status, seq=event.seq)
    return Response(response_of(event), status_code=HTTP_200_OK)

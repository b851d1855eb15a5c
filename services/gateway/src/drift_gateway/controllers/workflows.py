"""The `/v3/workflow` runtime API (contract 5): commands out over NATS, answers back over Redis."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_200_OK
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from drift_client.stream import replay
from drift_gateway.commands import check_callback, must_exist, send_command
from drift_gateway.controllers.common import ACCEPTED, COMMAND_RESPONSES, checked_id, decode_body, thread_context_of
from drift_gateway.errors import Conflict, Invalid, NotFound, Unavailable
from drift_gateway.run_state import known_to_temporal
from drift_gateway.runtime import Runtime
from drift_runtime.openapi import json_request
from drift_runtime.web import tenant_of
from drift_schema import codec, subjects
from drift_schema.api import (
    DisconnectedRequest,
    ProblemError,
    ResumeRequest,
    StartRequest,
    TerminateResponse,
    Timeline,
    TimelineEntry,
    WorkflowDetail,
)
from drift_schema.commands import EventCommand, ResumeCommand, StartCommand, TerminateCommand
from drift_schema.events import NodeEvent
from drift_schema.ids import is_event_name
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
        body: StartRequest = decode_body(await request.body(), StartRequest)
        workflow_id = body.workflow_id or uuid.uuid4().hex
        await check_callback(runtime, body.callback_url)
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
        checked_id(workflow_id)
        body: ResumeRequest = decode_body(await request.body(), ResumeRequest)
        if not body.view_response.selected_options:
            pointer = "/viewResponse/selectedOptions"
            raise Invalid(
                "a resume must select at least one option",
                errors=[ProblemError(pointer=pointer, message="no option selected")],
            )
        await check_callback(runtime, body.callback_url)
        await must_exist(runtime, tenant, workflow_id)
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
        return await runtime.run_states().get(tenant_of(request), checked_id(workflow_id))

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
        command = TerminateCommand(workflow_id=checked_id(workflow_id), reason=reason)
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
        checked_id(workflow_id)
        if not is_event_name(event):
            raise NotFound(f"run '{workflow_id}' does not wait for an event of that name")
        raw = await request.body()
        try:
            codec.check_depth(raw)
            payload = codec.parse(raw) if raw.strip() else None
        except codec.DecodeError as error:
            raise Invalid("the body is not JSON", errors=[error.as_problem_error()]) from None
        await must_exist(runtime, tenant, workflow_id)
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
        body: DisconnectedRequest = decode_body(await request.body(), DisconnectedRequest)
        handle = runtime.temporal.get_workflow_handle(temporal_id(tenant, checked_id(workflow_id)))
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
        subject = subjects.node_events(tenant, checked_id(workflow_id))
        entries: list[TimelineEntry] = []
        async for msg in replay(runtime.js, subject, subjects.EVENT_STREAM):
            try:
                entries.append(_timeline_entry(codec.decode_with(codec.node_event_decoder, msg.data)))
            except (codec.DecodeError, ValueError) as error:
                # One unreadable event must not cost the caller the rest of the timeline.
                log.warning("gateway.node_event_undecodable", error=str(error))
        if not entries:
            known = await known_to_temporal(runtime.temporal, tenant, workflow_id, QUERY_TIMEOUT)
            if known is None:
                raise Unavailable("temporal is unavailable; retry shortly")
            if not known:
                raise NotFound(f"workflow '{workflow_id}' not found")
        return Timeline(workflow_id=workflow_id, nodes=entries)

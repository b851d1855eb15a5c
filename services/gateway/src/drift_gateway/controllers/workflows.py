"""The `/v3/workflow` runtime API (contract 5): commands out over NATS, answers back over Redis."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from drift_runtime.messaging import publish
from drift_runtime.web import tenant_of
from drift_schema import codec, subjects
from drift_schema.api import (
    DEFAULT_SYNC_TIMEOUT_MS,
    AcceptedResponse,
    ResumeRequest,
    StartRequest,
    WorkflowDetail,
    WorkflowResponse,
)
from drift_schema.commands import ResumeCommand, StartCommand, ThreadContext
from drift_schema.run import STATE_QUERY, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus
from litestar import Controller, Request, Response, get, post, put
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from nats.errors import Error as NatsError
from redis.exceptions import RedisError
from temporalio.service import RPCError, RPCStatusCode

from drift_gateway.errors import Invalid, NotFound, Unavailable, from_rejection
from drift_gateway.runtime import Runtime
from drift_gateway.waiters import RunWaiter, last_state

log = structlog.get_logger("drift.gateway")

QUERY_TIMEOUT = timedelta(seconds=5)


def _decode(body: bytes, into: type[Any]) -> Any:
    try:
        return codec.decode(body, into)
    except codec.DecodeError as error:
        raise Invalid.from_decode_error(error) from None


def _response(event: WorkflowResponse) -> WorkflowResponse:
    return WorkflowResponse(
        workflow_id=event.workflow_id,
        workflow_status=event.workflow_status,
        current_node=event.current_node,
        disposition=event.disposition,
        error_message=event.error_message,
        view=event.view,
    )


class WorkflowController(Controller):
    path = "/v3/workflow"
    tags = ["runtime"]

    @post("/start", status_code=HTTP_200_OK, summary="Start a run (sync, or async with callbackUrl)")
    async def start(self, request: Request[Any, Any, Any], runtime: Runtime) -> Response[Any]:
        tenant = tenant_of(request)
        body: StartRequest = _decode(await request.body(), StartRequest)
        workflow_id = body.workflow_id or uuid.uuid4().hex
        thread_context = ThreadContext(
            client_id=request.headers.get("x-client-id"), user_id=request.headers.get("x-user-id")
        )
        command = StartCommand.from_request(body, workflow_id, thread_context)
        return await self._command(
            runtime, tenant, "start", workflow_id, command, body.callback_url, body.sync_timeout_ms
        )

    @put("/resume/{workflow_id:str}", status_code=HTTP_200_OK, summary="Resume a WAITING run with selections")
    async def resume(self, request: Request[Any, Any, Any], runtime: Runtime, workflow_id: str) -> Response[Any]:
        tenant = tenant_of(request)
        body: ResumeRequest = _decode(await request.body(), ResumeRequest)
        command = ResumeCommand(
            workflow_id=workflow_id, view_response=body.view_response, callback_url=body.callback_url
        )
        return await self._command(
            runtime, tenant, "resume", workflow_id, command, body.callback_url, body.sync_timeout_ms
        )

    @get("/{workflow_id:str}", summary="A run's state and context")
    async def get_run(self, request: Request[Any, Any, Any], runtime: Runtime, workflow_id: str) -> WorkflowDetail:
        tenant = tenant_of(request)
        handle = runtime.temporal.get_workflow_handle(temporal_id(tenant, workflow_id))
        try:
            snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"workflow '{workflow_id}' not found") from None
            stored = await last_state(runtime.redis, tenant, workflow_id)
            if stored is None:
                raise Unavailable("run state is unavailable right now") from None
            return WorkflowDetail(**msgspec.structs.asdict(_response(stored)))
        return WorkflowDetail(
            workflow_id=snapshot.workflow_id,
            workflow_status=snapshot.workflow_status,
            current_node=snapshot.current_node,
            disposition=snapshot.disposition,
            error_message=snapshot.error_message,
            view=snapshot.view,
            context=snapshot.context,
        )

    async def _command(
        self,
        runtime: Runtime,
        tenant: str,
        kind: str,
        workflow_id: str,
        command: msgspec.Struct,
        callback_url: str | None,
        sync_timeout_ms: int | None,
    ) -> Response[Any]:
        command_id = uuid.uuid4().hex
        subject = subjects.command(tenant, kind)
        headers = {subjects.WORKFLOW_ID_HEADER: workflow_id}
        structlog.contextvars.bind_contextvars(workflow_id=workflow_id)
        try:
            if callback_url is not None:
                await publish(runtime.js, subject, command, command_id, headers=headers)
                accepted = AcceptedResponse(workflow_id=workflow_id, workflow_status=WorkflowStatus.CREATED)
                return Response(accepted, status_code=HTTP_202_ACCEPTED)
            timeout_s = (sync_timeout_ms if sync_timeout_ms is not None else DEFAULT_SYNC_TIMEOUT_MS) / 1000
            async with RunWaiter(runtime.redis, tenant, workflow_id) as waiter:
                await publish(runtime.js, subject, command, command_id, headers=headers)
                event = await waiter.wait(command_id, timeout_s)
            if event is None:
                current = await last_state(runtime.redis, tenant, workflow_id)
                log.info("gateway.sync_timeout", kind=kind)
                pending = (
                    _response(current)
                    if current is not None
                    else WorkflowResponse(workflow_id=workflow_id, workflow_status=WorkflowStatus.CREATED)
                )
                return Response(pending, status_code=HTTP_202_ACCEPTED)
        except (RedisError, NatsError, TimeoutError) as error:
            log.warning("gateway.dependency_unavailable", kind=kind, error=str(error))
            raise Unavailable("a dependency is unavailable; retry shortly") from None
        if event.workflow_status == WorkflowStatus.REJECTED:
            raise from_rejection(event.error_code, event.error_message)
        return Response(_response(event), status_code=HTTP_200_OK)

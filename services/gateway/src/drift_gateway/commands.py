"""Sending a run command (start, resume, event, terminate, retry) and answering its caller.

The command goes out over NATS; the caller is answered at once (async: `callbackUrl`) or at the
run's first stable state the command leads to (sync), read from Redis or, with Redis down, from the
run's NATS status events. What each route checks before sending lives here too, so every
command route sends the same way.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from litestar import Response
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED
from nats.errors import Error as NatsError
from redis.exceptions import RedisError

from drift_gateway.errors import Invalid, NotFound, Unavailable, from_rejection
from drift_gateway.limits import Fairness
from drift_gateway.run_state import known_to_temporal
from drift_gateway.runtime import Runtime
from drift_gateway.waiters import SyncCall, response_of
from drift_runtime import metrics
from drift_runtime.messaging import publish
from drift_runtime.ssrf import SsrfRefused
from drift_schema import subjects
from drift_schema.api import DEFAULT_SYNC_TIMEOUT_MS, AcceptedResponse, ProblemError, WorkflowResponse
from drift_schema.events import WorkflowEvent
from drift_schema.headers import WORKFLOW_ID
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.gateway")

EXISTS_TIMEOUT = timedelta(seconds=2)


async def must_exist(runtime: Runtime, tenant: str, workflow_id: str) -> None:
    """404 at once for a run Temporal does not know, before any command is sent.

    A resume or event of an unknown run would otherwise wait for its REJECTED event over Redis,
    and answer 202 CREATED at its sync timeout when Redis is slow. When Temporal cannot answer
    the command goes on: the dispatcher still rejects it if the run is unknown.
    """
    if await known_to_temporal(runtime.temporal, tenant, workflow_id, EXISTS_TIMEOUT) is False:
        raise NotFound(f"workflow '{workflow_id}' not found")


async def check_callback(runtime: Runtime, callback_url: str | None, pointer: str = "/callbackUrl") -> None:
    """Refuse a callbackUrl the SSRF guard would refuse at delivery, before anything runs."""
    if callback_url is None:
        return
    try:
        await runtime.guard.vet(callback_url)
    except SsrfRefused as refused:
        raise Invalid(
            "callbackUrl is not allowed", errors=[ProblemError(pointer=pointer, message=str(refused))]
        ) from None


def settled_for(state: WorkflowResponse, kind: str, command_id: str) -> bool:
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
        call = SyncCall(runtime.redis, runtime.nats, runtime.js, tenant, workflow_id, runtime.channels)
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
            if current is not None and settled_for(current, kind, command_id):
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

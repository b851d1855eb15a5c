"""Every stable state of a run, context included, kept in the dsl-store's run-context store.

Temporal forgets a run after its retention period and Redis after its TTL; the
record written here (`PUT /runs/{workflowId}` with the service token) is what
`GET /v3/workflow/{workflowId}` answers afterwards. This runs on its own durable
consumer, so a slow or absent dsl-store never delays the Redis announcement to
sync waiters: a failed write is redelivered with a growing delay, never dropped.

Where the context comes from: the worker puts the run's `$global` into each
stable status event (the cheapest source: it is in the workflow's memory, and no
extra round trip is needed). Only two cases need more: a context too large to
carry (`contextOmitted`), read with one `state` query of the run; and
`TERMINATED`, announced by the dispatcher for a run that can no longer speak,
which keeps the context of the run's last stored state.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from nats.aio.msg import Msg
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from drift_notifier.states import decode_event, run_of
from drift_runtime.locks import RunLocks
from drift_runtime.messaging import TransientFault, growing_delay_s
from drift_schema import codec
from drift_schema.context import RunContext
from drift_schema.events import WorkflowEvent
from drift_schema.run import STATE_QUERY, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.notifier")

TENANT_HEADER = "X-Drift-Tenant"
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
QUERY_TIMEOUT = timedelta(seconds=5)
# Answers that a later attempt can change; any other 4xx means the write itself is wrong.
RETRIED_CLIENT_ERRORS = frozenset({401, 403, 408, 409, 425, 429})


class RunContextWriter:
    """Writes one stable status event per call to the run-context store; raises TransientFault to be retried."""

    def __init__(self, http: httpx.AsyncClient, temporal: TemporalClient | None) -> None:
        self.http = http
        self.temporal = temporal
        # One run's writes in stream order: a TERMINATED write copies the state stored before it,
        # so it must not race the write of that state (the consumer handles many events at once).
        self.locks = RunLocks()

    async def handle(self, msg: Msg) -> None:
        event = decode_event(msg)
        if not event.workflow_status.is_stable:
            return
        async with self.locks.hold(f"{event.tenant}/{event.workflow_id}"):
            await self._write(msg, event)

    async def _write(self, msg: Msg, event: WorkflowEvent) -> None:
        try:
            record = await self._record(event)
            response = await self.http.put(
                f"/runs/{event.workflow_id}",
                content=codec.encode(record),
                headers={TENANT_HEADER: event.tenant, "content-type": "application/json"},
            )
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}", delay_s=growing_delay_s(msg)) from None
        status = response.status_code
        if status >= 500 or status in RETRIED_CLIENT_ERRORS:
            raise TransientFault(f"dsl-store answered {status}", delay_s=growing_delay_s(msg))
        if not response.is_success:
            # The store refused this body for good (422): retrying cannot help, and the event stays in the stream.
            log.error("notifier.run_context_refused", tenant=event.tenant, workflow_id=event.workflow_id, status=status)
            return
        held = codec.decode(response.content, dict[str, Any]).get("seq")
        log.info(
            "notifier.run_context_stored",
            tenant=event.tenant,
            workflow_id=event.workflow_id,
            status=event.workflow_status,
            seq=event.seq,
            stale=held != event.seq,
        )

    async def _record(self, event: WorkflowEvent) -> RunContext:
        """The state to store: the event's, with its context from the event, the run or the last record."""
        current_node, disposition, view = event.current_node, event.disposition, event.view
        if event.context is not None:
            context = event.context
        elif event.workflow_status == WorkflowStatus.TERMINATED:
            # The dispatcher announces a termination without the run's state: keep what was last stored.
            previous = await self._stored(event)
            context = previous.context if previous else {}
            if previous is not None:
                current_node = current_node or previous.current_node
                disposition = disposition if disposition is not None else previous.disposition
                view = view if view is not None else previous.view
        elif event.context_omitted:
            context = await self._queried(event)
        else:
            context = {}
        return RunContext(
            workflow_id=event.workflow_id,
            workflow_status=event.workflow_status,
            # The run chain (first execution's run id): `seq` keeps rising across continue-as-new.
            run_id=run_of(event),
            seq=event.seq,
            updated_at=datetime.now(UTC),
            current_node=current_node,
            disposition=disposition,
            error_message=event.error_message,
            view=view,
            context=context,
        )

    async def _stored(self, event: WorkflowEvent) -> RunContext | None:
        response = await self.http.get(f"/runs/{event.workflow_id}", headers={TENANT_HEADER: event.tenant})
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise TransientFault(f"dsl-store answered {response.status_code} reading the run")
        stored = codec.decode(response.content, RunContext)
        return stored if stored.run_id == run_of(event) else None

    async def _queried(self, event: WorkflowEvent) -> dict[str, Any]:
        """A context too large for the event, read from the run itself (it may have moved on since)."""
        if self.temporal is None:
            raise TransientFault("the context was left out of the event and no Temporal client is configured")
        handle = self.temporal.get_workflow_handle(temporal_id(event.tenant, event.workflow_id))
        try:
            # Bounded: a run whose worker is gone leaves a query waiting on the server, and every such wait
            # holds one of the consumer's slots that other runs' writes (a TERMINATED copy) queue for.
            snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=QUERY_TIMEOUT)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                log.warning("notifier.run_context_unqueryable", tenant=event.tenant, workflow_id=event.workflow_id)
                return {}
            raise TransientFault(f"temporal unavailable: {error}") from None
        except WorkflowQueryFailedError as error:
            raise TransientFault(f"the state query failed: {error}") from None
        return snapshot.context


def store_client(base_url: str, service_token: str) -> httpx.AsyncClient:
    """An HTTP client for the dsl-store, authenticated with the service token."""
    return httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {service_token}"})

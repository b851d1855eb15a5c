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

import structlog
from nats.aio.msg import Msg
from temporalio.client import Client as TemporalClient
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from drift_client import DriftError, StoreClient
from drift_client.store import SERVICE_TIMEOUT
from drift_notifier.states import decode_event, run_of
from drift_runtime.locks import RunLocks
from drift_runtime.messaging import TransientFault, growing_delay_s
from drift_schema.context import RunContext
from drift_schema.events import WorkflowEvent
from drift_schema.run import STATE_QUERY, RunSnapshot, temporal_id
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.notifier")

QUERY_TIMEOUT = timedelta(seconds=5)
# Answers that a later attempt can change; any other 4xx means the write itself is wrong.
RETRIED_CLIENT_ERRORS = frozenset({401, 403, 408, 409, 425, 429})


class RunContextWriter:
    """Writes one stable status event per call to the run-context store; raises TransientFault to be retried."""

    def __init__(self, store: StoreClient, temporal: TemporalClient | None) -> None:
        self.store = store
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
        run_log = log.bind(tenant=event.tenant, workflow_id=event.workflow_id)
        try:
            held = await self.store.put_run_context(await self._record(event), tenant=event.tenant)
        except DriftError as error:
            if error.status >= 500 or error.status in RETRIED_CLIENT_ERRORS:
                raise TransientFault(f"dsl-store: {error}", delay_s=growing_delay_s(msg)) from None
            # The store refused this body for good (422): retrying cannot help, and the event stays in the stream.
            run_log.error("notifier.run_context_refused", status=error.status)
            return
        run_log.info(
            "notifier.run_context_stored", status=event.workflow_status, seq=event.seq, stale=held != event.seq
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
                # Where it stopped, but not what it was waiting for: a terminated run awaits no approval, shows no view.
                current_node = current_node or previous.current_node
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
        """The state last stored for the event's run (None when none, or one of an older run with the same id)."""
        try:
            stored = await self.store.run_context(event.workflow_id, tenant=event.tenant)
        except DriftError as error:
            # Whatever the read's fault, the write must wait for it: without the last state it would lose context.
            raise TransientFault(f"dsl-store answered {error.status} reading the run") from None
        return stored if stored is not None and stored.run_id == run_of(event) else None

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


def store_client(base_url: str, service_token: str) -> StoreClient:
    """The dsl-store's client, authenticated with the service token (the tenant goes with each call)."""
    return StoreClient(base_url, service_token, timeout=SERVICE_TIMEOUT)

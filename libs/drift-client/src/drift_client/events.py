"""A run's events from NATS: everything so far, then (optionally) what follows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec
import nats
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from drift_schema import subjects
from drift_schema.events import NodeEvent, WorkflowEvent

FETCH_TIMEOUT_S = 1.0


async def follow_events(
    nats_url: str, tenant: str, workflow_id: str, *, follow: bool = False
) -> AsyncIterator[WorkflowEvent | NodeEvent]:
    """Yield the run's status and node events in stream order; with `follow`, keep waiting for more."""
    connection = await nats.connect(nats_url, name="drift-cli")
    try:
        js = connection.jetstream()
        subject = subjects.run_events(tenant, workflow_id)
        try:
            subscription = await js.subscribe(
                subject, stream=subjects.EVENT_STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
            )
        except NotFoundError:
            return
        while True:
            try:
                msg = await subscription.next_msg(timeout=FETCH_TIMEOUT_S)
            except nats.errors.TimeoutError:
                if follow:
                    continue
                return
            kind = msg.subject.split(".")[3]
            into: type[WorkflowEvent | NodeEvent] = WorkflowEvent if kind == "workflow" else NodeEvent
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                yield msgspec.json.decode(msg.data, type=into)
            if not follow and msg.metadata.num_pending == 0:
                return
    finally:
        await connection.close()

"""A run's events from NATS: everything so far, then (optionally) what follows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec
import nats

from drift_runtime.messaging import replay
from drift_schema import subjects
from drift_schema.events import NodeEvent, WorkflowEvent


async def follow_events(
    nats_url: str, tenant: str, workflow_id: str, *, follow: bool = False
) -> AsyncIterator[WorkflowEvent | NodeEvent]:
    """Yield the run's status and node events in stream order; with `follow`, keep waiting for more."""
    connection = await nats.connect(nats_url, name="drift-cli")
    try:
        js = connection.jetstream()
        async for msg in replay(js, subjects.run_events(tenant, workflow_id), subjects.EVENT_STREAM, follow=follow):
            kind = msg.subject.split(".")[3]
            into: type[WorkflowEvent | NodeEvent] = WorkflowEvent if kind == "workflow" else NodeEvent
            with contextlib.suppress(msgspec.ValidationError, msgspec.DecodeError):
                yield msgspec.json.decode(msg.data, type=into)
    finally:
        await connection.close()

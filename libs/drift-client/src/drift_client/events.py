"""A run's events from NATS: everything so far, then (optionally) what follows; and a tenant's own connection.

NATS is authenticated (contract 14). An upstream system connects as its tenant: user `<tenant>`, the
tenant's API key as password, inbox prefix `_INBOX_<tenant>` (`connect_as_tenant`). That user may
publish the tenant's commands and subscribe to its events, but has no JetStream API rights, so it
reads events as they happen and never the stored history. Drift's service user (its credentials in
the URL, `nats://drift:<password>@host:4222`) reads the history too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from drift_client.stream import replay, split_credentials
from drift_schema import subjects
from drift_schema.events import NodeEvent, WorkflowEvent
from drift_schema.ids import tenant_inbox_prefix

__all__ = ["LiveOnly", "connect_as_tenant", "follow_events"]


class LiveOnly(ValueError):
    """A tenant's own NATS user cannot read a run's stored events, only those published from now on."""


async def connect_as_tenant(nats_url: str, tenant: str, api_key: str, *, name: str = "drift-client") -> NatsClient:
    """Connect to Drift's NATS as `tenant`'s upstream system (user `<tenant>`, its API key, inbox `_INBOX_<tenant>`).

    Publish commands with `Nats-Msg-Id` through `client.jetstream().publish(...)` (the acknowledgement
    comes back on the tenant's inbox) and subscribe to `drift.<tenant>.evt.>`. Credentials in
    `nats_url` are ignored: these are the ones that count.
    """
    return await nats.connect(
        split_credentials(nats_url).url,
        user=tenant,
        password=api_key,
        inbox_prefix=tenant_inbox_prefix(tenant),
        name=name,
    )


def _decode(msg: Msg) -> WorkflowEvent | NodeEvent | None:
    kind = msg.subject.split(".")[3]
    into: type[WorkflowEvent | NodeEvent] = WorkflowEvent if kind == "workflow" else NodeEvent
    try:
        return msgspec.json.decode(msg.data, type=into)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


async def follow_events(
    nats_url: str, tenant: str, workflow_id: str, *, follow: bool = False, api_key: str | None = None
) -> AsyncIterator[WorkflowEvent | NodeEvent]:
    """Yield the run's status and node events in stream order; with `follow`, keep waiting for more.

    With Drift's service credentials in `nats_url` (what `drift dev` hands out), the stored events
    come first. As the tenant itself (`api_key`, or `nats_url` naming user `<tenant>` with the key as
    password), only events published from now on arrive: that needs `follow`, else `LiveOnly`.
    """
    server = split_credentials(nats_url)
    if api_key is not None or server.user == tenant:
        if not follow:
            raise LiveOnly(
                f"tenant {tenant!r} reads its events live only (its NATS user has no JetStream API rights): follow them"
            )
        connection = await connect_as_tenant(nats_url, tenant, api_key or server.password or "", name="drift-cli")
        try:
            subscription = await connection.subscribe(subjects.run_events(tenant, workflow_id))
            async for msg in subscription.messages:
                event = _decode(msg)
                if event is not None:
                    yield event
        finally:
            await connection.close()
        return
    connection = await nats.connect(
        server.url, user=server.user, password=server.password, token=server.token, name="drift-cli"
    )
    try:
        js = connection.jetstream()
        async for msg in replay(js, subjects.run_events(tenant, workflow_id), subjects.EVENT_STREAM, follow=follow):
            event = _decode(msg)
            if event is not None:
                yield event
    finally:
        await connection.close()

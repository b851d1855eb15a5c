"""The dispatcher tests' own servers: real NATS (JetStream) and Temporal, a worker, a stand-in dsl-store.

`servers()` brings them up; the package's `stack` fixture (conftest) adds a dispatcher on top, and
test_order builds dispatchers of its own on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from temporalio.client import Client

from drift_cli.servers import InfraStack
from drift_dispatcher.tenancy import TenantDuplicates
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal
from drift_schema import subjects
from drift_schema.workflow import WorkflowDefinition
from drift_worker.app import build_worker
from drift_worker.config import Settings
from drift_worker.ssrf import Guard, guarded_client

MAX_RUNNING = 3
"""The tenants' concurrent-runs limit in these tests."""


def _definition(body: dict[str, Any]) -> WorkflowDefinition:
    return msgspec.convert(body, WorkflowDefinition)


DEFINITIONS = {
    "quick": _definition(
        {
            "id": "quick",
            "startNode": "sum",
            "states": {
                "sum": {"nodeDefinition": {"id": "sum", "type": "SCRIPT", "output": "{% 1 + 1 %}"}, "nextNode": "done"},
                "done": {"nodeDefinition": {"id": "done", "type": "SUCCESS", "disposition": "DONE"}, "end": True},
            },
        }
    ),
    "hold": _definition(
        {
            "id": "hold",
            "startNode": "wait",
            "states": {
                "wait": {
                    "nodeDefinition": {"id": "wait", "type": "WAIT", "config": {"waitType": "ON_EVENT", "event": "go"}},
                    "nextNode": "done",
                },
                "done": {"nodeDefinition": {"id": "done", "type": "SUCCESS", "disposition": "DONE"}, "end": True},
            },
        }
    ),
}


class StubDefinitions:
    """The dsl-store as the dispatcher sees it: every tenant has `quick` and `hold`."""

    async def pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        return DEFINITIONS.get(definition_id)

    async def enums(self, tenant: str) -> dict[str, Any]:
        return {}

    async def traffic_split(self, tenant: str, definition_id: str) -> None:
        return None  # no splits: ACTIVE stays ACTIVE and the pinning lookup decides


@dataclass
class Events:
    """Status events of every tenant, by (tenant, workflowId), awaitable."""

    by_run: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, msg: Msg) -> None:
        body = msgspec.json.decode(msg.data)
        async with self.changed:
            self.by_run[(subjects.tenant_of(msg.subject), body["workflowId"])].append(body)
            self.changed.notify_all()

    async def wait_for(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout), self.changed:
            while not (found := check()):
                await self.changed.wait()
            return found

    async def status(self, tenant: str, workflow_id: str, status: str) -> dict[str, Any]:
        """The run's first status event with `status`."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.by_run[(tenant, workflow_id)] if e["workflowStatus"] == status), None)

        found: dict[str, Any] = await self.wait_for(find)
        return found


@dataclass
class Stack:
    nc: NatsClient
    js: JetStreamContext
    client: Client
    events: Events
    duplicates: TenantDuplicates
    task_queue: str
    """The queue the worker serves and the stack's dispatcher starts runs on."""

    async def command(self, tenant: str, kind: str, body: bytes | dict[str, Any], msg_id: str | None = None) -> int:
        """Publish a command as an upstream system would; its stream sequence."""
        data = body if isinstance(body, bytes) else msgspec.json.encode(body)
        headers = {messaging.MSG_ID: msg_id} if msg_id else None
        ack = await self.js.publish(subjects.command(tenant, kind), data, headers=headers)
        return ack.seq

    async def marker(self, tenant: str) -> None:
        """Start a quick run and wait until it runs: every command published before it has been handled."""
        workflow_id = f"marker-{uuid.uuid4().hex[:8]}"
        await self.command(tenant, "start", {"workflow": {"id": "quick"}, "workflowId": workflow_id})
        await self.events.status(tenant, workflow_id, "RUNNING")


@dataclass
class Servers:
    """NATS, Temporal and a worker serving `task_queue`, with the clients the tests use."""

    nc: NatsClient
    js: JetStreamContext
    client: Client
    events: Events
    task_queue: str
    nats_url: str


@contextlib.asynccontextmanager
async def servers(home: Path) -> AsyncIterator[Servers]:
    """Servers of their own in `home`, a worker on a fresh task queue and a subscriber to every status event."""
    async with InfraStack(home) as infra:
        client = await connect_temporal(infra.temporal_address, "default")
        nc = await messaging.connect(infra.nats_url, name="dispatcher-tests")
        js = nc.jetstream()
        await messaging.ensure_streams(js)
        events = Events()
        await nc.subscribe(subjects.WORKFLOW_EVENT_SUBJECTS, cb=events.on_message)
        task_queue = f"dispatcher-tests-{uuid.uuid4().hex[:8]}"
        settings = Settings(
            temporal_address="unused",
            temporal_namespace="default",
            task_queue=task_queue,
            nats_url="unused",
            metrics_port=0,
            http_allow_hosts=("localhost",),
            log_format="console",
            log_level="WARNING",
            expression_timeout_ms=1000,
            max_concurrent_activities=20,
        )
        async with (
            guarded_client(Guard(settings.http_allow_hosts)) as http,
            build_worker(client, js, http, settings, []),
        ):
            yield Servers(nc, js, client, events, task_queue, infra.nats_url)
        await nc.drain()

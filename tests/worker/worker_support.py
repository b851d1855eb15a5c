"""Helpers for worker tests: a loopback HTTP stub, a NATS event tap, definitions, a test token provider."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec
import uvicorn
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from support.served import serving_on
from temporalio.client import Client, WorkflowHandle

from drift_cli.servers import InfraStack
from drift_runtime import messaging
from drift_runtime.temporal import connect_temporal, run_result
from drift_schema.run import WORKFLOW_NAME, RunInput, RunLimits, RunSnapshot, temporal_id
from drift_schema.workflow import Bundle, WorkflowDefinition
from drift_worker.app import build_worker
from drift_worker.config import Settings
from drift_worker.evaluator import EvaluatorPool
from drift_worker.ssrf import Guard, guarded_client
from drift_worker.tokens import TokenProvider

TENANT = "acme"
RUN_TIMEOUT = timedelta(seconds=120)
ALLOW_HOSTS = ("localhost",)


def worker_settings(task_queue: str, **overrides: object) -> Settings:
    """Settings for an in-process worker; nothing is read from the environment."""
    base: dict[str, object] = {
        "temporal_address": "unused",
        "temporal_namespace": "default",
        "task_queue": task_queue,
        "nats_url": "unused",
        "metrics_port": 0,
        "http_allow_hosts": ALLOW_HOSTS,
        "log_format": "console",
        "log_level": "WARNING",
        "expression_timeout_ms": 1000,
        "max_concurrent_activities": 50,
        "http_max_response_bytes": 64 * 1024,
        "node_output_max_bytes": 16 * 1024,
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- definitions


def definition(states: dict[str, Any], start: str | None = None, **extra: Any) -> WorkflowDefinition:
    """A workflow definition from camelCase dicts, every node inlined (as the dispatcher pins them)."""
    body = {"id": extra.pop("id", "wf"), "startNode": start or next(iter(states)), "states": states, **extra}
    return msgspec.convert(body, WorkflowDefinition)


def state(node: dict[str, Any], next_node: str | None = None, end: bool = False, **extra: Any) -> dict[str, Any]:
    """A state inlining `node` (its `id` defaults to a placeholder)."""
    body: dict[str, Any] = {"nodeDefinition": {"id": "n", **node}, **extra}
    if next_node is not None:
        body["nextNode"] = next_node
    if end:
        body["end"] = True
    return body


def script(output: Any, next_node: str | None = None, **extra: Any) -> dict[str, Any]:
    return state({"type": "SCRIPT", "output": output}, next_node, **extra)


def success(disposition: Any = "DONE", **extra: Any) -> dict[str, Any]:
    return state({"type": "SUCCESS", "disposition": disposition}, end=True, **extra)


def failure(error: Any, **extra: Any) -> dict[str, Any]:
    return state({"type": "FAILURE", "error": error}, end=True, **extra)


def count_to(iterations: int, after: str = "done") -> dict[str, Any]:
    """States `count` and `again`: a loop adding one to `$global.count` until it reaches `iterations`, then `after`."""
    return {
        "count": script("{% ($global.count ? $global.count : 0) + 1 %}", "again"),
        "again": state(
            {
                "type": "BRANCH",
                "choices": [{"rule": f"{{% $global.count < {iterations} %}}", "nextNode": "count"}],
                "defaultNode": after,
            }
        ),
    }


def inline_bundle(path: Path) -> dict[str, WorkflowDefinition]:
    """The bundle's workflows with every `resourceId` inlined, as the dsl-store's enrichment pins them."""
    bundle = msgspec.json.decode(path.read_bytes(), type=Bundle)
    nodes = {node.id: node for node in bundle.node_definitions}
    return {
        workflow.id: msgspec.structs.replace(
            workflow,
            states={
                name: msgspec.structs.replace(s, node_definition=s.node_definition or nodes[s.resource_id or ""])
                for name, s in workflow.states.items()
            },
        )
        for workflow in bundle.workflow_definitions
    }


def new_id(prefix: str = "run") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class Runner:
    """Starts runs of the generic workflow on the test worker's task queue, as the dispatcher would."""

    client: Client
    task_queue: str
    execution_timeout: timedelta | None = RUN_TIMEOUT
    """Spans the whole continue-as-new chain: `standalone()` (benchmarks) runs without one."""

    async def start(
        self,
        wf: WorkflowDefinition,
        params: Any = None,
        children: dict[str, WorkflowDefinition] | None = None,
        workflow_id: str | None = None,
        enums: dict[str, Any] | None = None,
        tenant: str = TENANT,
        limits: RunLimits | None = None,
    ) -> tuple[str, WorkflowHandle[Any, RunSnapshot]]:
        """Start a run as `tenant` with `limits` pinned (the defaults when None), as the dispatcher does."""
        public = workflow_id or new_id()
        run = RunInput(
            tenant=tenant,
            workflow_id=public,
            definition=wf,
            context={
                "params": params,
                "issueDetail": None,
                "customer": None,
                "orderDetails": None,
                "threadContext": {},
            },
            command_id=f"cmd-{public}",
            enums=enums or {},
            children=children or {},
            limits=limits or RunLimits(),
        )
        handle = await self.client.start_workflow(
            WORKFLOW_NAME,
            run,
            id=temporal_id(tenant, public),
            task_queue=self.task_queue,
            result_type=RunSnapshot,
            execution_timeout=self.execution_timeout,
        )
        return public, handle

    async def finish(self, wf: WorkflowDefinition, params: Any = None, **kwargs: Any) -> tuple[str, RunSnapshot]:
        """Start a run and wait for it to end: its public id and final snapshot."""
        public, handle = await self.start(wf, params, **kwargs)
        return public, await run_result(handle)

    async def run(self, wf: WorkflowDefinition, params: Any = None, **kwargs: Any) -> RunSnapshot:
        """Start a run and wait for its final snapshot."""
        _, handle = await self.start(wf, params, **kwargs)
        async with asyncio.timeout(60):
            return await run_result(handle)

    async def script_failure(self, output: Any, name: str = "boom") -> str:
        """Run a SCRIPT node `name` rendering `output`, which must fail it and the run; the run's error message."""
        snapshot = await self.run(definition({name: script(output, "done"), "done": success()}))
        assert snapshot.workflow_status == "FAILED"
        assert snapshot.error_message is not None
        return snapshot.error_message


@contextlib.asynccontextmanager
async def running_worker(
    client: Client, nc: NatsClient, queue: str, providers: list[TokenProvider] | None = None, **overrides: object
) -> AsyncIterator[Runner]:
    """A worker on a new task queue named after `queue`, running inside the block.

    Its settings are `worker_settings` with `overrides`; its tokens come from `providers` (`StaticTokens` by default).
    """
    settings = worker_settings(new_id(queue), **overrides)
    tokens = [StaticTokens()] if providers is None else providers
    async with (
        guarded_client(Guard(settings.http_allow_hosts)) as http,
        build_worker(client, nc.jetstream(), http, settings, tokens),
    ):
        yield Runner(client, settings.task_queue)


# --------------------------------------------------------------------------- events


class EventTap:
    """Every `drift.<tenant>.evt.*` message, by workflow id, awaitable by condition (no polling)."""

    def __init__(self) -> None:
        self.workflow: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.nodes: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.arrivals: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()

    async def on_message(self, msg: Msg) -> None:
        body = msgspec.json.decode(msg.data)
        parts = msg.subject.split(".")
        target = self.workflow if parts[3] == "workflow" else self.nodes
        async with self._changed:
            target[body["workflowId"]].append(body)
            self.arrivals.append(body)
            self._changed.notify_all()

    async def wait_for(self, check: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until `check()` answers something truthy; answer it."""
        async with asyncio.timeout(timeout), self._changed:
            while not (found := check()):
                await self._changed.wait()
            return found

    async def status(self, workflow_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first status event of the run with this status."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.workflow[workflow_id] if e["workflowStatus"] == status), None)

        found: dict[str, Any] = await self.wait_for(find, timeout)
        return found

    async def node(self, workflow_id: str, instance: str, timeout: float = 30.0) -> dict[str, Any]:
        """The first node event of this instance."""

        def find() -> dict[str, Any] | None:
            return next((e for e in self.nodes[workflow_id] if e["instanceName"] == instance), None)

        found: dict[str, Any] = await self.wait_for(find, timeout)
        return found

    def statuses(self, workflow_id: str) -> list[str]:
        return [event["workflowStatus"] for event in self.workflow[workflow_id]]


@contextlib.asynccontextmanager
async def tapped(nc: NatsClient, subscribed: bool = True) -> AsyncIterator[EventTap]:
    """An event tap on tenant `acme`'s events (hearing nothing when not `subscribed`)."""
    tap = EventTap()
    if not subscribed:
        yield tap
        return
    subscription = await nc.subscribe(f"drift.{TENANT}.evt.>", cb=tap.on_message)
    try:
        yield tap
    finally:
        await subscription.unsubscribe()


# --------------------------------------------------------------------------- HTTP stub


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Stub:
    """A loopback HTTP server with a handful of routes; it records every request it answers."""

    host: str = "localhost"
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def requests(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == path]

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = parse_qs(scope["query_string"].decode())
        seen = Seen(scope["method"], scope["path"], query, headers, body)
        self.seen.append(seen)
        status, answer_headers, payload = await self.route(seen)
        await send({"type": "http.response.start", "status": status, "headers": answer_headers})
        await send({"type": "http.response.body", "body": payload})

    async def route(self, seen: Seen) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        json_type = [(b"content-type", b"application/json")]
        path = seen.path
        if path == "/json":
            return 200, json_type, msgspec.json.encode({"ok": True, "query": seen.query, "n": 42})
        if path == "/echo":
            echoed = {
                "method": seen.method,
                "contentType": seen.headers.get("content-type"),
                "body": seen.body.decode(),
                "authorization": seen.headers.get("authorization"),
                "idempotencyKey": seen.headers.get("idempotency-key"),
                "custom": seen.headers.get("x-custom"),
            }
            return 200, [*json_type, (b"x-stub", b"yes")], msgspec.json.encode(echoed)
        if path == "/text":
            return 200, [(b"content-type", b"text/plain")], b"plain words"
        if path.startswith("/status/"):
            return int(path.rsplit("/", 1)[1]), json_type, b'{"error": "as asked"}'
        if path.startswith("/flaky/"):
            key = path.rsplit("/", 1)[1]
            self.counters[key] += 1
            fails = int(seen.query.get("fail", ["0"])[0])
            if self.counters[key] <= fails:
                return 503, json_type, b'{"error": "try again"}'
            return 200, json_type, msgspec.json.encode({"attempts": self.counters[key]})
        if path == "/redirect":
            return 302, [(b"location", seen.query["to"][0].encode())], b""
        if path == "/big":
            return 200, [(b"content-type", b"text/plain")], b"x" * int(seen.query["size"][0])
        if path == "/slow":
            await asyncio.sleep(float(seen.query["s"][0]))
            return 200, json_type, b'{"slow": true}'
        if path.startswith("/orders/"):
            order = {"returnable": True, "daysSinceDelivery": 3, "amount": 30, "items": ["mug"]}
            return 200, json_type, msgspec.json.encode(order)
        if path == "/refunds" and seen.method == "POST":
            return 201, json_type, b'{"id": "rf-1"}'
        return 404, json_type, b'{"error": "no such route"}'


def loopback_address(name: str) -> str:
    """Where `name` resolves first (the address a guarded client connects to)."""
    return str(socket.getaddrinfo(name, 0, type=socket.SOCK_STREAM)[0][4][0])


@contextlib.asynccontextmanager
async def serving(stub: Stub) -> AsyncIterator[Stub]:
    """Serve `stub` on a free loopback port, on the address `localhost` resolves to."""
    address = loopback_address(stub.host)
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 0))
    stub.port = sock.getsockname()[1]
    async with serving_on(uvicorn.Config(stub, log_level="warning", lifespan="off"), sock):
        yield stub


# --------------------------------------------------------------------------- token provider


class StaticTokens:
    """A test token provider: a bearer token for nodes whose id starts with `secure`, nothing otherwise."""

    calls: list[tuple[str, str]] = []

    async def headers(self, tenant: str, node_id: str) -> dict[str, str]:
        StaticTokens.calls.append((tenant, node_id))
        if node_id.startswith("secure"):
            return {"Authorization": f"Bearer token-of-{tenant}"}
        return {}


# --------------------------------------------------------------------------- standalone harness


@dataclass
class Standalone:
    """What a script outside pytest gets: a runner, an event tap and the HTTP stub."""

    runner: Runner
    tap: EventTap
    stub: Stub


@contextlib.asynccontextmanager
async def standalone(max_concurrent_activities: int = 50, tap: bool = True) -> AsyncIterator[Standalone]:
    """Embedded Temporal and NATS in a temporary folder, a loopback stub and an in-process worker.

    `tap=False` leaves the event tap unsubscribed (empty): a benchmark then measures the worker alone,
    not also the decoding of every event in the same process.
    """
    with tempfile.TemporaryDirectory(prefix="drift-worker-") as home:
        async with InfraStack(Path(home)) as stack, serving(Stub()) as stub:
            client = await connect_temporal(stack.temporal_address, "default")
            nc = await messaging.connect(stack.nats_url, name="worker-standalone")
            await messaging.ensure_streams(nc.jetstream())
            settings = worker_settings(
                f"standalone-{uuid.uuid4().hex[:8]}", max_concurrent_activities=max_concurrent_activities
            )
            # Warm before the first run, as the worker service starts its pool before polling.
            pool = EvaluatorPool(settings.evaluator_pool)
            await pool.start()
            try:
                async with guarded_client(Guard(settings.http_allow_hosts)) as http, tapped(nc, tap) as events:
                    worker = build_worker(client, nc.jetstream(), http, settings, [StaticTokens()], pool=pool)
                    async with worker:
                        yield Standalone(Runner(client, settings.task_queue, execution_timeout=None), events, stub)
            finally:
                await pool.close()
            await nc.drain()

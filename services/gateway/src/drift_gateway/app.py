"""The gateway: authenticated runtime API over NATS commands and Redis answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from drift_gateway.channels import RunChannels
from drift_gateway.config import Settings
from drift_gateway.controllers.repair import RepairController
from drift_gateway.controllers.runs import RunsController
from drift_gateway.controllers.schedules import ScheduleController
from drift_gateway.controllers.workflows import WorkflowController
from drift_gateway.runtime import Runtime, run_store_client
from drift_gateway.schedules import schedules_dependency
from drift_gateway.testruns import testruns_dependency
from drift_runtime import messaging
from drift_runtime.process import freeze_start_up, stop_on_signal
from drift_runtime.redis_client import connect_redis
from drift_runtime.search_attributes import ensure_registered
from drift_runtime.ssrf import Guard
from drift_runtime.temporal import connect_temporal
from drift_runtime.web import api_app, serve

log = structlog.get_logger("drift.gateway")


def create_app(settings: Settings, *, freeze_after_start: bool = False) -> Litestar:
    """The gateway application; clients connect in the lifespan.

    `freeze_after_start`: the process is the gateway's own (`main`): once started, what exists is kept
    out of the garbage collector's full passes (an in-process test's objects are left alone).
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            with stop_on_signal() as stop:
                nc = await messaging.connect(settings.nats_url, name="drift-gateway", stop=stop)
        except messaging.Stopped:
            # uvicorn saw the signal too and exits as soon as this start-up returns.
            log.info("gateway.stopped_during_startup")
            yield
            return
        js = nc.jetstream()
        await messaging.ensure_streams(js, settings.stream_replicas)
        redis = connect_redis(settings.redis_url)
        temporal = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
        await ensure_registered(temporal, settings.temporal_namespace)
        guard = Guard(settings.http_allow_hosts)
        store = run_store_client(settings.dsl_store_url, settings.service_token) if settings.service_token else None
        channels = RunChannels(redis)
        app.state.runtime = Runtime(
            nats=nc,
            js=js,
            redis=redis,
            temporal=temporal,
            guard=guard,
            store=store,
            fairness=settings.fairness(),
            channels=channels,
        )
        if freeze_after_start:
            freeze_start_up()
        log.info("gateway.started", port=settings.port)
        try:
            yield
        finally:
            await channels.close()
            await redis.aclose()
            if store is not None:
                await store.aclose()
            await nc.drain()

    def runtime(state: State) -> Runtime:
        return state.runtime  # type: ignore[no-any-return]

    async def ready() -> bool:
        current = getattr(app.state, "runtime", None)
        return current is not None and await current.ready()

    app = api_app(
        "drift-gateway",
        "Drift gateway",
        [WorkflowController, RunsController, ScheduleController, RepairController],
        ready=ready,
        keys=settings.api_keys,
        dependencies={
            "runtime": Provide(runtime, sync_to_thread=False),
            "schedules": schedules_dependency(settings.task_queue, settings.max_schedules),
            "test_runs": testruns_dependency(settings.task_queue),
        },
        lifespan=[lifespan],
    )
    return app


def main() -> None:
    settings = Settings.from_env()
    app = create_app(settings, freeze_after_start=True)
    serve(app, "drift-gateway", settings.bind_host, settings.port, settings.log_format, settings.log_level)

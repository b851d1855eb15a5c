"""The dsl-store application: Litestar app factory and the `drift-dsl-store` entry point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide

from drift_dsl_store.bundles import BundleService
from drift_dsl_store.cache import ChangeListener, caching
from drift_dsl_store.config import Settings
from drift_dsl_store.controllers import EnumController, RunContextController
from drift_dsl_store.controllers.bundles import BundleController
from drift_dsl_store.controllers.listing import NodeDefinitionAdminController, WorkflowDefinitionAdminController
from drift_dsl_store.controllers.node_types import NodeTypesController
from drift_dsl_store.controllers.traffic import TrafficController
from drift_dsl_store.errors import EXCEPTION_HANDLERS_DSL
from drift_dsl_store.events import ChangePublisher, NatsChangePublisher, NoChangePublisher
from drift_dsl_store.service import DefinitionService
from drift_dsl_store.store import DefinitionStore, open_store
from drift_dsl_store.tenant_data import EnumService, RunService
from drift_dsl_store.traffic import TrafficService
from drift_runtime.web import api_app, serve, tenant_of

SERVICE_NAME = "drift-dsl-store"
READY_TIMEOUT_S = 2.0

log = structlog.get_logger("drift.dsl_store")


def create_app(
    settings: Settings, store: DefinitionStore | None = None, changes: ChangePublisher | None = None
) -> Litestar:
    """The dsl-store app; `store` and `changes` replace the configured backends (tests, other stores).

    Definitions are read through a CachingStore (`app.state.cache`); its
    pointers are cached only while a ChangeListener hears NATS. Enums, run
    contexts and the listings are read from the backend itself.
    """
    backend = store or open_store(settings.store_url)
    cache = caching(backend, settings.redis_url, settings.store_url)
    if changes is None:
        changes = (
            NatsChangePublisher(settings.nats_url, settings.stream_replicas)
            if settings.nats_url
            else NoChangePublisher()
        )
    listener = ChangeListener(settings.nats_url, cache) if settings.nats_url else None
    service = DefinitionService(cache, backend, changes)
    enums = EnumService(backend, changes)
    runs = RunService(backend)
    bundles = BundleService(service)
    traffic = TrafficService(service)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        if not settings.api_keys and not settings.service_token:
            log.warning("dsl.no_api_keys", hint="set DRIFT_API_KEYS; every request will answer 401")
        await backend.start()
        await changes.start()
        if listener is not None:
            await listener.start()
        log.info("dsl.started", nats=bool(settings.nats_url), redis=bool(settings.redis_url))
        try:
            yield
        finally:
            if listener is not None:
                await listener.close()
            await changes.close()
            await cache.close()
            await backend.close()

    async def ready() -> bool:
        try:
            await asyncio.wait_for(backend.ping(), timeout=READY_TIMEOUT_S)
        except Exception as error:
            log.warning("dsl.not_ready", reason=str(error))
            return False
        return changes.ready

    def provide_service() -> DefinitionService:
        return service

    def provide_enums() -> EnumService:
        return enums

    def provide_runs() -> RunService:
        return runs

    def provide_bundles() -> BundleService:
        return bundles

    def provide_traffic() -> TrafficService:
        return traffic

    def provide_service_token() -> str | None:
        return settings.service_token

    def provide_tenant(request: Request[Any, Any, Any]) -> str:
        return tenant_of(request)

    return api_app(
        SERVICE_NAME,
        "Drift dsl-store",
        [
            # The node and workflow controllers with the listing and deleting routes of contract 10 added.
            NodeDefinitionAdminController,
            WorkflowDefinitionAdminController,
            EnumController,
            RunContextController,
            NodeTypesController,
            BundleController,
            TrafficController,
        ],
        ready=ready,
        keys=settings.api_keys,
        service_token=settings.service_token,
        dependencies={
            "service": Provide(provide_service, sync_to_thread=False),
            "enums": Provide(provide_enums, sync_to_thread=False),
            "runs": Provide(provide_runs, sync_to_thread=False),
            "bundles": Provide(provide_bundles, sync_to_thread=False),
            "traffic": Provide(provide_traffic, sync_to_thread=False),
            "service_token": Provide(provide_service_token, sync_to_thread=False),
            "tenant": Provide(provide_tenant, sync_to_thread=False),
        },
        lifespan=[lifespan],
        state=State({"cache": cache, "listener": listener}),
        exception_handlers=EXCEPTION_HANDLERS_DSL,
    )


def main() -> None:
    """Run the service on `DRIFT_BIND_HOST:DRIFT_DSL_STORE_PORT`, as every HTTP service runs (`web.serve`)."""
    settings = Settings.from_env()
    serve(
        create_app(settings), SERVICE_NAME, settings.bind_host, settings.port, settings.log_format, settings.log_level
    )


if __name__ == "__main__":
    main()

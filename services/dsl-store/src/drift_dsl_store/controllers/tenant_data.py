"""`/enums` (the tenant's enum store) and `/runs` (the run-context store)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Controller, Request, Response, delete, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, RawBody

from drift_dsl_store.tenant_data import EnumService, RunService, RunWrite
from drift_runtime.auth import bearer_token
from drift_runtime.openapi import json_request
from drift_runtime.web import Forbidden, problem_responses
from drift_schema.context import RunContext

JSON = "application/json"
# Handlers answer stored JSON bytes as they are; `Response[Any]` documents them as any JSON value
# (`Response[bytes]` would tell OpenAPI clients to expect a string).
Enums = NamedDependency[EnumService]
Runs = NamedDependency[RunService]
Tenant = NamedDependency[str]
ServiceToken = NamedDependency[str | None]


class EnumController(Controller):
    """Enum values are any JSON; every change is announced on `drift.<tenant>.evt.dsl.enums.<key>`."""

    path = "/enums"
    tags = ["enums"]

    @get("/", summary="Every enum of the tenant, as one object", media_type=JSON)
    async def all_enums(self, enums: Enums, tenant: Tenant) -> Response[Any]:
        return Response(await enums.all(tenant), media_type=JSON)

    @put(
        "/{key:str}",
        summary="Create or replace an enum value (any JSON)",
        media_type=JSON,
        opt=json_request(Any, "the enum's value: any JSON"),
    )
    async def put_enum(self, key: FromPath[str], body: RawBody, enums: Enums, tenant: Tenant) -> Response[Any]:
        return Response(await enums.put(tenant, key, body), media_type=JSON)

    @get("/{key:str}", summary="Read an enum value", media_type=JSON)
    async def get_enum(self, key: FromPath[str], enums: Enums, tenant: Tenant) -> Response[Any]:
        return Response(await enums.get(tenant, key), media_type=JSON)

    @delete("/{key:str}", summary="Remove an enum value", status_code=204)
    async def delete_enum(self, key: FromPath[str], enums: Enums, tenant: Tenant) -> None:
        await enums.delete(tenant, key)


class RunContextController(Controller):
    """Written by the notifier (service token) at every stable state; read by the gateway and by tenants."""

    path = "/runs"
    tags = ["run contexts"]

    @put(
        "/{workflow_id:str}",
        summary="Store a run's stable state (service token only)",
        responses=problem_responses(403),
        opt=json_request(RunContext, "the run's last stable state and context"),
    )
    async def put_run(
        self,
        request: Request[Any, Any, Any],
        workflow_id: FromPath[str],
        body: RawBody,
        runs: Runs,
        tenant: Tenant,
        service_token: ServiceToken,
    ) -> RunWrite:
        presented = bearer_token(request.headers.get("authorization")) or ""
        if not service_token or not hmac.compare_digest(presented.encode(), service_token.encode()):
            raise Forbidden("run contexts are written by Drift's services only")
        return await runs.put(tenant, workflow_id, body)

    @get("/{workflow_id:str}", summary="A run's last stored state", media_type=JSON)
    async def get_run(self, workflow_id: FromPath[str], runs: Runs, tenant: Tenant) -> Response[Any]:
        return Response(await runs.get(tenant, workflow_id), media_type=JSON)

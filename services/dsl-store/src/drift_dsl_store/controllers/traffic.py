"""`/workflowDefinition/{id}/traffic`: the weighted split of `ACTIVE` starts between published versions."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath, RawBody

from drift_dsl_store.traffic import TrafficService
from drift_runtime.openapi import json_request
from drift_runtime.web import problem_responses
from drift_schema.traffic import TrafficSplit

Traffic = NamedDependency[TrafficService]
Tenant = NamedDependency[str]


class TrafficController(Controller):
    path = "/workflowDefinition"
    tags = ["workflowDefinition"]

    @put(
        "/{definition_id:str}/traffic",
        summary="Split ACTIVE starts between published versions by weight",
        status_code=200,
        responses=problem_responses(404, 422),
        opt=json_request(TrafficSplit, "the published versions and their weights (summing to 100)"),
    )
    async def put_traffic(
        self, definition_id: FromPath[str], body: RawBody, traffic: Traffic, tenant: Tenant
    ) -> TrafficSplit:
        return await traffic.set_split(tenant, definition_id, body)

    @get(
        "/{definition_id:str}/traffic",
        summary="The split ACTIVE starts follow (the active version at weight 100 without one)",
        responses=problem_responses(404),
    )
    async def get_traffic(self, definition_id: FromPath[str], traffic: Traffic, tenant: Tenant) -> TrafficSplit:
        return await traffic.split(tenant, definition_id)

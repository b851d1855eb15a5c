"""`/v3/schedules` (contract 9): create, list, get, pause, unpause, trigger and delete schedules."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from drift_gateway.errors import from_decode_error
from drift_gateway.schedules import Schedules
from drift_runtime.openapi import json_request
from drift_runtime.web import problem_responses, tenant_of
from drift_schema import codec
from drift_schema.schedules import Schedule, ScheduleList, ScheduleRequest


class ScheduleController(Controller):
    path = "/v3/schedules"
    tags = ["schedules"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a schedule (cron or intervalSeconds)",
        responses=problem_responses(429),  # over the tenant's schedule limit
        opt=json_request(ScheduleRequest, "the schedule: its id, the definition to start, cron or intervalSeconds"),
    )
    async def create(self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules]) -> Schedule:
        try:
            body = codec.decode(await request.body(), ScheduleRequest)
        except codec.DecodeError as error:
            raise from_decode_error(error) from None
        return await schedules.create(tenant_of(request), body)

    @get("/", summary="The tenant's schedules")
    async def list_schedules(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules]
    ) -> ScheduleList:
        return ScheduleList(schedules=await schedules.list(tenant_of(request)))

    @get("/{schedule_id:str}", summary="One schedule, with its next run times and recent runs")
    async def get_schedule(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules], schedule_id: FromPath[str]
    ) -> Schedule:
        return await schedules.get(tenant_of(request), schedule_id)

    @post("/{schedule_id:str}/pause", status_code=HTTP_200_OK, summary="Pause a schedule")
    async def pause(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules], schedule_id: FromPath[str]
    ) -> Schedule:
        return await schedules.pause(tenant_of(request), schedule_id, paused=True)

    @post("/{schedule_id:str}/unpause", status_code=HTTP_200_OK, summary="Unpause a schedule")
    async def unpause(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules], schedule_id: FromPath[str]
    ) -> Schedule:
        return await schedules.pause(tenant_of(request), schedule_id, paused=False)

    @post("/{schedule_id:str}/trigger", status_code=HTTP_200_OK, summary="Start one run of a schedule now")
    async def trigger(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules], schedule_id: FromPath[str]
    ) -> Schedule:
        return await schedules.trigger(tenant_of(request), schedule_id)

    @delete("/{schedule_id:str}", status_code=HTTP_204_NO_CONTENT, summary="Delete a schedule (its runs go on)")
    async def delete_schedule(
        self, request: Request[Any, Any, Any], schedules: NamedDependency[Schedules], schedule_id: FromPath[str]
    ) -> None:
        await schedules.delete(tenant_of(request), schedule_id)

"""Repairing and testing runs (contract 8.2 and 8.3): `PUT /v3/workflow/retry/{id}`, `POST /v3/workflow/test`."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.status_codes import HTTP_200_OK

from drift_gateway.commands import check_callback, send_command
from drift_gateway.controllers.common import ACCEPTED, ANSWERED, checked_id, decode_body, thread_context_of
from drift_gateway.errors import Invalid
from drift_gateway.retry import FROM_NODE_POINTER, closed_run, unknown_from_node
from drift_gateway.runtime import Runtime
from drift_gateway.testruns import TestRuns
from drift_runtime.openapi import json_request
from drift_runtime.web import tenant_of
from drift_schema.commands import RetryCommand
from drift_schema.testrun import RetryRequest, TestRequest, TestResponse


class RepairController(Controller):
    path = "/v3/workflow"
    tags = ["runtime"]

    @put(
        "/retry/{workflow_id:str}",
        status_code=HTTP_200_OK,
        summary="Run a FAILED or TERMINATED run again from a node (sync, or async with callbackUrl)",
        responses={**ANSWERED, **ACCEPTED},
        opt=json_request(
            RetryRequest, "where to start again (default: the first failed node); may be empty", required=False
        ),
    )
    async def retry(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], workflow_id: FromPath[str]
    ) -> Response[Any]:
        tenant = tenant_of(request)
        checked_id(workflow_id)
        raw = await request.body()
        body: RetryRequest = decode_body(raw, RetryRequest) if raw.strip() else RetryRequest()
        await check_callback(runtime, body.callback_url)
        run_id = await closed_run(runtime, tenant, workflow_id, body.from_node)
        runtime.fairness.take_start(tenant)  # a retry starts the run again: it spends a start like start does
        command = RetryCommand(
            workflow_id=workflow_id, from_node=body.from_node, callback_url=body.callback_url, run_id=run_id
        )
        # The very path of start and resume: the same sync wait, 202s, webhooks and rejection mapping.
        try:
            return await send_command(
                runtime,
                tenant,
                "retry",
                workflow_id,
                command,
                body.callback_url,
                body.sync_timeout_ms,
            )
        except Invalid as problem:
            if body.from_node is not None and (problem.detail or "").startswith("fromNode:"):
                raise unknown_from_node(body.from_node) from None
            raise

    @post(
        "/test",
        status_code=HTTP_200_OK,
        summary="Run a definition with its outside world mocked; answers at its end",
        opt=json_request(TestRequest, "the definition (stored or inline), params, mocks and answers to waits"),
    )
    async def test(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[Runtime], test_runs: NamedDependency[TestRuns]
    ) -> TestResponse:
        tenant = tenant_of(request)
        body: TestRequest = decode_body(await request.body(), TestRequest)
        thread_context = thread_context_of(request)
        # A test run is a start answered synchronously: the tenant's start rate and open sync calls bound it.
        runtime.fairness.take_start(tenant)
        with runtime.fairness.sync_waiter(tenant):
            return await test_runs.runner(tenant).run(body, thread_context)


__all__ = ["FROM_NODE_POINTER", "RepairController"]

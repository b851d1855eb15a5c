"""Gateway problem answers that need a dependency down or a hostile request: 503 with Retry-After, 413, 401."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from litestar.testing import AsyncTestClient

from drift_cli.servers import InfraStack
from drift_gateway.app import create_app
from drift_runtime.auth import ApiKeys
from gateway.gateway_support import redisless_settings

ACME = {"Authorization": "Bearer key-acme"}
START = {"workflow": {"id": "hello_approval"}, "workflowId": "errors-1"}


@pytest_asyncio.fixture(loop_scope="session")
async def redis_down(infra: InfraStack) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    """A gateway in-process on the real NATS and Temporal, with Redis at a port nothing listens on."""
    settings = redisless_settings(infra, "drift-gateway-errors", ApiKeys({"key-acme": "acme"}))
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


async def test_a_dependency_down_answers_503_with_retry_after(redis_down: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """With Redis unreachable a GET only Redis could answer is 503 problem+json with Retry-After; readiness is 503."""
    response = await redis_down.get(f"/v3/workflow/errors-{uuid.uuid4().hex}", headers=ACME)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["status"] == 503 and response.json()["type"]
    assert (await redis_down.get("/health/ready")).status_code == 503


async def test_with_redis_unreachable_a_sync_start_is_still_sent_and_answers_202(redis_down: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """Redis unreachable: a sync start is published anyway and, unanswered by its timeout, answers 202, never 503."""
    workflow_id = f"errors-{uuid.uuid4().hex}"
    response = await redis_down.post(
        "/v3/workflow/start", json={**START, "workflowId": workflow_id, "syncTimeoutMs": 0}, headers=ACME
    )
    assert response.status_code == 202, response.text
    assert response.json()["workflowId"] == workflow_id


async def test_bodies_over_one_mebibyte_answer_413(redis_down: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """A start or resume body over 1 MiB answers 413 problem+json before anything is decoded or published."""
    big = b'{"workflow": {"id": "hello_approval"}, "params": {"blob": "' + b"x" * (1024 * 1024) + b'"}}'
    for method, path in (("POST", "/v3/workflow/start"), ("PUT", "/v3/workflow/resume/errors-1")):
        response = await redis_down.request(
            method, path, content=big, headers={**ACME, "Content-Type": "application/json"}
        )
        assert response.status_code == 413, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 413


async def test_unknown_or_missing_keys_answer_401_on_every_route(redis_down: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """Every /v3 route answers 401 problem+json without a known bearer key, with WWW-Authenticate."""
    routes = (
        ("POST", "/v3/workflow/start"),
        ("PUT", "/v3/workflow/resume/r1"),
        ("DELETE", "/v3/workflow/terminate/r1"),
        ("GET", "/v3/workflow/r1"),
        ("GET", "/v3/workflow/r1/timeline"),
        ("POST", "/v3/workflow/r1/event/go"),
        ("POST", "/v3/workflow/r1/disconnected-node/execute"),
    )
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer key-acmf"}, {"Authorization": "Basic a2V5LWFjbWU="}):
            response = await redis_down.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["www-authenticate"] == "Bearer"

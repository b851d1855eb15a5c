"""`DriftClient`: the gateway's `/v3` routes as typed async methods."""

from __future__ import annotations

from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

import httpx
import msgspec

from drift_client.problems import DriftError, raise_for_problem
from drift_schema.api import (
    DisconnectedRequest,
    ResumeRequest,
    StartRequest,
    TerminateResponse,
    Timeline,
    ViewResponse,
    WorkflowDetail,
    WorkflowRef,
    WorkflowResponse,
)
from drift_schema.headers import AUTHORIZATION
from drift_schema.run import DisconnectedResult
from drift_schema.schedules import Schedule, ScheduleList, ScheduleRequest
from drift_schema.search import RunPage
from drift_schema.testrun import MIN_TEST_TIMEOUT_MS, RetryRequest, TestRequest, TestResponse

__all__ = ["BearerClient", "DriftClient", "DriftError", "raise_for_problem"]

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(65.0, connect=5.0)
TEST_ANSWER_MARGIN_S = 15.0
"""A test run answers at its end or at its wait (60 s at least): the client waits a little longer."""


class BearerClient:
    """An async HTTP client that calls one service as the tenant its API key names; use it as `async with`."""

    default_timeout: ClassVar[httpx.Timeout] = DEFAULT_TIMEOUT

    def __init__(
        self, base_url: str, api_key: str, *, timeout: httpx.Timeout | None = None, **http_options: Any
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout if timeout is not None else self.default_timeout,
            headers={AUTHORIZATION: f"Bearer {api_key}"},
            **http_options,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()


class DriftClient(BearerClient):
    """Calls the gateway as one tenant (the one its API key names).

    Sync calls answer at the run's next stable state; a 202 (timeout, or async
    mode with `callback_url`) comes back as a WorkflowResponse with the current status.
    """

    async def start(
        self,
        definition_id: str,
        *,
        version: str = "ACTIVE",
        workflow_id: str | None = None,
        params: Any = None,
        issue_detail: Any = None,
        customer: Any = None,
        order_details: Any = None,
        callback_url: str | None = None,
        sync_timeout_ms: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> WorkflowResponse:
        body = StartRequest(
            workflow=WorkflowRef(id=definition_id, version=version),
            workflow_id=workflow_id,
            params=params,
            issue_detail=issue_detail,
            customer=customer,
            order_details=order_details,
            callback_url=callback_url,
            sync_timeout_ms=sync_timeout_ms,
        )
        return await self._call("POST", "/v3/workflow/start", WorkflowResponse, body, headers)

    async def resume(
        self,
        workflow_id: str,
        selected_options: dict[str, Any],
        *,
        callback_url: str | None = None,
        sync_timeout_ms: int | None = None,
    ) -> WorkflowResponse:
        body = ResumeRequest(
            view_response=ViewResponse(selected_options=selected_options),
            callback_url=callback_url,
            sync_timeout_ms=sync_timeout_ms,
        )
        return await self._call("PUT", f"/v3/workflow/resume/{workflow_id}", WorkflowResponse, body)

    async def get(self, workflow_id: str) -> WorkflowDetail:
        return await self._call("GET", f"/v3/workflow/{workflow_id}", WorkflowDetail)

    async def timeline(self, workflow_id: str) -> Timeline:
        return await self._call("GET", f"/v3/workflow/{workflow_id}/timeline", Timeline)

    async def terminate(self, workflow_id: str, reason: str | None = None) -> TerminateResponse:
        params = {"reason": reason} if reason else None
        return await self._call("DELETE", f"/v3/workflow/terminate/{workflow_id}", TerminateResponse, params=params)

    async def send_event(self, workflow_id: str, event: str, payload: Any = None) -> WorkflowResponse:
        return await self._call("POST", f"/v3/workflow/{workflow_id}/event/{event}", WorkflowResponse, payload)

    async def execute_disconnected(
        self, workflow_id: str, node: str, parameters: dict[str, Any] | None = None
    ) -> DisconnectedResult:
        body = DisconnectedRequest(node=node, parameters=parameters or {})
        return await self._call(
            "POST", f"/v3/workflow/{workflow_id}/disconnected-node/execute", DisconnectedResult, body
        )

    async def retry(
        self,
        workflow_id: str,
        *,
        from_node: str | None = None,
        callback_url: str | None = None,
        sync_timeout_ms: int | None = None,
    ) -> WorkflowResponse:
        """Run a FAILED or TERMINATED run again from `from_node` (default: where it failed or stopped)."""
        body = RetryRequest(from_node=from_node, callback_url=callback_url, sync_timeout_ms=sync_timeout_ms)
        return await self._call("PUT", f"/v3/workflow/retry/{workflow_id}", WorkflowResponse, body)

    async def test(self, request: TestRequest | dict[str, Any]) -> TestResponse:
        """A test run (contract 8.3): answers when it ends, with the trace of every visit.

        `request` is a `TestRequest` or its JSON form as a dict (sent as is, so the gateway's own
        checks and pointers apply to it).
        """
        sync_ms = request.sync_timeout_ms if isinstance(request, TestRequest) else request.get("syncTimeoutMs")
        wait_s = max(MIN_TEST_TIMEOUT_MS, sync_ms if isinstance(sync_ms, int) else 0) / 1000 + TEST_ANSWER_MARGIN_S
        timeout = httpx.Timeout(wait_s, connect=5.0)
        return await self._call("POST", "/v3/workflow/test", TestResponse, request, http_timeout=timeout)

    async def list_runs(
        self,
        *,
        statuses: list[str] | None = None,
        definition_id: str | None = None,
        definition_version: str | None = None,
        started_after: str | None = None,
        started_before: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of the tenant's runs (contract 8.1); pass `next_page_token` back for the next page."""
        query = {
            "status": ",".join(statuses) if statuses else None,
            "definitionId": definition_id,
            "definitionVersion": definition_version,
            "startedAfter": started_after,
            "startedBefore": started_before,
            "pageSize": str(page_size) if page_size is not None else None,
            "pageToken": page_token,
        }
        params = {name: value for name, value in query.items() if value is not None}
        return await self._call("GET", "/v3/workflows", RunPage, params=params)

    async def create_schedule(self, request: ScheduleRequest) -> Schedule:
        """Create a schedule (contract 9): 409 if its id exists, 422 on a bad cron."""
        return await self._call("POST", "/v3/schedules", Schedule, request)

    async def list_schedules(self) -> list[Schedule]:
        return (await self._call("GET", "/v3/schedules", ScheduleList)).schedules

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._call("GET", f"/v3/schedules/{schedule_id}", Schedule)

    async def pause_schedule(self, schedule_id: str) -> Schedule:
        return await self._call("POST", f"/v3/schedules/{schedule_id}/pause", Schedule)

    async def unpause_schedule(self, schedule_id: str) -> Schedule:
        return await self._call("POST", f"/v3/schedules/{schedule_id}/unpause", Schedule)

    async def trigger_schedule(self, schedule_id: str) -> Schedule:
        """Start one run of the schedule now."""
        return await self._call("POST", f"/v3/schedules/{schedule_id}/trigger", Schedule)

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete the schedule; the runs it started go on."""
        await self._call("DELETE", f"/v3/schedules/{schedule_id}", type(None))

    async def _call(
        self,
        method: str,
        path: str,
        into: type[T],
        body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        http_timeout: httpx.Timeout | None = None,
    ) -> T:
        content = None if body is None and method in {"GET", "DELETE"} else msgspec.json.encode(body)
        response = await self.http.request(
            method,
            path,
            content=content,
            params=params,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=http_timeout if http_timeout is not None else httpx.USE_CLIENT_DEFAULT,
        )
        raise_for_problem(response)
        if not response.content and into is type(None):
            return None  # type: ignore[return-value]  # 204 No Content
        return msgspec.json.decode(response.content, type=into)

"""`DefinitionsClient`: the dsl-store's definition management routes (contract 10) as typed async methods."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import httpx
import msgspec

from drift_client.client import BearerClient, raise_for_problem
from drift_schema.definitions import ImportResult, NodePage, NodeSummary, Validation, WorkflowPage, WorkflowSummary
from drift_schema.workflow import Bundle

T = TypeVar("T")
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class DefinitionsClient(BearerClient):
    """Calls the dsl-store as one tenant (the one its API key names); errors raise DriftError."""

    default_timeout = DEFAULT_TIMEOUT

    async def list_workflows(
        self, *, prefix: str = "", page_size: int | None = None, page_token: str | None = None
    ) -> WorkflowPage:
        """One page of workflow definitions sorted by id."""
        params = _page_params(prefix, page_size, page_token)
        return await self._call("GET", "/workflowDefinition", WorkflowPage, params=params)

    async def list_nodes(
        self,
        *,
        prefix: str = "",
        node_type: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> NodePage:
        """One page of node definitions sorted by id, optionally of one type."""
        params = _page_params(prefix, page_size, page_token)
        if node_type:
            params.append(("type", node_type))
        return await self._call("GET", "/nodeDefinition", NodePage, params=params)

    async def all_workflows(self, *, prefix: str = "") -> AsyncIterator[WorkflowSummary]:
        """Every workflow definition, following the pages."""
        token: str | None = None
        while True:
            page = await self.list_workflows(prefix=prefix, page_size=500, page_token=token)
            for item in page.items:
                yield item
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def all_nodes(self, *, prefix: str = "", node_type: str | None = None) -> AsyncIterator[NodeSummary]:
        """Every node definition, following the pages."""
        token: str | None = None
        while True:
            page = await self.list_nodes(prefix=prefix, node_type=node_type, page_size=500, page_token=token)
            for item in page.items:
                yield item
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def delete_workflow(self, definition_id: str) -> None:
        """Delete a workflow definition and every version (404 when it does not exist)."""
        await self._call("DELETE", f"/workflowDefinition/{definition_id}", None)

    async def delete_node(self, definition_id: str) -> None:
        """Delete a node definition; DriftError 409 (naming the workflows) while one refers to it."""
        await self._call("DELETE", f"/nodeDefinition/{definition_id}", None)

    async def validate(self, workflow: Any) -> Validation:
        """Check a workflow definition (a dict or a WorkflowDefinition) as publishing would, storing nothing."""
        return await self._call("POST", "/workflowDefinition/validate", Validation, body=workflow)

    async def export(self, workflow_ids: list[str], *, version: str | None = None) -> Bundle:
        """A bundle of the workflows (LATEST by default) with every node and CHILD workflow they refer to."""
        params = [("workflowId", workflow_id) for workflow_id in workflow_ids]
        if version:
            params.append(("version", version))
        return await self._call("GET", "/bundle", Bundle, params=params)

    async def export_raw(self, workflow_ids: list[str], *, version: str | None = None) -> bytes:
        """The exported bundle as the server wrote it (JSON bytes), for writing to a file."""
        params = [("workflowId", workflow_id) for workflow_id in workflow_ids]
        if version:
            params.append(("version", version))
        response = await self.http.get("/bundle", params=tuple(params))
        raise_for_problem(response)
        return response.content

    async def import_bundle(self, bundle: Any, *, publish: bool = False, activate: bool = False) -> ImportResult:
        """Import a bundle (dict, Bundle or JSON bytes) all or nothing; DriftError 422 with pointers when invalid."""
        params = [("publish", str(publish).lower()), ("activate", str(activate).lower())]
        return await self._call("POST", "/bundle", ImportResult, body=bundle, params=params)

    async def _call(
        self,
        method: str,
        path: str,
        into: type[T] | None,
        body: Any = None,
        params: list[tuple[str, str]] | None = None,
    ) -> T:
        content = body if isinstance(body, bytes) else None if body is None else msgspec.json.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else {}
        query = tuple(params or [])
        response = await self.http.request(method, path, content=content, params=query, headers=headers)
        raise_for_problem(response)
        if into is None:
            return None  # type: ignore[return-value]
        return msgspec.json.decode(response.content, type=into)


def _page_params(prefix: str, page_size: int | None, page_token: str | None) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    if prefix:
        params.append(("prefix", prefix))
    if page_size is not None:
        params.append(("pageSize", str(page_size)))
    if page_token:
        params.append(("pageToken", page_token))
    return params

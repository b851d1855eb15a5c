"""Pinning: the dispatcher resolves a run's definitions from the dsl-store once, at start."""

from __future__ import annotations

from typing import Any

import httpx

from drift_runtime.messaging import TransientFault
from drift_schema import codec
from drift_schema.workflow import WorkflowDefinition

TENANT_HEADER = "X-Drift-Tenant"
TIMEOUT = httpx.Timeout(5.0, connect=2.0)


class DefinitionClient:
    """Reads definitions from the dsl-store with the service token, acting for one tenant per call."""

    def __init__(self, base_url: str, service_token: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=TIMEOUT, headers={"Authorization": f"Bearer {service_token}"}
        )

    async def pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        """The workflow at `version` with every referenced node inlined; None when it does not exist."""
        try:
            response = await self.http.get(
                f"/workflowDefinition/{definition_id}",
                params={"version": version, "enrichNodeDefinition": "true"},
                headers={TENANT_HEADER: tenant},
            )
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}") from None
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise TransientFault(f"dsl-store answered {response.status_code}")
        return codec.decode(response.content, WorkflowDefinition)

    async def enums(self, tenant: str) -> dict[str, Any]:
        """The tenant's enum store (`$enums`), pinned into a run at start; `{}` when it has none."""
        try:
            response = await self.http.get("/enums", headers={TENANT_HEADER: tenant})
        except httpx.HTTPError as error:
            raise TransientFault(f"dsl-store unreachable: {error}") from None
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise TransientFault(f"dsl-store answered {response.status_code} for enums")
        return codec.decode(response.content, dict[str, Any])

    async def aclose(self) -> None:
        await self.http.aclose()

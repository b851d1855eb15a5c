"""`ACTIVE` at start: a version picked from the workflow's traffic split by a stable hash of the workflowId.

The split is read from the dsl-store (`GET /workflowDefinition/{id}/traffic`) and cached with the
definitions, so under the change events an activation or a new split reaches the next start at once.
"""

from __future__ import annotations

from typing import Protocol

from drift_schema.traffic import TrafficSplit, pick
from drift_schema.workflow import ACTIVE


class SplitSource(Protocol):
    """Where a workflow's traffic split is read (the dispatcher's DefinitionClient)."""

    async def traffic_split(self, tenant: str, definition_id: str) -> TrafficSplit | None: ...


async def resolve_version(client: SplitSource, tenant: str, definition_id: str, version: str, workflow_id: str) -> str:
    """The version a start runs: `version` itself unless it is `ACTIVE` and the workflow has versions to pick from."""
    if version != ACTIVE:
        return version
    split = await client.traffic_split(tenant, definition_id)
    if split is None:
        return version  # no ACTIVE version (or no workflow): the pinning lookup answers NOT_FOUND as before
    return str(pick([(int(entry.version), entry.weight) for entry in split.split], workflow_id))

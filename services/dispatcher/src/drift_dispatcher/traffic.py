"""`ACTIVE` at start: a version picked from the workflow's traffic split by a stable hash of the workflowId.

The split is read from the dsl-store (`GET /workflowDefinition/{id}/traffic`) and cached with the
definitions, so under the change events an activation or a new split reaches the next start at once.
"""

from __future__ import annotations

import httpx

from drift_dispatcher.definitions import TENANT_HEADER, DefinitionClient
from drift_runtime.messaging import TransientFault
from drift_schema import codec
from drift_schema.traffic import TrafficSplit, pick
from drift_schema.workflow import ACTIVE


async def resolve_version(
    client: DefinitionClient, tenant: str, definition_id: str, version: str, workflow_id: str
) -> str:
    """The version a start runs: `version` itself unless it is `ACTIVE` and the workflow has versions to pick from."""
    if version != ACTIVE:
        return version
    split = await _split(client, tenant, definition_id)
    if split is None:
        return version  # no ACTIVE version (or no workflow): the pinning lookup answers NOT_FOUND as before
    return str(pick([(int(entry.version), entry.weight) for entry in split.split], workflow_id))


async def _split(client: DefinitionClient, tenant: str, definition_id: str) -> TrafficSplit | None:
    key = (tenant, "traffic", definition_id)
    hit, cached = client.cache.get(key)
    if hit:
        found: TrafficSplit | None = cached
        return found
    generation = client.cache.generation
    try:
        response = await client.http.get(
            f"/workflowDefinition/{definition_id}/traffic", headers={TENANT_HEADER: tenant}
        )
    except httpx.HTTPError as error:
        raise TransientFault(f"dsl-store unreachable: {error}") from None
    if response.status_code in (404, 422):
        split = None
    elif response.status_code != 200:
        raise TransientFault(f"dsl-store answered {response.status_code} for the traffic split")
    else:
        split = codec.decode(response.content, TrafficSplit)
    client.cache.put(key, split, generation)
    return split

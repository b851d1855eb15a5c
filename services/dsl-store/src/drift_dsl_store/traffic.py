"""Traffic split between published versions of a workflow (`PUT /workflowDefinition/{id}/traffic`).

The split is stored with the definition's pointers; the heaviest version becomes the active one
(what `?version=ACTIVE` reads answer), and `activate` sets the split back to one version. Starts
with version `ACTIVE` pick a version by a stable hash of their `workflowId` (`drift_schema.traffic`);
the dispatcher reads the split with `GET .../traffic` and caches it under the change events.
"""

from __future__ import annotations

import structlog

from drift_dsl_store.errors import Invalid, NotFound
from drift_dsl_store.events import Change
from drift_dsl_store.service import DefinitionService
from drift_dsl_store.store import DefinitionKey, Kind
from drift_dsl_store.validation import parse_json
from drift_schema import codec
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError
from drift_schema.ids import is_definition_id
from drift_schema.traffic import TrafficSplit, VersionWeight, split_faults

log = structlog.get_logger("drift.dsl_store.traffic")


class TrafficService:
    """Reads and writes workflow traffic splits on top of the definition service's store."""

    def __init__(self, definitions: DefinitionService) -> None:
        self.definitions = definitions

    async def split(self, tenant: str, definition_id: str) -> TrafficSplit:
        """The split `ACTIVE` starts follow: the stored one, else the active version at weight 100."""
        key = DefinitionKey(tenant, Kind.WORKFLOW, definition_id)
        store = self.definitions.store
        if not is_definition_id(definition_id):
            raise NotFound(f"workflow definition '{definition_id}' does not exist")
        stored = await self.definitions.index.traffic(key)
        if stored is not None:
            return TrafficSplit(split=[VersionWeight(version=str(v), weight=w) for v, w in stored])
        active = await store.get(key, "ACTIVE")
        if active is None:
            raise NotFound(f"workflow definition '{definition_id}' has no ACTIVE version")
        return TrafficSplit(split=[VersionWeight(version=active.version, weight=100)])

    async def set_split(self, tenant: str, definition_id: str, raw: bytes) -> TrafficSplit:
        """Store a split of published versions whose integer weights sum to 100; 422 with pointers otherwise."""
        try:
            parse_json(raw)
            split = codec.decode(raw, TrafficSplit)
        except DecodeError as error:
            raise Invalid("the traffic split is invalid", [error.as_problem_error()]) from None
        faults = split_faults(split)
        if faults:
            raise Invalid("the traffic split is invalid", faults)
        key = DefinitionKey(tenant, Kind.WORKFLOW, definition_id)
        store = self.definitions.store
        if not is_definition_id(definition_id) or await self.definitions.index.versions(key) is None:
            raise NotFound(f"workflow definition '{definition_id}' does not exist")
        for index, entry in enumerate(split.split):
            stored = await store.get(key, entry.version)
            if stored is None:
                faults.append(
                    ProblemError(
                        pointer=f"/split/{index}/version",
                        message=f"workflow definition '{definition_id}' has no published version {entry.version}",
                    )
                )
                continue
            workflow = self.definitions.load_workflow(stored.body)
            faults += [
                ProblemError(pointer=f"/split/{index}/version", message=f"version {entry.version}: {fault.message}")
                for fault in await self.definitions.unresolved_nodes(tenant, workflow)
            ]
        if faults:
            raise Invalid("the traffic split is invalid", faults)
        weights = [(int(entry.version), entry.weight) for entry in split.split]
        if not await store.set_traffic(key, weights):
            # A version or the definition went away between the checks and the write.
            raise NotFound(f"workflow definition '{definition_id}' changed meanwhile; nothing was stored")
        log.info("dsl.traffic_split", id=definition_id, split=[f"{v}:{w}" for v, w in weights])
        await self.definitions.announce(key, None, Change.ACTIVATED)
        return TrafficSplit(split=[VersionWeight(version=str(v), weight=w) for v, w in weights])

"""Bundles (`{"nodeDefinitions": [...], "workflowDefinitions": [...]}`): export a closure, import all or nothing.

Export answers the asked workflows with every node and CHILD workflow they
refer to, transitively. Import is `drift apply` done by the server in one go:
every definition of the bundle is checked first (with pointers into the bundle,
`/workflowDefinitions/0/states/x/...`), and only a bundle without a fault is
written, as one store transaction (see the store connectors for HBase). Like
`drift apply`, it is idempotent: an equal SNAPSHOT is not rewritten, a SNAPSHOT
equal to LATEST is not published again, an ACTIVE version is not re-activated.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from drift_dsl_store.errors import Conflict, Invalid, NotFound
from drift_dsl_store.events import Change
from drift_dsl_store.service import DefinitionService, normal_version
from drift_dsl_store.store import BundleWrite, DefinitionKey, Kind, Missing, WriteContention
from drift_dsl_store.validation import escape, parse_json
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError, encode
from drift_schema.definitions import ImportResult
from drift_schema.nodes import NodeBase
from drift_schema.nodes.child import ChildNode
from drift_schema.workflow import LATEST, SNAPSHOT, Bundle, WorkflowDefinition

log = structlog.get_logger("drift.dsl_store.bundles")

NODES = "nodeDefinitions"
WORKFLOWS = "workflowDefinitions"
MAX_EXPORTED = 1000
"""An export holds at most this many definitions (a guard against runaway closures)."""
MAX_IMPORT_ATTEMPTS = 5
MAX_IMPORTED = 500
"""A bundle holds at most this many definitions: an import is one transaction, which must stay short."""


@dataclass
class _Planned:
    kind: Kind
    index: int
    definition: NodeBase | WorkflowDefinition
    write: BundleWrite | None
    outcome: str


def _same(left: NodeBase | WorkflowDefinition, right: NodeBase | WorkflowDefinition) -> bool:
    """Equal apart from `version` (the server's)."""
    return bool(msgspec.structs.replace(left, version=None) == msgspec.structs.replace(right, version=None))


def _render(definition: NodeBase | WorkflowDefinition) -> Any:
    def render(version: str) -> bytes:
        return encode(msgspec.structs.replace(definition, version=version))

    return render


def _prefixed(base: str, errors: list[ProblemError] | None) -> list[ProblemError]:
    return [ProblemError(pointer=f"{base}{error.pointer}", message=error.message) for error in errors or []]


class BundleService:
    """Export and import of bundles on top of DefinitionService (same store, same change events)."""

    def __init__(self, definitions: DefinitionService) -> None:
        self.definitions = definitions

    # -- export --------------------------------------------------------------------------------------

    async def export(self, tenant: str, workflow_ids: list[str], version: str) -> Bundle:
        """The workflows at `version` (LATEST by default) and their closure of nodes and CHILD workflows.

        Referenced nodes are exported at the version the state names (a draft-only
        node at its SNAPSHOT when a LATEST reference has nothing published); CHILD
        workflows at the version the CHILD node names, else LATEST, else SNAPSHOT.
        A reference to nothing is a 422, since the bundle could not be imported.
        """
        if not workflow_ids:
            message = "name at least one workflowId"
            raise Invalid(message, [ProblemError(pointer="", message=message)])
        workflows: dict[str, WorkflowDefinition] = {}
        nodes: dict[str, NodeBase] = {}
        faults: list[ProblemError] = []
        pending: list[tuple[str, str]] = [(wf_id, version or LATEST) for wf_id in dict.fromkeys(workflow_ids)]
        roots = len(pending)
        while pending:
            wf_id, wanted = pending.pop(0)
            if wf_id in workflows:
                continue
            if len(workflows) + len(nodes) >= MAX_EXPORTED:
                message = f"the closure holds more than {MAX_EXPORTED} definitions"
                raise Invalid(message, [ProblemError(pointer="", message=message)])
            root = roots > 0
            roots -= 1
            if root:
                workflow = await self.definitions.get(tenant, Kind.WORKFLOW, wf_id, wanted)
            else:
                found = await self._first(tenant, Kind.WORKFLOW, wf_id, [wanted, LATEST, SNAPSHOT])
                if found is None:
                    continue  # reported by the CHILD node that named it
                workflow = found
            assert isinstance(workflow, WorkflowDefinition)
            workflows[wf_id] = workflow
            for name, state in workflow.states.items():
                node: NodeBase | None = state.node_definition
                if node is None and state.resource_id is not None:
                    node = nodes.get(state.resource_id)
                    if node is None:
                        resolved = await self._first(
                            tenant, Kind.NODE, state.resource_id, [state.resource_version, SNAPSHOT]
                        )
                        if resolved is None:
                            faults.append(
                                ProblemError(
                                    pointer=f"/states/{escape(name)}/resourceId",
                                    message=f"workflow '{wf_id}': node '{state.resource_id}' does not exist",
                                )
                            )
                            continue
                        assert isinstance(resolved, NodeBase)
                        nodes[state.resource_id] = node = resolved
                if isinstance(node, ChildNode) and node.child_workflow_id not in workflows:
                    child = await self._first(
                        tenant, Kind.WORKFLOW, node.child_workflow_id, [node.child_workflow_version, LATEST, SNAPSHOT]
                    )
                    if child is None:
                        faults.append(
                            ProblemError(
                                pointer=f"/states/{escape(name)}",
                                message=f"workflow '{wf_id}': child workflow '{node.child_workflow_id}' does not exist",
                            )
                        )
                        continue
                    pending.append((node.child_workflow_id, node.child_workflow_version))
        if faults:
            raise Invalid("the bundle would refer to definitions that do not exist", faults)
        return Bundle(
            node_definitions=[nodes[node_id] for node_id in sorted(nodes)],  # type: ignore[misc]
            workflow_definitions=list(workflows.values()),
        )

    async def _first(
        self, tenant: str, kind: Kind, definition_id: str, versions: list[str]
    ) -> NodeBase | WorkflowDefinition | None:
        for version in dict.fromkeys(normal_version(v) for v in versions):
            try:
                return await self.definitions.get(tenant, kind, definition_id, version)
            except (NotFound, Invalid):
                continue
        return None

    # -- import --------------------------------------------------------------------------------------

    async def import_bundle(self, tenant: str, raw: bytes, publish: bool, activate: bool) -> ImportResult:
        """Check every definition, then write them all in one transaction (or none); see the module docstring."""
        # Checking up to MAX_IMPORTED definitions is CPU work: off the event loop, so other requests go on.
        nodes, workflows = await asyncio.to_thread(self._checked, raw)
        faults: list[ProblemError] = []
        if publish:
            bundle_nodes = {node.id: node for node in nodes}
            for index, workflow in enumerate(workflows):
                found = await self.definitions.publish_faults(tenant, workflow, bundle_nodes)
                faults += _prefixed(f"/{WORKFLOWS}/{index}", found)
        if faults:
            raise Invalid("the bundle has invalid definitions; nothing was stored", faults)
        for attempt in range(MAX_IMPORT_ATTEMPTS):
            plan = await self._plan(tenant, nodes, workflows, publish, activate)
            writes = [planned.write for planned in plan if planned.write is not None]
            try:
                written = await self.definitions.store.apply(writes) if writes else []
            except WriteContention:
                log.info("dsl.import_retry", attempt=attempt)
                continue
            except Missing as missing:
                gone = {key.id for key in missing.keys}
                errors = [
                    ProblemError(
                        pointer=f"/{WORKFLOWS}/{planned.index}/states/{escape(name)}/resourceId",
                        message=f"node '{state.resource_id}' was deleted meanwhile",
                    )
                    for planned in plan
                    if isinstance(planned.definition, WorkflowDefinition)
                    for name, state in planned.definition.states.items()
                    if state.resource_id in gone
                ]
                raise Invalid("the bundle refers to deleted nodes; nothing was stored", errors) from None
            await self._announce(plan, written)
            result = ImportResult(
                created=[p.definition.id for p in plan if p.outcome == "created"],
                unchanged=[p.definition.id for p in plan if p.outcome == "unchanged"],
                updated=[p.definition.id for p in plan if p.outcome == "updated"],
            )
            log.info(
                "dsl.imported",
                created=len(result.created),
                updated=len(result.updated),
                unchanged=len(result.unchanged),
            )
            return result
        raise Conflict("the bundle's definitions kept changing while it was imported; retry")

    def _checked(self, raw: bytes) -> tuple[list[NodeBase], list[WorkflowDefinition]]:
        """Every definition decoded and checked as create does; all faults at once, pointing into the bundle."""
        try:
            parsed = parse_json(raw)
        except DecodeError as error:
            raise Invalid("the body is not JSON", [error.as_problem_error()]) from None
        if not isinstance(parsed, dict) or not (set(parsed) <= {NODES, WORKFLOWS}):
            message = f"a bundle is an object with '{NODES}' and '{WORKFLOWS}' (lists) only"
            raise Invalid(message, [ProblemError(pointer="", message=message)])
        self._bounded(parsed)
        faults: list[ProblemError] = []
        found: dict[Kind, list[Any]] = {Kind.NODE: [], Kind.WORKFLOW: []}
        for field, kind in ((NODES, Kind.NODE), (WORKFLOWS, Kind.WORKFLOW)):
            items = parsed.get(field, [])
            if not isinstance(items, list):
                faults.append(ProblemError(pointer=f"/{field}", message="must be a list"))
                continue
            seen: dict[str, int] = {}
            for index, item in enumerate(items):
                base = f"/{field}/{index}"
                try:
                    definition = self.definitions.checked(kind, msgspec.json.encode(item))
                except Invalid as invalid:
                    faults += _prefixed(base, invalid.errors) or [ProblemError(pointer=base, message=str(invalid))]
                    continue
                if definition.id in seen:
                    faults.append(
                        ProblemError(
                            pointer=f"{base}/id", message=f"'{definition.id}' is also {field}[{seen[definition.id]}]"
                        )
                    )
                    continue
                seen[definition.id] = index
                found[kind].append(definition)
        if faults:
            raise Invalid("the bundle has invalid definitions; nothing was stored", faults)
        return found[Kind.NODE], found[Kind.WORKFLOW]

    @staticmethod
    def _bounded(parsed: dict[str, Any]) -> None:
        count = sum(len(items) for items in parsed.values() if isinstance(items, list))
        if count > MAX_IMPORTED:
            message = f"a bundle holds at most {MAX_IMPORTED} definitions ({count} given); split it"
            raise Invalid(message, [ProblemError(pointer="", message=message)])

    async def _plan(
        self,
        tenant: str,
        nodes: list[NodeBase],
        workflows: list[WorkflowDefinition],
        publish: bool,
        activate: bool,
    ) -> list[_Planned]:
        """What to write for each definition, from what the store holds now (read, not cached pointers)."""
        store = self.definitions.index
        plan: list[_Planned] = []
        faults: list[ProblemError] = []
        entries: list[tuple[Kind, int, NodeBase | WorkflowDefinition]] = [
            *((Kind.NODE, i, n) for i, n in enumerate(nodes)),
            *((Kind.WORKFLOW, i, w) for i, w in enumerate(workflows)),
        ]
        # One read per kind (the store, not cached pointers: the import compares against what is stored).
        heads = {
            (kind, head.id): head
            for kind, group in ((Kind.NODE, nodes), (Kind.WORKFLOW, workflows))
            for head in await store.find(tenant, kind, [d.id for d in group])
        }
        for kind, index, definition in entries:
            key = DefinitionKey(tenant, kind, definition.id)
            head = heads.get((kind, definition.id))
            exists = head is not None
            snapshot_body = head.snapshot if head else None
            latest_body = head.latest_body if head else None
            latest_number = head.latest if head is not None and latest_body is not None else 0
            active_number = head.active if head else None
            load = self.definitions.loaded
            new_snapshot = snapshot_body is None or not _same(load(kind, snapshot_body), definition)
            to_publish = publish and (latest_body is None or not _same(load(kind, latest_body), definition))
            to_activate = False
            if kind is Kind.WORKFLOW and activate:
                if not to_publish and latest_number == 0:
                    faults.append(
                        ProblemError(
                            pointer=f"/{WORKFLOWS}/{index}",
                            message=f"workflow '{definition.id}' has no published version to activate (publish it)",
                        )
                    )
                    continue
                to_activate = to_publish or active_number != latest_number
            requires: tuple[DefinitionKey, ...] = ()
            if to_publish and isinstance(definition, WorkflowDefinition):
                requires = tuple(
                    DefinitionKey(tenant, Kind.NODE, node_id)
                    for node_id in sorted(
                        {
                            s.resource_id
                            for s in definition.states.values()
                            if s.node_definition is None and s.resource_id
                        }
                    )
                )
            if not exists:
                outcome = "created"
            elif new_snapshot or to_publish or to_activate:
                outcome = "updated"
            else:
                plan.append(_Planned(kind, index, definition, None, "unchanged"))
                continue
            write = BundleWrite(
                key=key,
                snapshot=encode(definition) if new_snapshot else None,
                expected_latest=latest_number if exists else None,
                publish=_render(definition) if to_publish else None,
                activate=to_activate,
                activate_if_none=kind is Kind.WORKFLOW,
                requires=requires,
            )
            plan.append(_Planned(kind, index, definition, write, outcome))
        if faults:
            raise Invalid("the bundle cannot be activated; nothing was stored", faults)
        return plan

    async def _announce(self, plan: list[_Planned], written: list[Any]) -> None:
        done = iter(written)
        for planned in plan:
            if planned.write is None:
                continue
            result = next(done)
            key = planned.write.key
            if planned.write.snapshot is not None:
                await self.definitions.announce(key, SNAPSHOT, Change.UPDATED)
            if result.published:
                await self.definitions.announce(key, str(result.latest), Change.PUBLISHED)
            if result.activated:
                await self.definitions.announce(key, str(result.latest), Change.ACTIVATED)

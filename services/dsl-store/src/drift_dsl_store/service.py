"""Definition use cases: decode, validate, version, resolve and announce (raising problem details)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import structlog

from drift_dsl_store.errors import Conflict as _Conflict
from drift_dsl_store.errors import Invalid, NotFound
from drift_dsl_store.events import Change, ChangePublisher, DefinitionChanged, announce
from drift_dsl_store.store import (
    AlreadyExists,
    DefinitionIndex,
    DefinitionKey,
    Definitions,
    Kind,
    ListedDefinition,
    Missing,
    NotCreated,
    PublishContention,
    Referenced,
    RefersTo,
    StoredDefinition,
)
from drift_dsl_store.validation import after_pruning, decode_collecting, escape, parse_json, scan_unknown
from drift_runtime.web import BadRequest
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError, encode, node_definition_decoder, workflow_definition_decoder
from drift_schema.definitions import DefinitionSummary, NodeSummary, Validation, WorkflowSummary
from drift_schema.graph import check_workflow, disconnected, node_errors
from drift_schema.ids import is_definition_id
from drift_schema.nodes import NodeBase, NodeDefinition
from drift_schema.workflow import (
    ACTIVE,
    LATEST,
    MAX_VERSION_DIGITS,
    SNAPSHOT,
    State,
    VersionInfo,
    WorkflowDefinition,
    is_published_version,
)

log = structlog.get_logger("drift.dsl_store")

Definition = NodeBase | WorkflowDefinition
NodeRef = tuple[str, str]


class Activation(msgspec.Struct, frozen=True):
    """Answer of `activate`."""

    id: str
    version: str
    active: bool = True


MIN_PAGE_SIZE, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 1, 50, 500
MAX_SCANNED = 5000
"""A filtered listing looks at no more definitions than this per page (then answers a shorter page and a token)."""


class Conflict(_Conflict):
    """409; a refused node delete also names the referring workflows (`referrers`)."""

    def __init__(self, detail: str | None = None, referrers: list[str] | None = None) -> None:
        errors = [ProblemError(pointer="", message=f"referred to by workflow '{ref}'") for ref in referrers or []]
        super().__init__(detail, errors or None)
        self.referrers = referrers or []


class PageCursor(msgspec.Struct, frozen=True, array_like=True):
    """What a page token carries (opaque to clients): where to go on, and for which listing."""

    tenant: str
    kind: str
    prefix: str
    type: str | None
    after: str


class _Heading(msgspec.Struct):
    """The fields a listing shows, read from a stored body (everything else is skipped)."""

    comment: str | None = None
    type: str | None = None


_heading_decoder = msgspec.json.Decoder(_Heading)


def _write_token(cursor: PageCursor) -> str:
    return base64.urlsafe_b64encode(msgspec.msgpack.encode(cursor)).decode().rstrip("=")


def _read_token(token: str, expected: PageCursor) -> PageCursor:
    """The cursor of a token this listing issued; BadRequest for any other (another tenant's, other filters)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        cursor = msgspec.msgpack.decode(raw, type=PageCursor)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise BadRequest("pageToken is not a page token of this listing") from None
    if msgspec.structs.replace(cursor, after="") != expected:
        raise BadRequest("pageToken belongs to another listing (tenant, kind, prefix or type differ)")
    return cursor


def _summary(kind: Kind, listed: ListedDefinition) -> DefinitionSummary:
    source = listed.snapshot or listed.latest_body or b"{}"
    try:
        heading = _heading_decoder.decode(source)
    except msgspec.DecodeError:
        heading = _Heading()
    # What both summaries carry; a node's adds its type.
    common: dict[str, Any] = {
        "id": listed.id,
        "comment": heading.comment,
        "latest_version": str(listed.latest) if listed.latest_body is not None else None,
        "active_version": str(listed.active) if listed.active is not None else None,
        "has_snapshot": listed.snapshot is not None,
        "updated_at": _rfc3339(listed.updated_at),
    }
    if kind is Kind.NODE:
        return NodeSummary(type=heading.type, **common)
    return WorkflowSummary(**common)


def _refers_to(node_id: str) -> RefersTo:
    """Whether a stored workflow body refers to node `node_id` (by `resourceId`, at any version)."""

    def refers(body: bytes) -> bool:
        try:
            workflow = workflow_definition_decoder.decode(body)
        except msgspec.DecodeError:
            return False
        return any(state.node_definition is None and state.resource_id == node_id for state in workflow.states.values())

    return refers


def _deleted_meanwhile(draft: WorkflowDefinition, missing: Missing) -> list[ProblemError]:
    gone = {key.id for key in missing.keys}
    return [
        ProblemError(pointer=f"/states/{escape(name)}/resourceId", message=f"node '{state.resource_id}' was deleted")
        for name, state in draft.states.items()
        if state.node_definition is None and state.resource_id in gone
    ]


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def normal_version(version: str) -> str:
    """`version` as stored and compared: keywords upper-case, numbers without leading zeros."""
    return _normal_version(version)


def _normal_version(version: str) -> str:
    """Keywords are matched case-insensitively, numbers as numbers (`01` is `1`); anything else as written."""
    upper = version.strip().upper()
    if upper in (SNAPSHOT, LATEST, ACTIVE):
        return upper
    return str(int(upper)) if is_published_version(upper) else upper


def _requested_version(version: str) -> str:
    """A `?version=` normalised; a number too long to be a version is a 422 before any lookup.

    Any other word that is not a version finds nothing (404), as it always has.
    """
    normal = _normal_version(version)
    if normal.isascii() and normal.isdigit() and len(normal) > MAX_VERSION_DIGITS:
        raise Invalid(
            "version must be SNAPSHOT, LATEST, ACTIVE or a published version number",
            [ProblemError(pointer="", message=f"a version number has at most {MAX_VERSION_DIGITS} digits")],
        )
    return normal


def _node_refs(definition: WorkflowDefinition) -> set[NodeRef]:
    return {
        (state.resource_id, _normal_version(state.resource_version))
        for state in definition.states.values()
        if state.node_definition is None and state.resource_id is not None
    }


class DefinitionService:
    """CRUD, versioning and resolution of node and workflow definitions, per tenant."""

    def __init__(self, store: Definitions, index: DefinitionIndex, changes: ChangePublisher) -> None:
        self.store = store
        """Bodies and pointers, through the cache."""
        self.index = index
        """Listings, version records and traffic splits, from the backend (never cached)."""
        self.changes = changes

    # -- reading -------------------------------------------------------------------------------------

    async def get(self, tenant: str, kind: Kind, definition_id: str, version: str) -> Definition:
        """The definition at `SNAPSHOT`, `LATEST`, `ACTIVE` or a number; NotFound otherwise."""
        stored = await self._stored(DefinitionKey(tenant, kind, definition_id), _requested_version(version))
        return self._load(kind, stored.body)

    async def enriched(self, tenant: str, definition: WorkflowDefinition) -> WorkflowDefinition:
        """The workflow with each referenced node inlined as `nodeDefinition`, at its concrete version.

        Nodes resolve among published versions (`resourceVersion` LATEST or a
        number); an unresolvable reference is a 422 with pointers, since a
        partially inlined graph could not be run.
        """
        nodes = await self._published_nodes(tenant, _node_refs(definition))
        unresolved = await self._unresolved(tenant, definition, nodes)
        if unresolved:
            raise Invalid("referenced node definitions cannot be resolved", list(unresolved.values()))
        states: dict[str, State] = {}
        for name, state in definition.states.items():
            if state.node_definition is not None or state.resource_id is None:
                states[name] = state
                continue
            node = nodes[(state.resource_id, _normal_version(state.resource_version))]
            states[name] = msgspec.structs.replace(state, node_definition=node)
        return msgspec.structs.replace(definition, states=states)

    async def nodes_for_display(self, tenant: str, definition: WorkflowDefinition) -> dict[str, NodeBase | None]:
        """Each state's node for drawing: inline, published, else the node's SNAPSHOT (drafts draw too)."""
        refs = _node_refs(definition)
        published = await self._published_nodes(tenant, refs)
        drafts = await self._nodes(tenant, {(node_id, SNAPSHOT) for node_id, _ in refs})
        shown: dict[str, NodeBase | None] = {}
        for name, state in definition.states.items():
            if state.node_definition is not None or state.resource_id is None:
                shown[name] = state.node_definition
                continue
            ref = (state.resource_id, _normal_version(state.resource_version))
            shown[name] = published.get(ref) or drafts.get((state.resource_id, SNAPSHOT))
        return shown

    async def disconnected_states(self, tenant: str, definition: WorkflowDefinition) -> list[str]:
        """States no edge reaches (contract 4.2): allowed, runnable only through the disconnected-node route.

        Edges of referenced BRANCH and PARALLEL nodes count, with each node as
        the tree view shows it (published, else its SNAPSHOT).
        """
        shown = await self.nodes_for_display(tenant, definition)
        by_state = {id(state): shown.get(name) for name, state in definition.states.items()}
        return disconnected(definition, lambda state: by_state.get(id(state)))

    async def versions(self, tenant: str, kind: Kind, definition_id: str) -> list[VersionInfo]:
        records = await self.index.versions(DefinitionKey(tenant, kind, definition_id))
        if records is None:
            raise NotFound(f"{kind} definition '{definition_id}' does not exist")
        # Without a traffic split the active version takes every ACTIVE start.
        split = await self.index.traffic(DefinitionKey(tenant, kind, definition_id)) if kind is Kind.WORKFLOW else None
        weights = dict(split) if split is not None else {}
        return [
            VersionInfo(
                version=str(r.version),
                published_at=_rfc3339(r.published_at),
                active=r.active,
                weight=weights.get(r.version, 0) if split is not None else 100 * r.active,
            )
            for r in records
        ]

    # -- writing -------------------------------------------------------------------------------------

    async def create(self, tenant: str, kind: Kind, raw: bytes) -> Definition:
        """Store a new SNAPSHOT; Conflict when the id exists in any version."""
        return await self._write_snapshot(tenant, kind, raw, new=True)

    async def update(self, tenant: str, kind: Kind, raw: bytes) -> Definition:
        """Replace the SNAPSHOT (published versions never change); NotFound when never created."""
        return await self._write_snapshot(tenant, kind, raw, new=False)

    async def _write_snapshot(self, tenant: str, kind: Kind, raw: bytes, new: bool) -> Definition:
        """The SNAPSHOT of the body's id created (`new`) or replaced, announced, and answered as stored."""
        definition = self._validated(kind, raw)
        key = DefinitionKey(tenant, kind, definition.id)
        body = encode(definition)
        try:
            stored = await (self.store.create(key, body) if new else self.store.replace_snapshot(key, body))
        except AlreadyExists:
            raise Conflict(f"{kind} definition '{definition.id}' already exists; PUT replaces its SNAPSHOT") from None
        except NotCreated:
            raise NotFound(f"{kind} definition '{definition.id}' does not exist; POST creates it") from None
        log.info("dsl.created" if new else "dsl.updated", kind=str(kind), id=definition.id)
        await self._announce(key, SNAPSHOT, Change.UPDATED)
        return self._load(kind, stored.body)

    async def publish(self, tenant: str, kind: Kind, definition_id: str) -> Definition:
        """Freeze the SNAPSHOT as the next version number.

        Publishing is idempotent: when the SNAPSHOT equals LATEST (apart from
        `version`), LATEST is answered and no number is spent, so loading the
        same bundle at every `drift dev` start does not pile up versions. The
        check is a convenience, not a lock: concurrent publishes each get their
        own, distinct number. A workflow is validated as a whole with every
        referenced node resolved among the tenant's published nodes, and its
        first published version becomes ACTIVE (later ones wait for activate).
        """
        key = DefinitionKey(tenant, kind, definition_id)
        snapshot = await self._stored(key, SNAPSHOT)
        draft = self._load(kind, snapshot.body)
        latest = await self.store.get(key, LATEST)
        if latest is not None:
            current = self._load(kind, latest.body)
            if msgspec.structs.replace(current, version=None) == msgspec.structs.replace(draft, version=None):
                log.info("dsl.publish_unchanged", kind=str(kind), id=definition_id, version=latest.version)
                return current
        requires: list[DefinitionKey] = []
        workflow = draft if isinstance(draft, WorkflowDefinition) else None
        if workflow is not None:
            faults = await self.publish_faults(tenant, workflow)
            requires = [DefinitionKey(tenant, Kind.NODE, node_id) for node_id, _ in _node_refs(workflow)]
        else:
            assert isinstance(draft, NodeBase)
            faults = node_errors(draft)
        if faults:
            raise Invalid(f"{kind} definition '{definition_id}' cannot be published", faults)

        def render(version: str) -> bytes:
            return encode(msgspec.structs.replace(draft, version=version))

        try:
            if requires:
                # The store checks, in the publish's own transaction, that no referenced node was deleted meanwhile.
                published = await self.store.publish(key, render, kind is Kind.WORKFLOW, requires)
            else:
                published = await self.store.publish(key, render, activate_if_none=kind is Kind.WORKFLOW)
        except NotCreated:
            raise NotFound(f"{kind} definition '{definition_id}' does not exist") from None
        except PublishContention:
            raise Conflict("too many concurrent publishes of this definition; retry") from None
        except Missing as missing:
            raise Invalid(
                f"{kind} definition '{definition_id}' cannot be published",
                _deleted_meanwhile(workflow, missing) if workflow else [],
            ) from None
        version = published.definition.version
        log.info("dsl.published", kind=str(kind), id=definition_id, version=version, activated=published.activated)
        await self._announce(key, version, Change.PUBLISHED)
        if published.activated:
            await self._announce(key, version, Change.ACTIVATED)
        return self._load(kind, published.definition.body)

    async def activate(self, tenant: str, definition_id: str, version: str) -> Activation:
        """Make a published workflow version ACTIVE (an older one: a rollback)."""
        if not is_published_version(version.strip()):
            raise Invalid(
                "version must be a published version number",
                [ProblemError(pointer="", message=f"'{version}' is not a version number")],
            )
        number = int(version)
        key = DefinitionKey(tenant, Kind.WORKFLOW, definition_id)
        stored = await self.store.get(key, str(number)) if is_definition_id(definition_id) else None
        if stored is not None:
            # An older version may refer to nodes deleted since (only SNAPSHOT, LATEST and ACTIVE protect theirs).
            target = self._load(Kind.WORKFLOW, stored.body)
            assert isinstance(target, WorkflowDefinition)
            unresolved = await self._unresolved(tenant, target, await self._published_nodes(tenant, _node_refs(target)))
            if unresolved:
                raise Invalid(
                    f"version {number} of workflow definition '{definition_id}' refers to nodes that no longer exist",
                    list(unresolved.values()),
                )
        if not await self.store.activate(key, number):
            raise NotFound(f"workflow definition '{definition_id}' has no published version {number}")
        log.info("dsl.activated", kind=str(Kind.WORKFLOW), id=definition_id, version=number)
        await self._announce(key, str(number), Change.ACTIVATED)
        return Activation(id=definition_id, version=str(number))

    def load_workflow(self, body: bytes) -> WorkflowDefinition:
        """A stored workflow body, decoded."""
        loaded = self._load(Kind.WORKFLOW, body)
        assert isinstance(loaded, WorkflowDefinition)
        return loaded

    async def unresolved_nodes(self, tenant: str, definition: WorkflowDefinition) -> list[ProblemError]:
        """A fault for each referenced node a run of `definition` could not pin (deleted since it was published)."""
        nodes = await self._published_nodes(tenant, _node_refs(definition))
        return list((await self._unresolved(tenant, definition, nodes)).values())

    async def publish_faults(
        self, tenant: str, draft: WorkflowDefinition, extra_nodes: dict[str, NodeBase] | None = None
    ) -> list[ProblemError]:
        """What publishing `draft` checks: the graph with every referenced node resolved among published nodes.

        `extra_nodes` (by id) stand in for the LATEST of those nodes: an import's
        nodes, which are published in the same transaction as the workflow.
        """
        extra = extra_nodes or {}
        nodes = await self._published_nodes(
            tenant, {ref for ref in _node_refs(draft) if not (ref[1] == LATEST and ref[0] in extra)}
        )
        nodes.update({(node_id, LATEST): node for node_id, node in extra.items()})
        # check_workflow only knows a reference does not resolve; _unresolved says if its id or version is at fault.
        return check_workflow(
            draft,
            lambda state: nodes.get((state.resource_id or "", _normal_version(state.resource_version))),
            unresolved=await self._unresolved(tenant, draft, nodes),
        )

    # -- listing, deleting, validating ---------------------------------------------------------------

    async def listing(
        self, tenant: str, kind: Kind, prefix: str, page_size: int, page_token: str | None, node_type: str | None
    ) -> tuple[list[DefinitionSummary], str | None]:
        """One page of the tenant's definitions sorted by id, and the token of the next page (None at the end).

        A page token is the last id looked at, bound to the tenant, the kind and
        the filters; keyset paging keeps pages stable while definitions come and go.
        """
        if not MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"pageSize must be between {MIN_PAGE_SIZE} and {MAX_PAGE_SIZE}")
        wanted_type = node_type.strip().upper() if node_type else None
        cursor = PageCursor(tenant=tenant, kind=str(kind), prefix=prefix, type=wanted_type, after="")
        if page_token:
            cursor = _read_token(page_token, cursor)
        after, scanned = cursor.after, 0
        items: list[DefinitionSummary] = []
        while True:
            batch = await self.index.page(tenant, kind, prefix, after, page_size + 1)
            for listed in batch:
                if len(items) == page_size:
                    # More exist after the last item of this page.
                    return items, _write_token(msgspec.structs.replace(cursor, after=items[-1].id))
                after = listed.id
                scanned += 1
                summary = _summary(kind, listed)
                if wanted_type is None or (isinstance(summary, NodeSummary) and summary.type == wanted_type):
                    items.append(summary)
            if len(batch) <= page_size:
                return items, None
            if scanned >= MAX_SCANNED:
                # A type filter that matches little: answer what was found, and where to go on from.
                return items, _write_token(msgspec.structs.replace(cursor, after=after))

    async def delete(self, tenant: str, kind: Kind, definition_id: str) -> None:
        """Remove a definition and every version; nodes still referred to answer 409 with the referring ids."""
        key = DefinitionKey(tenant, kind, definition_id)
        refers_to = _refers_to(definition_id) if kind is Kind.NODE else None
        try:
            latest = await self.store.delete(key, refers_to) if is_definition_id(definition_id) else None
        except Referenced as referenced:
            raise Conflict(
                f"node definition '{definition_id}' is referred to by the SNAPSHOT, LATEST or ACTIVE version of "
                f"workflow(s) {', '.join(referenced.workflow_ids)}",
                referrers=referenced.workflow_ids,
            ) from None
        if latest is None:
            raise NotFound(f"{kind} definition '{definition_id}' does not exist")
        log.info("dsl.deleted", kind=str(kind), id=definition_id, latest=latest)
        # The event carries the highest deleted number: every instance drops 1..N from Redis too.
        await self._announce(key, str(latest), Change.DELETED)

    async def validate(self, tenant: str, raw: bytes) -> Validation:
        """The checks of create and publish on a workflow body, storing nothing."""
        draft = self._validated(Kind.WORKFLOW, raw)
        assert isinstance(draft, WorkflowDefinition)
        faults = await self.publish_faults(tenant, draft)
        if faults:
            raise Invalid(f"workflow definition '{draft.id}' is invalid", faults)
        return Validation(valid=True, disconnected_states=await self.disconnected_states(tenant, draft))

    # -- for the bundle service ----------------------------------------------------------------------

    def checked(self, kind: Kind, raw: bytes) -> Definition:
        """`raw` decoded and checked as create does (Invalid with pointers), its version SNAPSHOT."""
        return self._validated(kind, raw)

    def loaded(self, kind: Kind, body: bytes) -> Definition:
        """A stored body decoded."""
        return self._load(kind, body)

    async def announce(self, key: DefinitionKey, version: str | None, change: Change) -> None:
        """Announce a change of `key` on NATS (best effort)."""
        await self._announce(key, version, change)

    # -- helpers -------------------------------------------------------------------------------------

    async def _stored(self, key: DefinitionKey, version: str) -> StoredDefinition:
        stored = await self.store.get(key, version) if is_definition_id(key.id) else None
        if stored is None:
            raise NotFound(f"{key.kind} definition '{key.id}' has no version '{version}'")
        return stored

    @staticmethod
    def _load(kind: Kind, body: bytes) -> Definition:
        # Stored bodies were validated on the way in: the plain typed decoders suffice.
        if kind is Kind.NODE:
            return node_definition_decoder.decode(body)
        return workflow_definition_decoder.decode(body)

    @staticmethod
    def _validated(kind: Kind, raw: bytes) -> Definition:
        """Every fault at once: unknown types and fields, then decoding, then graph and expression checks."""
        shape: Any = NodeDefinition if kind is Kind.NODE else WorkflowDefinition
        try:
            parsed = parse_json(raw)
        except DecodeError as error:
            raise Invalid("the body is not JSON", [error.as_problem_error()]) from None
        cleaned, scan = scan_unknown(parsed, shape)
        definition, faults = decode_collecting(cleaned, shape) if cleaned is not None else (None, [])
        faults = scan.errors + faults
        if isinstance(definition, WorkflowDefinition):
            faults += after_pruning(check_workflow(definition), scan.pruned)
        elif isinstance(definition, NodeBase):
            faults += node_errors(definition)
        if faults or definition is None:
            subject = f"{kind} definition '{definition.id}'" if definition is not None else f"the {kind} definition"
            raise Invalid(f"{subject} is invalid", faults)
        # The server owns `version`: whatever the body said, this is the SNAPSHOT.
        return msgspec.structs.replace(definition, version=SNAPSHOT)

    async def _nodes(self, tenant: str, refs: Iterable[NodeRef]) -> dict[NodeRef, NodeBase]:
        wanted = sorted(refs)
        found = await asyncio.gather(
            *(self.store.get(DefinitionKey(tenant, Kind.NODE, node_id), version) for node_id, version in wanted)
        )
        nodes: dict[NodeRef, NodeBase] = {}
        for ref, stored in zip(wanted, found, strict=True):
            if stored is not None:
                node = self._load(Kind.NODE, stored.body)
                assert isinstance(node, NodeBase)
                nodes[ref] = node
        return nodes

    async def _published_nodes(self, tenant: str, refs: Iterable[NodeRef]) -> dict[NodeRef, NodeBase]:
        # Runs pin published nodes only: a SNAPSHOT or ACTIVE reference never resolves.
        return await self._nodes(tenant, {ref for ref in refs if ref[1] == LATEST or is_published_version(ref[1])})

    async def _unresolved(
        self, tenant: str, definition: WorkflowDefinition, nodes: dict[NodeRef, NodeBase]
    ) -> dict[str, ProblemError]:
        """A fault for each state whose referenced node is not among `nodes`, by instance name.

        It points at `resourceId` when the tenant has no node of that id, and
        at `resourceVersion` when the id exists but not at that version.
        """
        missing = {
            name: state
            for name, state in definition.states.items()
            if state.node_definition is None
            and state.resource_id is not None
            and (state.resource_id, _normal_version(state.resource_version)) not in nodes
        }
        ids = sorted({state.resource_id for state in missing.values() if state.resource_id is not None})
        found = await asyncio.gather(
            *(self.index.versions(DefinitionKey(tenant, Kind.NODE, node_id)) for node_id in ids)
        )
        published = {node_id: records for node_id, records in zip(ids, found, strict=True) if records is not None}
        faults: dict[str, ProblemError] = {}
        for name, state in missing.items():
            base = f"/states/{escape(name)}"
            records = published.get(state.resource_id or "")
            if records is None:
                faults[name] = ProblemError(
                    pointer=f"{base}/resourceId", message=f"node '{state.resource_id}' does not exist"
                )
                continue
            numbers = ", ".join(str(record.version) for record in records) or "none yet"
            faults[name] = ProblemError(
                pointer=f"{base}/resourceVersion",
                message=f"node '{state.resource_id}' has no published version '{state.resource_version}' "
                f"(published: {numbers})",
            )
        return faults

    async def _announce(self, key: DefinitionKey, version: str | None, change: Change) -> None:
        event = DefinitionChanged(tenant=key.tenant, kind=str(key.kind), id=key.id, version=version, change=change)
        await announce(self.changes, event)

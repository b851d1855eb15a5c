"""The storage interface of the dsl-store; every backend (SQL, HBase) implements it.

A definition is addressed by `(tenant, kind, id)`. It has one mutable
`SNAPSHOT` and immutable published versions `1, 2, ...`; a pointer per
definition records the highest published number (`latest`, 0 when none) and
the `active` one (workflows). Bodies are opaque JSON bytes to the store.

A deleted definition leaves a record of its highest published number behind, and a
definition re-created under the same id continues numbering after it: a
`(tenant, kind, id, number)` names one body forever, so caches of published
versions never serve a different body for a number, whatever is deleted.

The same backends hold each tenant's enum store (`key -> JSON value`) and the
run-context store (one record per run, the highest `seq` kept).

The interface is split by what is stored, so that a layer over one part (the cache over
definitions) implements that part alone: `Definitions` (bodies and pointers, what the
cache serves), `DefinitionIndex` (listings, version records, traffic splits: never
cached), `Enums`, `RunContexts`; a connector is a `DefinitionStore`, all of them plus
its lifecycle.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class Kind(enum.StrEnum):
    """What a definition defines: a reusable node, or a workflow."""

    NODE = "node"
    WORKFLOW = "workflow"


@dataclass(frozen=True, slots=True)
class DefinitionKey:
    """One definition of one tenant, all its versions: the key every connector stores by.

    Tenants never share a key: every read and write of a connector names the tenant.
    """

    tenant: str
    kind: Kind
    id: str


@dataclass(frozen=True, slots=True)
class StoredDefinition:
    """One stored version of a definition, its body as the client sent it."""

    key: DefinitionKey
    version: str
    body: bytes
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VersionRecord:
    version: int
    published_at: datetime
    active: bool


@dataclass(frozen=True, slots=True)
class Published:
    definition: StoredDefinition
    activated: bool


@dataclass(frozen=True, slots=True)
class RunRecord:
    """The stored context of one run (`runId`) of a `workflowId`; `body` is the RunContext JSON."""

    tenant: str
    workflow_id: str
    run_id: str
    seq: int
    updated_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class ListedDefinition:
    """One definition as a listing shows it: its pointers and the bodies of its SNAPSHOT and LATEST."""

    id: str
    latest: int
    """The highest published number, 0 when never published."""
    active: int | None
    snapshot: bytes | None
    latest_body: bytes | None
    updated_at: datetime
    """The last change of the definition: its SNAPSHOT or its pointers."""


@dataclass(frozen=True, slots=True)
class BundleWrite:
    """One definition of an import, applied with the others all or nothing (see DefinitionStore.apply)."""

    key: DefinitionKey
    snapshot: bytes | None
    """The new SNAPSHOT body; None leaves the SNAPSHOT as it is."""
    expected_latest: int | None
    """None: the definition must not exist yet (it is created). Else the LATEST number the caller saw."""
    publish: RenderBody | None = None
    """Store `publish(n)` as the next number n."""
    activate: bool = False
    """Make the (new) LATEST number ACTIVE (workflows)."""
    activate_if_none: bool = False
    """When publishing: make the new number ACTIVE if nothing is (a workflow's first version)."""
    requires: tuple[DefinitionKey, ...] = ()
    """Definitions that must exist when this one is published (checked in the same transaction)."""


@dataclass(frozen=True, slots=True)
class BundleWritten:
    """What an import did to one definition."""

    key: DefinitionKey
    latest: int
    published: bool
    activated: bool


# The body of a new published version, given the number the store assigned to it.
RenderBody = Callable[[str], bytes]


class StoreError(Exception):
    """Base of the errors a store raises on purpose."""


class AlreadyExists(StoreError):
    """The definition id is taken (in any version)."""


class NotCreated(StoreError):
    """The definition id was never created."""


class PublishContention(StoreError):
    """Concurrent publishes kept winning over this one; the caller may retry."""


class Referenced(StoreError):
    """A node cannot be deleted: these workflows refer to it (SNAPSHOT, LATEST or ACTIVE)."""

    def __init__(self, workflow_ids: Sequence[str]) -> None:
        super().__init__(", ".join(workflow_ids))
        self.workflow_ids = sorted(set(workflow_ids))


class Missing(StoreError):
    """Definitions a publish requires do not exist (any more)."""

    def __init__(self, keys: Sequence[DefinitionKey]) -> None:
        super().__init__(", ".join(key.id for key in keys))
        self.keys = list(keys)


class WriteContention(StoreError):
    """What an import expected no longer holds (a concurrent writer); re-read and try again."""


# Given a workflow body, whether it refers to the node being deleted.
RefersTo = Callable[[bytes], bool]


class Definitions(Protocol):
    """Definition bodies and their pointers, every lookup scoped by tenant: what the cache serves and invalidates."""

    async def create(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        """Create the definition with its SNAPSHOT; AlreadyExists when the id is taken."""

    async def replace_snapshot(self, key: DefinitionKey, body: bytes) -> StoredDefinition:
        """Replace (or recreate) the SNAPSHOT; NotCreated when the id was never created."""

    async def get(self, key: DefinitionKey, version: str) -> StoredDefinition | None:
        """`SNAPSHOT`, `LATEST` (highest published), `ACTIVE` or a published number; None when absent."""

    async def publish(
        self, key: DefinitionKey, render: RenderBody, activate_if_none: bool, requires: Sequence[DefinitionKey] = ()
    ) -> Published:
        """Store `render(n)` as the next number n, atomically and race-safely.

        Concurrent publishes get distinct, gap-free numbers. With
        `activate_if_none`, n also becomes active when nothing was. Missing when
        one of `requires` does not exist at the moment n is stored (a node deleted
        while the workflow referring to it was being published).
        """

    async def activate(self, key: DefinitionKey, version: int) -> bool:
        """Make a published version active; False when it is not published."""

    async def set_traffic(self, key: DefinitionKey, weights: Sequence[tuple[int, int]]) -> bool:
        """Store a workflow's traffic split `(version, weight)` and make its heaviest version active, atomically.

        False (nothing changed) when the definition does not exist or a version is not published.
        `activate` (and a bundle write that activates, and `delete`) clear the split.
        """

    async def delete(self, key: DefinitionKey, refers_to: RefersTo | None = None) -> int | None:
        """Remove the definition and every version; answers its highest published number, None when absent.

        With `refers_to`, Referenced is raised (and nothing removed) when it holds for the
        SNAPSHOT, LATEST or ACTIVE body of any workflow of the tenant, checked atomically
        with the removal where the backend has transactions.
        """

    async def apply(self, writes: Sequence[BundleWrite]) -> list[BundleWritten]:
        """Apply every write in order, all or nothing where the backend has transactions.

        WriteContention (nothing applied) when an expectation does not hold; Missing when
        a publish's requirement does not exist.
        """


class DefinitionIndex(Protocol):
    """What listings and version pages read about definitions, always from the backend (never cached)."""

    async def versions(self, key: DefinitionKey) -> list[VersionRecord] | None:
        """Published versions, oldest first; None when the definition was never created."""

    async def traffic(self, key: DefinitionKey) -> list[tuple[int, int]] | None:
        """The stored traffic split, in the order it was given; None when ACTIVE is one version."""

    async def page(self, tenant: str, kind: Kind, prefix: str, after: str, limit: int) -> list[ListedDefinition]:
        """Up to `limit` definitions whose id starts with `prefix` and sorts after `after`, by id."""

    async def find(self, tenant: str, kind: Kind, ids: Sequence[str]) -> list[ListedDefinition]:
        """The definitions among `ids` that exist, as `page` shows them, by id (one round trip where possible)."""


class Enums(Protocol):
    """Each tenant's enum store (`$enums`): one JSON value per key."""

    async def put_enum(self, tenant: str, key: str, body: bytes) -> None:
        """Create or replace one enum value (JSON bytes)."""

    async def get_enum(self, tenant: str, key: str) -> bytes | None:
        """One enum value; None when absent."""

    async def enums(self, tenant: str) -> dict[str, bytes]:
        """Every enum value of the tenant, by key."""

    async def delete_enum(self, tenant: str, key: str) -> bool:
        """Remove one enum value; False when it was absent."""


class RunContexts(Protocol):
    """The run-context store: each run's last stable state, the highest `seq` kept."""

    async def put_run(self, record: RunRecord) -> int:
        """Keep `record` unless its run already holds an equal or higher `seq`; answers the `seq` now held.

        Atomic per run: of racing writes the highest `seq` wins, whatever their order.
        """

    async def get_run(self, tenant: str, workflow_id: str) -> RunRecord | None:
        """The newest record of the workflow id (latest `updated_at`, then highest `seq`); None when none."""


class DefinitionStore(Definitions, DefinitionIndex, Enums, RunContexts, Protocol):
    """A connector (SQL, HBase): every part above in one backend, with its lifecycle."""

    async def start(self) -> None:
        """Prepare the backend (create tables); safe to call on every start."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise when the backend does not answer."""

"""Use cases of the per-tenant data beside definitions: the enum store and the run-context store."""

from __future__ import annotations

import re

import msgspec
import structlog

from drift_dsl_store.errors import Invalid, NotFound
from drift_dsl_store.events import ENUMS_KIND, Change, ChangePublisher, DefinitionChanged, announce
from drift_dsl_store.store import Enums, RunContexts, RunRecord
from drift_dsl_store.validation import parse_json
from drift_schema.api import ProblemError
from drift_schema.codec import DecodeError, decode, encode
from drift_schema.context import RunContext
from drift_schema.ids import exact, is_workflow_id

log = structlog.get_logger("drift.dsl_store")

ENUM_KEY_BODY = r"[A-Za-z0-9_-]{1,128}"
ENUM_KEY_PATTERN = exact(ENUM_KEY_BODY)
"""Enum keys are one NATS subject token (no dots) and a plain `$enums.<key>` path in JSONata."""

# Checked with fullmatch: an enum key is a NATS subject token of its change events.
_ENUM_KEY = re.compile(ENUM_KEY_BODY)


class RunWrite(msgspec.Struct, frozen=True, rename="camel"):
    """Answer of `PUT /runs/{workflowId}`: the `seq` the store now holds for the run.

    A `seq` above the one written means a newer state was already stored and
    this write was ignored.
    """

    workflow_id: str
    run_id: str
    seq: int


def _invalid(detail: str, pointer: str = "") -> Invalid:
    return Invalid(detail, [ProblemError(pointer=pointer, message=detail)])


class EnumService:
    """The enum store of each tenant (`$enums` in expressions): one JSON value per key."""

    def __init__(self, store: Enums, changes: ChangePublisher) -> None:
        self.store = store
        self.changes = changes

    async def put(self, tenant: str, key: str, raw: bytes) -> bytes:
        """Create or replace `key`; answers the value as stored (compact JSON)."""
        if not _ENUM_KEY.fullmatch(key):
            raise _invalid(f"enum keys match {ENUM_KEY_PATTERN}")
        try:
            value = parse_json(raw)
        except DecodeError as error:
            raise Invalid("the body is not JSON", [error.as_problem_error()]) from None
        body = encode(value)
        await self.store.put_enum(tenant, key, body)
        log.info("dsl.enum_put", key=key, size=len(body))
        await self._announce(tenant, key, Change.UPDATED)
        return body

    async def get(self, tenant: str, key: str) -> bytes:
        """One value; NotFound when absent."""
        body = await self.store.get_enum(tenant, key) if _ENUM_KEY.fullmatch(key) else None
        if body is None:
            raise NotFound(f"enum '{key}' does not exist")
        return body

    async def all(self, tenant: str) -> bytes:
        """Every value of the tenant as one JSON object, assembled from the stored bytes without re-parsing."""
        values = await self.store.enums(tenant)
        members = b",".join(encode(key) + b":" + body for key, body in sorted(values.items()))
        return b"{" + members + b"}"

    async def delete(self, tenant: str, key: str) -> None:
        """Remove `key`; NotFound when absent."""
        if not (_ENUM_KEY.fullmatch(key) and await self.store.delete_enum(tenant, key)):
            raise NotFound(f"enum '{key}' does not exist")
        log.info("dsl.enum_deleted", key=key)
        await self._announce(tenant, key, Change.DELETED)

    async def _announce(self, tenant: str, key: str, change: Change) -> None:
        await announce(
            self.changes, DefinitionChanged(tenant=tenant, kind=ENUMS_KIND, id=key, version=None, change=change)
        )


class RunService:
    """The run-context store: each run's last stable state, kept beyond Temporal's retention."""

    def __init__(self, store: RunContexts) -> None:
        self.store = store

    async def put(self, tenant: str, workflow_id: str, raw: bytes) -> RunWrite:
        """Keep the state unless its run already holds an equal or newer `seq`."""
        try:
            context = decode(raw, RunContext)
        except DecodeError as error:
            raise Invalid("the body is not a run context", [error.as_problem_error()]) from None
        if context.workflow_id != workflow_id:
            raise _invalid(f"workflowId '{context.workflow_id}' differs from the path's '{workflow_id}'", "/workflowId")
        record = RunRecord(
            tenant=tenant,
            workflow_id=workflow_id,
            run_id=context.run_id,
            seq=context.seq,
            updated_at=context.updated_at_utc(),
            body=encode(context),
        )
        held = await self.store.put_run(record)
        log.debug("dsl.run_put", workflow_id=workflow_id, run_id=context.run_id, seq=context.seq, held=held)
        return RunWrite(workflow_id=workflow_id, run_id=context.run_id, seq=held)

    async def get(self, tenant: str, workflow_id: str) -> bytes:
        """The newest stored state of the workflow id; NotFound when none (or another tenant's)."""
        record = await self.store.get_run(tenant, workflow_id) if is_workflow_id(workflow_id) else None
        if record is None:
            raise NotFound(f"workflow '{workflow_id}' has no stored context")
        return record.body

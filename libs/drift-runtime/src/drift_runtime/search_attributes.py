"""Drift's Temporal search attributes, typed: set at start, upserted by the run, registered once.

The names and values live in `drift_schema.search`; this module binds them to Temporal's API.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from drift_schema import search
from drift_schema.statuses import WorkflowStatus

log = structlog.get_logger("drift.search")

KEYS: dict[str, SearchAttributeKey[str]] = {name: SearchAttributeKey.for_keyword(name) for name in search.ATTRIBUTES}
"""Every Drift attribute's typed key."""

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
"""Set by Temporal on a workflow a schedule started: the firing's nominal time."""


def run_attributes(
    tenant: str,
    definition_id: str,
    definition_version: str | None,
    status: WorkflowStatus = WorkflowStatus.CREATED,
    kind: str = search.KIND_RUN,
) -> TypedSearchAttributes:
    """The attributes a run is started with (`start_workflow(search_attributes=...)`)."""
    values = search.run_values(tenant, definition_id, definition_version or "", status, kind)
    return TypedSearchAttributes([SearchAttributePair(KEYS[name], value) for name, value in values.items()])


def tenant_attributes(tenant: str) -> TypedSearchAttributes:
    """Only the tenant: for objects that are not runs (schedules)."""
    return TypedSearchAttributes([SearchAttributePair(KEYS[search.TENANT], tenant)])


def upsert_status(
    enabled: bool, tenant: str, definition_id: str, definition_version: str | None, status: WorkflowStatus
) -> None:
    """Inside a run: upsert every Drift attribute with the run's new status (one history event).

    Every attribute, not only the status, so runs started without them (CHILD runs) are listed too.
    The kind the run was started with is kept: a test run stays a test run.
    """
    if not enabled:
        return
    kind = workflow.info().typed_search_attributes.get(KEYS[search.KIND]) or search.KIND_RUN
    values = search.run_values(tenant, definition_id, definition_version or "", status, kind)
    workflow.upsert_search_attributes([KEYS[name].value_set(value) for name, value in values.items()])


async def ensure_registered(client: Client, namespace: str) -> None:
    """Register the Drift attributes in `namespace` if they are missing; idempotent and safe to race.

    Needs the operator API (a self-hosted frontend or the dev server); on Temporal Cloud register
    them once with `tcld` instead (a refusal here is logged, not fatal).
    """
    try:
        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
        missing = {
            name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
            for name in search.ATTRIBUTES
            if name not in listed.custom_attributes
        }
        if not missing:
            return
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
        log.info("search.attributes_registered", names=sorted(missing))
    except RPCError as error:
        if error.status == RPCStatusCode.ALREADY_EXISTS:
            return
        log.warning("search.attributes_not_registered", error=error.message)


def keyword(attributes: TypedSearchAttributes, name: str) -> str | None:
    """One Drift keyword attribute's value, or None."""
    value: Any = attributes.get(KEYS[name])
    return value if isinstance(value, str) else None

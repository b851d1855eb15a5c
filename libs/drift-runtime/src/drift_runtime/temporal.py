"""Temporal client factory and the msgspec payload converter every client and worker uses."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import msgspec
import structlog
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.converter import (
    BinaryNullPayloadConverter,
    BinaryPlainPayloadConverter,
    BinaryProtoPayloadConverter,
    CompositePayloadConverter,
    DataConverter,
    EncodingPayloadConverter,
    JSONProtoPayloadConverter,
)
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError

from drift_runtime.metrics import add_scrape_source, free_local_port
from drift_schema.run import RUN_FAILED_ERROR, STATE_QUERY, RunSnapshot, failed_run_snapshot

log = structlog.get_logger("drift.temporal")

_ENCODING = b"json/plain"


class MsgspecJSONPayloadConverter(EncodingPayloadConverter):
    """JSON via msgspec: Structs, enums, dataclasses and builtins, decoded by type hint."""

    @property
    def encoding(self) -> str:
        return _ENCODING.decode()

    def to_payload(self, value: Any) -> Payload | None:
        return Payload(metadata={"encoding": _ENCODING}, data=msgspec.json.encode(value))

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        if type_hint is None or type_hint is Any:
            return msgspec.json.decode(payload.data)
        return msgspec.json.decode(payload.data, type=type_hint)


class MsgspecPayloadConverter(CompositePayloadConverter):
    """The SDK's default converters in their order, with msgspec in place of its plain JSON one.

    The protobuf converters stay: Temporal's own queries answer with protobuf messages
    (`__temporal_workflow_metadata`, read by the UI's Queries tab and `temporal workflow metadata`).
    They only take protobuf messages, so every Drift payload still goes through msgspec.
    """

    def __init__(self) -> None:
        super().__init__(
            BinaryNullPayloadConverter(),
            BinaryPlainPayloadConverter(),
            JSONProtoPayloadConverter(),
            BinaryProtoPayloadConverter(),
            MsgspecJSONPayloadConverter(),
        )


DATA_CONVERTER = DataConverter(payload_converter_class=MsgspecPayloadConverter)


_runtime: Runtime | None = None


def sdk_runtime() -> Runtime:
    """One Temporal runtime per process, exporting the SDK's metrics to a local port merged into /metrics."""
    global _runtime
    if _runtime is None:
        port = free_local_port()
        # Prometheus' conventions: counters end in _total, names carry their unit, durations are in seconds.
        prometheus = PrometheusConfig(
            bind_address=f"127.0.0.1:{port}",
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
        )
        _runtime = Runtime(telemetry=TelemetryConfig(metrics=prometheus))
        add_scrape_source("127.0.0.1", port)
    return _runtime


async def connect_temporal(address: str, namespace: str, lazy: bool = False) -> Client:
    """A Temporal client with the msgspec converter, the tracing interceptor and SDK metrics.

    A `lazy` client connects on its first call, so a process that rarely needs Temporal starts without it.
    """
    return await Client.connect(
        address,
        namespace=namespace,
        lazy=lazy,
        data_converter=DATA_CONVERTER,
        interceptors=[TracingInterceptor()],
        runtime=sdk_runtime(),
    )


def failed_run(error: BaseException) -> RunSnapshot | None:
    """The state a FAILED run ended with, from the failure its workflow closed with; None for any other failure."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ApplicationError) and cause.type == RUN_FAILED_ERROR and cause.details:
            return failed_run_snapshot(cause.details)
        cause = cause.__cause__
    return None


async def run_result(handle: WorkflowHandle[Any, Any]) -> RunSnapshot:
    """A closed run's final state, whether it COMPLETED (the workflow's result) or FAILED (the failure's detail)."""
    try:
        result: RunSnapshot = await handle.result()
    except WorkflowFailureError as error:
        snapshot = failed_run(error)
        if snapshot is None:
            raise
        return snapshot
    return result


RETRIABLE_EXECUTIONS = frozenset(
    {WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.TERMINATED}
)
"""Temporal statuses of a closed run a retry may start again (contract 8.2): FAILED (a run that ended FAILED fails
its workflow, `RUN_FAILED_ERROR`), COMPLETED (a run that failed before that, or did not fail: its own status says)
and TERMINATED. The gateway checks them before it publishes a retry, the dispatcher again before it applies one."""
CLOSE_WAIT_S = 10.0
"""How long a retry waits for a run whose Drift status is final to close (its post-completion nodes to finish)."""


async def closes_soon(handle: WorkflowHandle[Any, Any], rpc_timeout: timedelta) -> bool:
    """Whether a run whose Drift status is already final closes within CLOSE_WAIT_S; False when it is not final,
    stays open or Temporal cannot say. A caller answered FAILED may retry while the execution is still finishing."""
    try:
        snapshot = await handle.query(STATE_QUERY, result_type=RunSnapshot, rpc_timeout=rpc_timeout)
        if not snapshot.workflow_status.is_final:
            return False
        async with asyncio.timeout(CLOSE_WAIT_S):
            with contextlib.suppress(WorkflowFailureError):  # closed either way
                await handle.result(follow_runs=False)
    except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError, TimeoutError) as error:
        log.info("temporal.run_still_open", workflow_id=handle.id, error=str(error))
        return False
    return True

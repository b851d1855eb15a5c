"""Helpers shared by the in-process gateway tests."""

from __future__ import annotations

from typing import Any

import msgspec

from drift_cli.servers import InfraStack, free_port
from drift_gateway.config import Settings
from drift_runtime.auth import ApiKeys
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus


def redisless_settings(infra: InfraStack, task_queue: str, api_keys: ApiKeys, **extra: Any) -> Settings:
    """Gateway settings on the real NATS and Temporal, with Redis at a port nothing listens on."""
    return Settings(
        port=0,
        bind_host="127.0.0.1",
        nats_url=infra.nats_url,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        temporal_address=infra.temporal_address,
        temporal_namespace="default",
        task_queue=task_queue,
        api_keys=api_keys,
        log_format="json",
        log_level="INFO",
        stream_replicas=1,
        http_allow_hosts=(),
        **extra,
    )


def status_event(workflow_id: str, status: WorkflowStatus, command_id: str, seq: int) -> bytes:
    """Run `workflow_id`'s status event number `seq` for `command_id` (tenant acme), as the notifier publishes it."""
    return msgspec.json.encode(
        WorkflowEvent(
            workflow_id=workflow_id,
            workflow_status=status,
            event_id=f"run-1:s{seq}",
            tenant="acme",
            seq=seq,
            command_id=command_id,
        )
    )

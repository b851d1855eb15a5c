"""Dispatcher settings: the only place the dispatcher reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from drift_dispatcher.tenancy import DEFAULT_MAX_RUNNING
from drift_runtime.messaging import COMMAND_DUPLICATE_WINDOW_S
from drift_schema import run as runs
from drift_schema.run import DEFAULT_TASK_QUEUE, RunLimits


@dataclass(frozen=True, slots=True)
class Settings:
    nats_url: str
    temporal_address: str
    temporal_namespace: str
    task_queue: str
    dsl_store_url: str
    service_token: str
    metrics_port: int
    log_format: str
    log_level: str
    stream_replicas: int
    bind_host: str
    concurrency: int
    # Running runs per tenant (children included) past which a start is rejected LIMITED.
    max_running_runs: int = DEFAULT_MAX_RUNNING
    # How long a tenant's Nats-Msg-Id suppresses its later commands with the same id.
    duplicate_window_s: float = COMMAND_DUPLICATE_WINDOW_S
    # Every run's bounds, pinned into it at start (its CHILD runs get the same).
    run_limits: RunLimits = field(default_factory=RunLimits)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            dsl_store_url=env.get("DRIFT_DSL_STORE_URL", "http://127.0.0.1:8100"),
            service_token=env.get("DRIFT_SERVICE_TOKEN", ""),
            metrics_port=int(env.get("DRIFT_METRICS_PORT", "9101")),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            stream_replicas=int(env.get("DRIFT_STREAM_REPLICAS", "1")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            concurrency=int(env.get("DRIFT_DISPATCHER_CONCURRENCY", "64")),
            max_running_runs=int(env.get("DRIFT_TENANT_MAX_RUNNING_RUNS", str(DEFAULT_MAX_RUNNING))),
            duplicate_window_s=float(env.get("DRIFT_COMMAND_DUPLICATE_WINDOW_S", str(COMMAND_DUPLICATE_WINDOW_S))),
            run_limits=RunLimits(
                max_context_bytes=int(env.get("DRIFT_RUN_MAX_CONTEXT_BYTES", str(runs.DEFAULT_MAX_CONTEXT_BYTES))),
                max_visits=int(env.get("DRIFT_RUN_MAX_VISITS", str(runs.DEFAULT_MAX_VISITS))),
                max_branches=int(env.get("DRIFT_RUN_MAX_BRANCHES", str(runs.DEFAULT_MAX_BRANCHES))),
                max_descendants=int(env.get("DRIFT_RUN_MAX_DESCENDANTS", str(runs.DEFAULT_MAX_DESCENDANTS))),
            ),
        )

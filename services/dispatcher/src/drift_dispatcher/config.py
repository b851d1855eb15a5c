"""Dispatcher settings: the only place the dispatcher reads its environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from drift_dispatcher.tenancy import DEFAULT_MAX_RUNNING
from drift_runtime import service_env
from drift_runtime.env import Env
from drift_runtime.messaging import COMMAND_DUPLICATE_WINDOW_S
from drift_schema import run as runs
from drift_schema.run import RunLimits


@dataclass(frozen=True, slots=True)
class Settings(service_env.FromEnv):
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
    # Command partitions (by run): each is read by one dispatcher at a time, so a run's commands apply in
    # order; more partitions spread the work over more dispatchers. Same value on every dispatcher.
    partitions: int = 8

    @classmethod
    def read(cls, env: Env) -> Self:
        return cls(
            **service_env.basics(env),
            **service_env.workflows(env),
            **service_env.store_access(env),
            metrics_port=env.port("DRIFT_METRICS_PORT", 9101),
            stream_replicas=env.stream_replicas(),
            concurrency=env.integer("DRIFT_DISPATCHER_CONCURRENCY", 64),
            max_running_runs=env.integer("DRIFT_TENANT_MAX_RUNNING_RUNS", DEFAULT_MAX_RUNNING),
            duplicate_window_s=env.number("DRIFT_COMMAND_DUPLICATE_WINDOW_S", COMMAND_DUPLICATE_WINDOW_S),
            partitions=env.integer("DRIFT_DISPATCHER_PARTITIONS", 8),
            run_limits=RunLimits(
                max_context_bytes=env.integer("DRIFT_RUN_MAX_CONTEXT_BYTES", runs.DEFAULT_MAX_CONTEXT_BYTES),
                max_visits=env.integer("DRIFT_RUN_MAX_VISITS", runs.DEFAULT_MAX_VISITS),
                max_branches=env.integer("DRIFT_RUN_MAX_BRANCHES", runs.DEFAULT_MAX_BRANCHES),
                max_descendants=env.integer("DRIFT_RUN_MAX_DESCENDANTS", runs.DEFAULT_MAX_DESCENDANTS),
            ),
        )

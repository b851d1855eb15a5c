"""Dispatcher settings: the only place the dispatcher reads its environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drift_dispatcher.tenancy import DEFAULT_MAX_RUNNING
from drift_runtime.env import Env
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
    # Command partitions (by run): each is read by one dispatcher at a time, so a run's commands apply in
    # order; more partitions spread the work over more dispatchers. Same value on every dispatcher.
    partitions: int = 8

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `DRIFT_*` variables (an empty one means its default); raises ValueError on a malformed value."""
        env = Env(environ)
        return cls(
            nats_url=env.nats_url(),
            temporal_address=env.temporal_address(),
            temporal_namespace=env.temporal_namespace(),
            task_queue=env.text("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            dsl_store_url=env.dsl_store_url(),
            service_token=env.service_token(),
            metrics_port=env.port("DRIFT_METRICS_PORT", 9101),
            log_format=env.log_format(),
            log_level=env.log_level(),
            stream_replicas=env.stream_replicas(),
            bind_host=env.bind_host(),
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

"""Worker settings: the only place the worker reads its environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from drift_schema import expressions
from drift_schema.run import DEFAULT_TASK_QUEUE
from drift_worker import evaluator


def _hosts(value: str) -> tuple[str, ...]:
    return tuple(host.strip().lower() for host in value.split(",") if host.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Every worker knob; defaults suit `drift dev` and tests."""

    temporal_address: str
    temporal_namespace: str
    task_queue: str
    nats_url: str
    metrics_port: int
    http_allow_hosts: tuple[str, ...]
    log_format: str
    log_level: str
    expression_timeout_ms: int
    max_concurrent_activities: int
    expression_max_depth: int = expressions.DEFAULT_MAX_DEPTH
    expression_max_range: int = expressions.DEFAULT_MAX_RANGE
    http_max_response_bytes: int = 1024 * 1024
    http_max_redirects: int = 5
    node_output_max_bytes: int = 256 * 1024
    # Activities (HTTP calls) one tenant may run at once on this worker; 0: a quarter of max_concurrent_activities.
    tenant_max_activities: int = 0
    # Running runs per tenant past which a CHILD node fails (the dispatcher refuses starts at the same bound).
    tenant_max_running_runs: int = 10_000
    # Replicas of the JetStream streams the worker creates when they are missing (the prod overlay sets 3).
    stream_replicas: int = 1
    # Address the health/metrics server binds: 0.0.0.0 in a pod so the kubelet and Prometheus reach it.
    bind_host: str = "127.0.0.1"
    # The evaluator pool (drift_worker.evaluator): processes, each one's memory bound, one tenant's share,
    # and how long one node's evaluation may run before its process is killed.
    evaluator_processes: int = evaluator.DEFAULT_PROCESSES
    evaluator_memory_mib: int = evaluator.DEFAULT_MEMORY_MIB
    evaluator_tenant_share: float = evaluator.DEFAULT_TENANT_SHARE
    evaluator_node_timeout_ms: int = evaluator.DEFAULT_NODE_TIMEOUT_MS

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            temporal_address=env.get("DRIFT_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
            temporal_namespace=env.get("DRIFT_TEMPORAL_NAMESPACE", "default"),
            task_queue=env.get("DRIFT_TASK_QUEUE", DEFAULT_TASK_QUEUE),
            nats_url=env.get("DRIFT_NATS_URL", "nats://127.0.0.1:4222"),
            metrics_port=int(env.get("DRIFT_METRICS_PORT", "9102")),
            http_allow_hosts=_hosts(env.get("DRIFT_HTTP_ALLOW_HOSTS", "")),
            log_format=env.get("DRIFT_LOG_FORMAT", "json"),
            log_level=env.get("DRIFT_LOG_LEVEL", "INFO"),
            expression_timeout_ms=int(env.get("DRIFT_EXPRESSION_TIMEOUT_MS", str(expressions.DEFAULT_TIMEOUT_MS))),
            max_concurrent_activities=int(env.get("DRIFT_WORKER_MAX_ACTIVITIES", "100")),
            expression_max_depth=int(env.get("DRIFT_EXPRESSION_MAX_DEPTH", str(expressions.DEFAULT_MAX_DEPTH))),
            expression_max_range=int(env.get("DRIFT_EXPRESSION_MAX_RANGE", str(expressions.DEFAULT_MAX_RANGE))),
            http_max_response_bytes=int(env.get("DRIFT_HTTP_MAX_RESPONSE_BYTES", str(1024 * 1024))),
            http_max_redirects=int(env.get("DRIFT_HTTP_MAX_REDIRECTS", "5")),
            node_output_max_bytes=int(env.get("DRIFT_NODE_OUTPUT_MAX_BYTES", str(256 * 1024))),
            tenant_max_activities=int(env.get("DRIFT_WORKER_TENANT_MAX_ACTIVITIES", "0")),
            tenant_max_running_runs=int(env.get("DRIFT_TENANT_MAX_RUNNING_RUNS", "10000")),
            stream_replicas=int(env.get("DRIFT_STREAM_REPLICAS", "1")),
            bind_host=env.get("DRIFT_BIND_HOST", "127.0.0.1"),
            evaluator_processes=int(env.get("DRIFT_EVALUATOR_PROCESSES", str(evaluator.DEFAULT_PROCESSES))),
            evaluator_memory_mib=int(env.get("DRIFT_EVALUATOR_MEMORY_MIB", str(evaluator.DEFAULT_MEMORY_MIB))),
            evaluator_tenant_share=float(env.get("DRIFT_EVALUATOR_TENANT_SHARE", str(evaluator.DEFAULT_TENANT_SHARE))),
            evaluator_node_timeout_ms=int(
                env.get("DRIFT_EVALUATOR_NODE_TIMEOUT_MS", str(evaluator.DEFAULT_NODE_TIMEOUT_MS))
            ),
        )

    @property
    def evaluator_pool(self) -> evaluator.PoolSettings:
        """Evaluator pool settings from the settings."""
        return evaluator.PoolSettings(
            processes=self.evaluator_processes,
            memory_mib=self.evaluator_memory_mib,
            tenant_share=self.evaluator_tenant_share,
            node_timeout_ms=self.evaluator_node_timeout_ms,
        )

    @property
    def bounds(self) -> expressions.Bounds:
        """Expression bounds from the settings."""
        return expressions.Bounds(
            timeout_ms=self.expression_timeout_ms,
            max_depth=self.expression_max_depth,
            max_range=self.expression_max_range,
        )

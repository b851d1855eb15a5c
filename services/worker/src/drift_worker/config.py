"""Worker settings: the only place the worker reads its environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from drift_runtime import service_env
from drift_runtime.env import LOCAL_HOST, Env
from drift_schema import expressions
from drift_worker import evaluator

HTTP_MAX_RESPONSE_BYTES = 1024 * 1024
HTTP_MAX_REDIRECTS = 5
NODE_OUTPUT_MAX_BYTES = 256 * 1024
TENANT_MAX_RUNNING_RUNS = 10_000
MAX_WORKFLOW_TASKS = 100
"""Workflow tasks (runs advancing, a segment's local activity included) this worker handles at once."""
MAX_CACHED_RUNS = 100
"""Runs kept in Temporal's sticky cache (its default is 1,000); see `Settings.max_cached_runs`."""


@dataclass(frozen=True, slots=True)
class Settings(service_env.FromEnv):
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
    http_max_response_bytes: int = HTTP_MAX_RESPONSE_BYTES
    http_max_redirects: int = HTTP_MAX_REDIRECTS
    node_output_max_bytes: int = NODE_OUTPUT_MAX_BYTES
    # Activities (HTTP calls) one tenant may run at once on this worker; 0: a quarter of max_concurrent_activities.
    tenant_max_activities: int = 0
    # Running runs per tenant past which a CHILD node fails (the dispatcher refuses starts at the same bound).
    tenant_max_running_runs: int = TENANT_MAX_RUNNING_RUNS
    # Replicas of the JetStream streams the worker creates when they are missing (the prod overlay sets 3).
    stream_replicas: int = 1
    # Address the health/metrics server binds: 0.0.0.0 in a pod so the kubelet and Prometheus reach it.
    bind_host: str = LOCAL_HOST
    # The evaluator pool (drift_worker.evaluator): processes, each one's memory bound, one tenant's share,
    # how long one node's evaluation may run before its process is killed, and how long a process may
    # stay idle before it exits (0: never; an idle worker then keeps every process it started).
    evaluator_processes: int = evaluator.DEFAULT_PROCESSES
    evaluator_memory_mib: int = evaluator.DEFAULT_MEMORY_MIB
    evaluator_tenant_share: float = evaluator.DEFAULT_TENANT_SHARE
    evaluator_node_timeout_ms: int = evaluator.DEFAULT_NODE_TIMEOUT_MS
    evaluator_idle_exit_s: float = evaluator.DEFAULT_IDLE_EXIT_S
    # Runs this worker advances at once (Temporal's max_concurrent_workflow_tasks, at its default). Not lower: a
    # run holds its slot through a segment's local activity, which may wait for an evaluator and then evaluate for
    # up to twice a node's time limit, so a few slow runs of one tenant would hold every slot and stall every
    # other tenant's runs on the task queue. The cache is never smaller than this (app.build_worker).
    max_workflow_tasks: int = MAX_WORKFLOW_TASKS
    # Runs kept in Temporal's sticky cache (max_cached_workflows), least recently used evicted first. A cached run
    # holds its sandbox and its state (a context of up to 1 MiB) for as long as it waits, and a run waits at
    # INSTRUCTION, a long timer or a CHILD for minutes to days: Temporal's default of 1,000 lets an idle worker
    # hold hundreds of MiB for runs nobody is advancing. The cache only saves a replay, which matters for a run
    # advancing task after task (it is never evicted while it holds a task, and the most recently used are kept);
    # a waiting run evicted is replayed once when resumed (milliseconds: continue-as-new bounds its history). So
    # the bound is the runs this worker advances at once, not the runs it has ever seen.
    max_cached_runs: int = MAX_CACHED_RUNS
    # Folder of per-tenant secret files (<tenant>/<name>) HTTP nodes may reference; "" for none.
    secrets_dir: str = ""

    @classmethod
    def read(cls, env: Env) -> Self:
        return cls(
            **service_env.basics(env),
            **service_env.workflows(env),
            metrics_port=env.port("DRIFT_METRICS_PORT", 9102),
            http_allow_hosts=env.hosts("DRIFT_HTTP_ALLOW_HOSTS"),
            expression_timeout_ms=env.integer("DRIFT_EXPRESSION_TIMEOUT_MS", expressions.DEFAULT_TIMEOUT_MS),
            max_concurrent_activities=env.integer("DRIFT_WORKER_MAX_ACTIVITIES", 100),
            expression_max_depth=env.integer("DRIFT_EXPRESSION_MAX_DEPTH", expressions.DEFAULT_MAX_DEPTH),
            expression_max_range=env.integer("DRIFT_EXPRESSION_MAX_RANGE", expressions.DEFAULT_MAX_RANGE),
            http_max_response_bytes=env.integer("DRIFT_HTTP_MAX_RESPONSE_BYTES", HTTP_MAX_RESPONSE_BYTES),
            http_max_redirects=env.integer("DRIFT_HTTP_MAX_REDIRECTS", HTTP_MAX_REDIRECTS),
            node_output_max_bytes=env.integer("DRIFT_NODE_OUTPUT_MAX_BYTES", NODE_OUTPUT_MAX_BYTES),
            tenant_max_activities=env.integer("DRIFT_WORKER_TENANT_MAX_ACTIVITIES", 0),
            tenant_max_running_runs=env.integer("DRIFT_TENANT_MAX_RUNNING_RUNS", TENANT_MAX_RUNNING_RUNS),
            stream_replicas=env.stream_replicas(),
            evaluator_processes=env.integer("DRIFT_EVALUATOR_PROCESSES", evaluator.DEFAULT_PROCESSES),
            evaluator_memory_mib=env.integer("DRIFT_EVALUATOR_MEMORY_MIB", evaluator.DEFAULT_MEMORY_MIB),
            evaluator_tenant_share=env.number("DRIFT_EVALUATOR_TENANT_SHARE", evaluator.DEFAULT_TENANT_SHARE),
            evaluator_node_timeout_ms=env.integer("DRIFT_EVALUATOR_NODE_TIMEOUT_MS", evaluator.DEFAULT_NODE_TIMEOUT_MS),
            evaluator_idle_exit_s=env.number("DRIFT_EVALUATOR_IDLE_EXIT_S", evaluator.DEFAULT_IDLE_EXIT_S),
            secrets_dir=env.text("DRIFT_SECRETS_DIR", ""),
            max_workflow_tasks=env.integer("DRIFT_WORKER_MAX_WORKFLOW_TASKS", MAX_WORKFLOW_TASKS),
            max_cached_runs=env.integer("DRIFT_WORKER_MAX_CACHED_RUNS", MAX_CACHED_RUNS),
        )

    @property
    def evaluator_pool(self) -> evaluator.PoolSettings:
        """Evaluator pool settings from the settings."""
        return evaluator.PoolSettings(
            processes=self.evaluator_processes,
            memory_mib=self.evaluator_memory_mib,
            tenant_share=self.evaluator_tenant_share,
            node_timeout_ms=self.evaluator_node_timeout_ms,
            idle_exit_s=self.evaluator_idle_exit_s,
        )

    @property
    def bounds(self) -> expressions.Bounds:
        """Expression bounds from the settings."""
        return expressions.Bounds(
            timeout_ms=self.expression_timeout_ms,
            max_depth=self.expression_max_depth,
            max_range=self.expression_max_range,
        )

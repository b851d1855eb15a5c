"""The worker process: a Temporal worker running the generic workflow and its node activities."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence

import httpx
import structlog
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import freeze_start_up, run_until_signalled
from drift_runtime.run_counts import RunLimiter
from drift_runtime.temporal import connect_temporal
from drift_worker.activities import Limits, NodeActivities
from drift_worker.config import Settings
from drift_worker.evaluator import EvaluatorPool
from drift_worker.fairness import TenantRuns, TenantSlots, default_tenant_slots
from drift_worker.http_activity import HttpActivities, HttpSettings
from drift_worker.memory import release_idle_memory
from drift_worker.ssrf import Guard, guarded_client
from drift_worker.testing import testing_activities
from drift_worker.tokens import TokenProvider, discover_token_providers
from drift_worker.workflow import GenericWorkflow

log = structlog.get_logger("drift.worker")

# Imported once outside the sandbox: pure libraries, so re-importing them per run would only cost time,
# and drift_schema must be shared: re-imported in the sandbox, msgspec cannot resolve its postponed
# annotations (RunInput fails to decode with a NameError), so the default restrictions alone do not run.
PASSTHROUGH = ("drift_schema", "drift_runtime", "msgspec", "jsonata", "structlog", "nats", "httpx", "httpcore")
# The interpreter itself is imported once too. The sandbox re-imports a workflow's own module for every run
# (and every replay) to isolate module-level state: drift_worker's modules hold none (constants only), its
# node modules were passed through already, and re-executing the interpreter's module cost about 6 ms of CPU
# per run, a third of a short run's. What the sandbox still does: its restricted builtins and invalid modules
# apply to all workflow code, and the replay tests over recorded histories guard determinism.
INTERPRETER = "drift_worker"


def sandbox_runner(*workflow_modules: str) -> SandboxedWorkflowRunner:
    """The sandbox the generic workflow runs in (also used to replay recorded histories).

    `workflow_modules`: other workflows' modules passed through like the interpreter (the benchmarks' baselines).
    """
    modules = (*PASSTHROUGH, INTERPRETER, *workflow_modules)
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


def build_worker(
    client: Client,
    js: JetStreamContext,
    http: httpx.AsyncClient,
    settings: Settings,
    providers: Sequence[TokenProvider],
    activity_executor: concurrent.futures.ThreadPoolExecutor | None = None,
    pool: EvaluatorPool | None = None,
) -> Worker:
    """A Temporal worker for the generic workflow, its node activities and the HTTP activity.

    `http` must be a `guarded_client` (the SSRF guard is in its transport). Expressions are evaluated
    in `pool` (by default a pool from the settings, started on first use).
    """
    limits = Limits(bounds=settings.bounds, max_output_bytes=settings.node_output_max_bytes)
    evaluators = pool if pool is not None else EvaluatorPool(settings.evaluator_pool)
    nodes = NodeActivities(js, limits, evaluators)
    calls = HttpActivities(
        js,
        http,
        providers,
        limits,
        HttpSettings(max_response_bytes=settings.http_max_response_bytes, max_redirects=settings.http_max_redirects),
        evaluators,
        TenantSlots(settings.tenant_max_activities or default_tenant_slots(settings.max_concurrent_activities)),
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[GenericWorkflow],
        activities=[
            nodes.evaluate_node,
            nodes.evaluate_segment,
            nodes.emit,
            calls.http_node,
            TenantRuns(RunLimiter(client, settings.tenant_max_running_runs)).allow_child,
            *testing_activities(nodes),
        ],
        activity_executor=activity_executor,
        workflow_runner=sandbox_runner(),
        max_concurrent_activities=settings.max_concurrent_activities,
        # Bounded (see Settings.max_cached_runs): Temporal's default of 1,000 cached runs lets runs that only wait
        # hold their sandbox and context in an idle worker; the cache may never be smaller than the tasks in hand.
        max_concurrent_workflow_tasks=settings.max_workflow_tasks,
        max_cached_workflows=max(settings.max_cached_runs, settings.max_workflow_tasks),
    )


async def start_health(settings: Settings, nc: NatsClient) -> asyncio.Server:
    """The health and metrics server on DRIFT_BIND_HOST: ready while the NATS connection is up."""

    async def ready() -> bool:
        return nc.is_connected

    return await serve_health(settings.metrics_port, ready, host=settings.bind_host)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run the worker until `stop` is set."""
    providers = discover_token_providers(secrets_dir=settings.secrets_dir)
    client = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
    nc = await messaging.connect(settings.nats_url, name="drift-worker", stop=stop)
    js = nc.jetstream()
    await messaging.ensure_streams(js, settings.stream_replicas)
    health = await start_health(settings, nc)
    # Warm before polling: the first nodes must not wait for interpreters to start. When the last process exits
    # for idleness nothing has been evaluated for a while: the worker hands back the memory it freed meanwhile.
    pool = EvaluatorPool(settings.evaluator_pool, on_idle=release_idle_memory)
    await pool.start()
    try:
        async with guarded_client(Guard(settings.http_allow_hosts)) as http:
            with concurrent.futures.ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
                worker = build_worker(client, js, http, settings, providers, executor, pool)
                log.info(
                    "worker.started",
                    task_queue=settings.task_queue,
                    namespace=settings.temporal_namespace,
                    token_providers=len(providers),
                    http_allow_hosts=list(settings.http_allow_hosts),
                    evaluator_processes=settings.evaluator_processes,
                    evaluator_memory_mib=settings.evaluator_memory_mib,
                )
                # What exists now lives as long as the process: a full collection then walks only the runs since.
                freeze_start_up()
                async with worker:
                    await stop.wait()
    finally:
        await pool.close()
    health.close()
    await nc.drain()
    log.info("worker.stopped")


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled("drift-worker", settings.log_format, settings.log_level, lambda stop: run(settings, stop))

"""The worker process: a Temporal worker running the generic workflow and its node activities."""

from __future__ import annotations

import asyncio
import concurrent.futures

import structlog
from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import run_until_signalled
from drift_runtime.temporal import connect_temporal
from drift_schema import expressions
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from drift_worker.activities import NodeActivities
from drift_worker.config import Settings
from drift_worker.workflow import GenericWorkflow

log = structlog.get_logger("drift.worker")

# Imported once outside the sandbox: pure libraries, so re-importing them per run only costs time.
PASSTHROUGH = ("drift_schema", "drift_runtime", "msgspec", "jsonata", "structlog", "nats")


def sandbox_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


async def run(settings: Settings, stop: asyncio.Event) -> None:
    """Run the worker until `stop` is set."""
    client = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
    nc = await messaging.connect(settings.nats_url, name="drift-worker")
    js = nc.jetstream()
    await messaging.ensure_streams(js)
    activities = NodeActivities(js, expressions.Bounds(timeout_ms=settings.expression_timeout_ms))

    async def ready() -> bool:
        return nc.is_connected

    health = await serve_health(settings.metrics_port, ready)
    with concurrent.futures.ThreadPoolExecutor(max_workers=settings.max_concurrent_activities) as executor:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[GenericWorkflow],
            activities=[activities.evaluate_node, activities.emit],
            activity_executor=executor,
            workflow_runner=sandbox_runner(),
            max_concurrent_activities=settings.max_concurrent_activities,
        )
        log.info("worker.started", task_queue=settings.task_queue, namespace=settings.temporal_namespace)
        async with worker:
            await stop.wait()
    health.close()
    await nc.drain()
    log.info("worker.stopped")


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled(
        "drift-worker", settings.log_format, settings.log_level, lambda stop: run(settings, stop)
    )

"""The dispatcher process: a durable JetStream consumer that turns commands into Temporal calls.

It is its own package (not a second script of the worker) because it scales on
command throughput, not on workflow load, and needs neither the interpreter nor
its expression engine.
"""

from __future__ import annotations

import asyncio

import structlog

from drift_dispatcher.commands import CommandDispatcher
from drift_dispatcher.config import Settings
from drift_dispatcher.definitions import DefinitionClient
from drift_dispatcher.partitions import PROGRESS_DURABLE, PartitionGroup
from drift_dispatcher.schedules import run_schedule_worker
from drift_dispatcher.tenancy import RunLimiter, TenantDuplicates
from drift_runtime import messaging
from drift_runtime.health import serve_health
from drift_runtime.process import freeze_start_up, run_until_signalled
from drift_runtime.search_attributes import ensure_registered
from drift_runtime.temporal import connect_temporal
from drift_schema import subjects

log = structlog.get_logger("drift.dispatcher")

# Commands are read in partitions by run (`partitions`): a run's commands apply in order with any number of
# dispatchers. A command that meets a dependency outage (Temporal, the dsl-store) is retried with a growing
# delay until it runs; what can never run is rejected. The durable `dispatcher` consumer shows progress.
CONSUMER = messaging.ConsumerSpec(
    stream=subjects.COMMAND_STREAM,
    durable=PROGRESS_DURABLE,
    filter_subject=subjects.COMMAND_SUBJECTS,
    max_deliver=messaging.UNLIMITED_DELIVERIES,
)


async def run(settings: Settings, stop: asyncio.Event, *, freeze_after_start: bool = False) -> None:
    """Dispatch commands until `stop` is set.

    `freeze_after_start`: the process is the dispatcher's own (`main`): once started, what exists is kept
    out of the garbage collector's full passes (an in-process test's objects are left alone).
    """
    nc = await messaging.connect(settings.nats_url, name="drift-dispatcher", stop=stop)
    js = nc.jetstream()
    await messaging.ensure_streams(js, settings.stream_replicas)
    client = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
    definitions = DefinitionClient(settings.dsl_store_url, settings.service_token)
    # Definitions and enums are cached while the dsl-store's change events are heard on `nc`.
    await definitions.listen(nc)
    ids_bucket = await messaging.command_ids(js, settings.stream_replicas, settings.duplicate_window_s)
    dispatcher = CommandDispatcher(
        client,
        js,
        definitions,
        settings.task_queue,
        limits=settings.run_limits,
        duplicates=TenantDuplicates(ids_bucket),
        limiter=RunLimiter(client, settings.max_running_runs),
    )
    # Runs carry search attributes from their start; the schedule worker runs the schedules' firings.
    await ensure_registered(client, settings.temporal_namespace)
    scheduling = asyncio.create_task(run_schedule_worker(client, dispatcher, settings.task_queue, stop))

    group = PartitionGroup(js, dispatcher.handle, settings.partitions, settings.concurrency)

    async def ready() -> bool:
        # Ready once it reads every partition that belongs to it (a new dispatcher, once they were handed over).
        return nc.is_connected and group.settled

    health = await serve_health(settings.metrics_port, ready, host=settings.bind_host)
    if freeze_after_start:
        freeze_start_up()
    log.info("dispatch.started_consuming", partitions=settings.partitions, member=group.member)
    await group.run(stop)
    await scheduling
    health.close()
    await definitions.aclose()
    await nc.drain()


def main() -> None:
    settings = Settings.from_env()
    run_until_signalled(
        "drift-dispatcher",
        settings.log_format,
        settings.log_level,
        lambda stop: run(settings, stop, freeze_after_start=True),
    )

"""The one thin messaging module: streams, publish with dedup id and trace context, explicit-ack consumers.

Subject names live in `drift_schema.subjects`; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from drift_client.stream import REPLAY_IDLE_S as REPLAY_IDLE_S
from drift_client.stream import NatsServer as NatsServer
from drift_client.stream import redact_url as redact_url
from drift_client.stream import replay as replay
from drift_client.stream import split_credentials as split_credentials
from drift_runtime import consumers
from drift_runtime.telemetry import extract_context, inject_headers
from drift_schema import subjects
from drift_schema.ids import SERVICE_INBOX_PREFIX as SERVICE_INBOX_PREFIX
from drift_schema.ids import SERVICE_USER as SERVICE_USER
from drift_schema.ids import tenant_inbox_prefix as tenant_inbox_prefix

log = structlog.get_logger("drift.messaging")
tracer = trace.get_tracer("drift.messaging")

MSG_ID = "Nats-Msg-Id"
UNLIMITED_DELIVERIES = -1
"""`max_deliver` for consumers whose messages must wait out any outage rather than be dropped."""
TRANSIENT_MAX_DELAY_S = 15.0
COMMAND_DUPLICATE_WINDOW_S = 120.0
"""How long a tenant's `Nats-Msg-Id` suppresses that tenant's later command with the same id (the dispatcher's KV)."""
COMMAND_STREAM_DUPLICATE_WINDOW_S = 0.1
"""The command stream's own duplicate window, JetStream's minimum: that window is shared by every tenant (one
tenant's id would suppress another's), so commands are deduplicated per tenant by the dispatcher instead."""
COMMAND_IDS_BUCKET = "drift_command_ids"
"""KV bucket of the dispatcher's per-tenant duplicate tracking: `<tenant>.<id digest>` to stream sequence."""
COMMAND_MAX_AGE_S = 7 * 24 * 3600.0
EVENT_MAX_AGE_S = 3 * 24 * 3600.0


class TransientFault(Exception):
    """Processing failed for a reason that may pass (a dependency is down): redeliver later."""

    def __init__(self, message: str, delay_s: float = 2.0) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PoisonMessage(Exception):
    """A message that can never be processed: terminate it, never redeliver."""


STREAMS = (
    StreamConfig(
        name=subjects.COMMAND_STREAM,
        subjects=[subjects.COMMAND_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=COMMAND_STREAM_DUPLICATE_WINDOW_S,
        max_age=COMMAND_MAX_AGE_S,
    ),
    StreamConfig(
        name=subjects.EVENT_STREAM,
        subjects=[subjects.EVENT_SUBJECTS],
        storage=StorageType.FILE,
        duplicate_window=COMMAND_DUPLICATE_WINDOW_S,
        max_age=EVENT_MAX_AGE_S,
    ),
)


CONNECT_FIRST_DELAY_S = 0.5
CONNECT_MAX_DELAY_S = 10.0


class Stopped(Exception):
    """The process was asked to stop before NATS could be reached at start-up."""


class _AttemptFailed(Exception):
    """Ends nats-py's own start-up loop after one attempt (it retries forever inside connect())."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)


async def _until_stopped(stop: asyncio.Event | None) -> None:
    if stop is None:
        await asyncio.Event().wait()
    else:
        await stop.wait()


async def connect(url: str, name: str, stop: asyncio.Event | None = None) -> NatsClient:
    """Connect with Drift's inbox prefix, retrying the first connection until it is up or `stop` is set.

    Credentials travel in the URL (`nats://drift:<password>@host:4222`, see `split_credentials`), so
    a service needs no setting of its own for them; nothing here logs the URL.

    Each failed start-up attempt logs one line and the next waits longer (0.5 s doubling to 10 s);
    setting `stop` ends the wait at once with `Stopped`, so a supervisor's SIGTERM is obeyed even
    while NATS is unreachable. Once connected, reconnects are unbounded: a NATS restart must not end
    a service.
    """
    delay = CONNECT_FIRST_DELAY_S
    attempt = 0
    connected = False

    async def on_error(error: Exception) -> None:
        # nats-py's default callback logs a traceback per failed attempt. At start-up the attempt ends here
        # and this loop logs it with its backoff; once connected, each failure is one line.
        if not connected:
            raise _AttemptFailed(error)
        log.warning("messaging.nats_error", service=name, error=str(error) or type(error).__name__)

    server = split_credentials(url)
    while True:
        attempt += 1
        connecting = asyncio.ensure_future(
            nats.connect(
                server.url,
                user=server.user,
                password=server.password,
                token=server.token,
                name=name,
                inbox_prefix=SERVICE_INBOX_PREFIX,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                connect_timeout=5,
                allow_reconnect=True,
                error_cb=on_error,
            )
        )
        stopping = asyncio.ensure_future(_until_stopped(stop))
        done, _ = await asyncio.wait({connecting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if connecting in done and connecting.exception() is None:
            client: NatsClient = connecting.result()
            connected = True
            return client
        if connecting not in done:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            raise Stopped("stopped while connecting to NATS")
        error = connecting.exception()
        log.warning(
            "messaging.connect_failed",
            service=name,
            attempt=attempt,
            error=str(error) or type(error).__name__,
            retry_in_s=delay,
        )
        try:
            await asyncio.wait_for(_until_stopped(stop), delay)
        except TimeoutError:
            delay = min(delay * 2, CONNECT_MAX_DELAY_S)
            continue
        raise Stopped("stopped while waiting to reconnect to NATS")


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create Drift's command and event streams when missing; safe to race.

    An existing stream is left as it is: operators own its settings (replicas,
    limits) once it exists, and a service start must never reset them.
    """
    for config in STREAMS:
        try:
            info = await js.stream_info(config.name or "")
        except NotFoundError:
            with contextlib.suppress(Exception):
                await js.add_stream(dataclasses.replace(config, num_replicas=replicas))
            continue
        window = info.config.duplicate_window or 0.0
        if config.name == subjects.COMMAND_STREAM and window > COMMAND_STREAM_DUPLICATE_WINDOW_S + 1e-6:
            # The one setting Drift owns on an existing stream: a shared window lets tenants suppress each other.
            with contextlib.suppress(Exception):
                await js.update_stream(
                    dataclasses.replace(info.config, duplicate_window=COMMAND_STREAM_DUPLICATE_WINDOW_S)
                )


async def command_ids(
    js: JetStreamContext, replicas: int = 1, window_s: float = COMMAND_DUPLICATE_WINDOW_S
) -> KeyValue:
    """The KV bucket of per-tenant command ids, created when missing; entries expire after `window_s`."""
    try:
        return await js.key_value(COMMAND_IDS_BUCKET)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=COMMAND_IDS_BUCKET, ttl=window_s, storage=StorageType.FILE, replicas=replicas, history=1
        )
        try:
            return await js.create_key_value(config)
        except Exception:
            # Another process created it first.
            return await js.key_value(COMMAND_IDS_BUCKET)


def _payload(body: bytes | msgspec.Struct | Any) -> bytes:
    return body if isinstance(body, bytes) else msgspec.json.encode(body)


async def publish(
    js: JetStreamContext,
    subject: str,
    body: bytes | msgspec.Struct | Any,
    msg_id: str,
    headers: dict[str, str] | None = None,
    timeout_s: float = 5.0,
) -> bool:
    """Publish to JetStream with a dedup id and the current trace context.

    Returns False when the stream already had a message with this id (a duplicate).
    """
    with tracer.start_as_current_span(
        f"{subject} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": subject,
            "messaging.message.id": msg_id,
        },
    ):
        sent_headers = inject_headers({**(headers or {}), MSG_ID: msg_id})
        ack = await js.publish(subject, _payload(body), timeout=timeout_s, headers=sent_headers)
        return not ack.duplicate


Handler = Callable[[Msg], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer; instances sharing `durable` share the work (a queue group)."""

    stream: str
    durable: str
    filter_subject: str
    max_deliver: int = 50
    ack_wait_s: float = 30.0
    batch: int = 32
    concurrency: int = 32
    fetch_timeout_s: float = 1.0
    """How long one fetch waits for messages: an idle consumer's loop turns this often (and sees `stop`)."""


async def consume(js: JetStreamContext, spec: ConsumerSpec, handler: Handler, stop: asyncio.Event, name: str) -> None:
    """Fetch and handle messages until `stop` is set, acking explicitly.

    The handler returns normally to ack; raises TransientFault to `nak` with a
    delay; raises PoisonMessage (or any other error) to `term` the message.
    """
    config = ConsumerConfig(
        durable_name=spec.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=spec.max_deliver,
        ack_wait=spec.ack_wait_s,
        filter_subject=spec.filter_subject,
        max_ack_pending=spec.concurrency * 32,
    )
    subscription = await js.pull_subscribe(spec.filter_subject, durable=spec.durable, stream=spec.stream, config=config)
    slots = asyncio.Semaphore(spec.concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def run_one(msg: Msg) -> None:
        try:
            await _handle(msg, handler, name)
        finally:
            slots.release()

    fetcher = consumers.Fetcher(subscription, spec.fetch_timeout_s)
    while not stop.is_set():
        for msg in await consumers.fetched(fetcher, spec.batch, spec.durable):
            await slots.acquire()
            task = asyncio.create_task(run_one(msg))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    # Unsubscribed first: a pull request left open by a fetch that gave up takes no more messages (the server
    # skips requests whose inbox has no subscriber), so what the handlers below nak goes to the next consumer.
    with contextlib.suppress(Exception):
        await subscription.unsubscribe()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def _handle(msg: Msg, handler: Handler, name: str) -> None:
    parent = extract_context(msg.headers)
    with tracer.start_as_current_span(
        f"{msg.subject} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "nats",
            "messaging.destination.name": msg.subject,
            "messaging.consumer": name,
        },
    ) as span:
        try:
            await handler(msg)
        except TransientFault as fault:
            span.set_attribute("drift.outcome", "nak")
            log.warning("messaging.redeliver", subject=msg.subject, reason=str(fault), delay_s=fault.delay_s)
            await msg.nak(delay=fault.delay_s)
            return
        except PoisonMessage as poison:
            span.set_attribute("drift.outcome", "term")
            log.error("messaging.poison_message", subject=msg.subject, reason=str(poison))
            await msg.term()
            return
        except Exception as error:
            span.record_exception(error)
            span.set_attribute("drift.outcome", "term")
            log.exception("messaging.handler_crashed", subject=msg.subject)
            await msg.term()
            return
        await msg.ack()


def growing_delay_s(msg: Msg, base_s: float = 1.0, cap_s: float = TRANSIENT_MAX_DELAY_S) -> float:
    """A redelivery delay that doubles with each delivery of `msg`, up to `cap_s`.

    The cap bounds how long work waits after its dependency is back.
    """
    return min(cap_s, base_s * 2 ** max(0, delivery_count(msg) - 1))


def delivery_count(msg: Msg) -> int:
    """How many times JetStream has delivered this message (1 on the first delivery)."""
    try:
        return int(msg.metadata.num_delivered)
    except Exception:
        return 1


def message_id(msg: Msg) -> str | None:
    return (msg.headers or {}).get(MSG_ID)

"""A run's commands in order with any number of dispatchers: the command stream read in partitions by run.

A durable consumer shared by several dispatchers hands a run's start to one of them and its resume
to another, which may apply it first; a per-run lock only orders what one process holds. So the
command stream is cut into `partitions` by a hash of (tenant, workflowId) (`partition_of`), and each
partition is read by exactly one dispatcher at a time, in stream order, from the stream itself
(`DRIFT_COMMANDS`, the subjects upstream systems and the gateway publish to are unchanged). Within
a partition a run's commands are applied one after another, different runs concurrently.

Ownership. Dispatchers announce themselves in the KV bucket `drift_dispatchers` (`member.<id>`)
and hold a partition by a lease there (`lease.<k>`, created atomically, renewed every second,
expiring `LEASE_TTL_S` after the last renewal: the bucket's TTL). Partition k belongs to the k-th
member (modulo their number) in sorted order, so partitions spread evenly; a dispatcher releases
one that belongs to another live member (finishing what it holds first) and takes one that belongs
to it once it is free. A partition whose lease stays absent for `UNOWNED_GRACE_S` is taken by
whoever sees it, so partitions are never left unread while members' views differ. A dispatcher
stops applying a partition's commands as soon as its lease may have expired (by its own clock,
counted from before the last renewal was sent), before another can take it.

Progress. A partition's floor is the stream sequence at or below which each of its commands is
done (applied, rejected or poison); the owner keeps it in the KV bucket `drift_dispatch_floors`
(`p<k>of<n>`), written with the revision it last saw, so a former owner's late write fails. A new
owner starts right after the floor, in stream order again. What it reads again may have been
applied by the former owner (killed between applying and saving the floor): those commands are
marked redelivered, and the dispatcher already makes applying one again a no-op (see `tenancy`).
So a crash loses nothing, doubles nothing, and never lets a run's later command overtake an
earlier one. A command that meets an outage is retried in place with a growing delay, holding back
only the commands of its own run.

The durable consumer `dispatcher` of earlier versions stays as the progress everyone can read:
the owner of partition 0 acknowledges each of its messages once every partition's floor passed it,
so its ack floor and pending counts mean "commands the dispatchers have finished" (dashboards and
drills read them), and a new partition count starts from its ack floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from drift_runtime import consumers
from drift_runtime.messaging import TRANSIENT_MAX_DELAY_S, UNLIMITED_DELIVERIES, PoisonMessage, TransientFault
from drift_runtime.telemetry import extract_context
from drift_schema import subjects

log = structlog.get_logger("drift.dispatcher")
tracer = trace.get_tracer("drift.dispatcher")

MEMBERS_BUCKET = "drift_dispatchers"
"""KV bucket (TTL `LEASE_TTL_S`): `member.<id>` per live dispatcher, `lease.<k>` per owned partition."""
FLOORS_BUCKET = "drift_dispatch_floors"
"""KV bucket (no TTL): `p<k>of<n>` -> the partition's floor (`FloorRecord`)."""
PROGRESS_DURABLE = "dispatcher"
"""The durable consumer whose ack floor shows the dispatchers' common progress."""
LEASE_TTL_S = 6.0
TICK_S = 1.0
LEASE_MARGIN_S = 1.5
"""A lease counts as held until `LEASE_TTL_S - LEASE_MARGIN_S` after its last renewal was sent."""
UNOWNED_GRACE_S = 3.0
WINDOW = 1024
"""A partition's commands read and not yet done, at most: reading pauses beyond (memory stays bounded)."""
FETCH_BATCH = 64
FETCH_TIMEOUT_S = 1.0
IDLE_CHECKS = 5
"""Empty fetches in a row after which the reader checks that its consumer still exists (NATS restarted)."""
RELEASE_WAIT_S = 5.0
"""How long a release waits for the commands in flight (under a supervisor's stop timeout of 10 s)."""
SAVE_TIMEOUT_S = 2.0
PROGRESS_EVERY_S = 0.2
PROGRESS_HELD = 4096

Handler = Callable[[Msg, bool], Awaitable[None]]
"""Applies one command; the flag says it may have been applied before. Raises TransientFault or PoisonMessage."""


class FloorRecord(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A partition's progress: every of its commands at or below `floor` is done."""

    floor: int
    clean: bool = False
    """True when the owner released it with nothing in flight: nothing after the floor was touched."""


class LeaseLost(Exception):
    """The partition's lease may have expired: its commands are left to the next owner."""


def partition_of(tenant: str, workflow_id: str, partitions: int) -> int:
    """The partition of a run's commands: the same for every dispatcher and every version."""
    digest = hashlib.sha256(f"{tenant}/{workflow_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def run_of(msg: Msg) -> tuple[str, str]:
    """(tenant, workflowId) of a command message, read leniently; "" for what it does not name.

    The body's `workflowId` first (the run a decodable command applies to), else the header the
    gateway sets; a message naming no run still lands in exactly one partition (its tenant's "").
    """
    try:
        tenant, _ = subjects.parse_command(msg.subject)
    except ValueError:
        tenant = ""
    workflow_id = sniffed_workflow_id(msg.data) or (msg.headers or {}).get(subjects.WORKFLOW_ID_HEADER) or ""
    return tenant, workflow_id


def sniffed_workflow_id(data: bytes) -> str | None:
    """The `workflowId` of a command body read leniently (invalid UTF-8 replaced); None when there is none."""
    try:
        body = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return None
    found = body.get("workflowId") if isinstance(body, dict) else None
    return found if isinstance(found, str) else None


async def _bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except BucketNotFoundError:
        try:
            return await js.create_key_value(config)
        except Exception:  # another dispatcher created it first
            return await js.key_value(config.bucket)


class PartitionReader:
    """Reads the command stream after `floor`, in order, and applies this partition's commands.

    An ephemeral consumer without acknowledgements delivers the stream from `floor + 1`; its
    consumer sequence must grow by one per message, else messages were lost on the way (a fetch's
    answer cut by a disconnect) and the reader starts a new consumer after the last one it read.
    """

    def __init__(
        self,
        js: JetStreamContext,
        partition: int,
        partitions: int,
        handler: Handler,
        slots: asyncio.Semaphore,
        floor: int,
        replay_until: int,
        lease_held: Callable[[], bool],
    ) -> None:
        self.js = js
        self.partition = partition
        self.partitions = partitions
        self.handler = handler
        self.slots = slots
        self.last_read = floor
        self.replay_until = replay_until
        self.lease_held = lease_held
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self.applied = 0

    @property
    def floor(self) -> int:
        """The stream sequence at or below which every command of this partition is done."""
        return self._order[0] - 1 if self._order else self.last_read

    @property
    def in_flight(self) -> int:
        return len(self._order)

    async def run(self) -> None:
        """Read until `stop()`; raises nothing but cancellation."""
        sub: JetStreamContext.PullSubscription | None = None
        expected = 1
        idle = 0
        try:
            while not self._stopping.is_set() and not _cancelling():
                if len(self._order) >= WINDOW:
                    self._room.clear()
                    await self._room.wait()
                    continue
                if sub is None:
                    try:
                        sub = await self._subscribe()
                    except Exception as error:
                        log.warning("dispatch.partition_subscribe_failed", partition=self.partition, error=str(error))
                        await asyncio.sleep(0.5)
                        continue
                    fetcher = consumers.Fetcher(sub, FETCH_TIMEOUT_S)
                    expected, idle = 1, 0
                try:
                    messages = await fetcher.fetch(FETCH_BATCH)
                except Exception as error:
                    log.warning("dispatch.partition_fetch_failed", partition=self.partition, error=str(error))
                    await _closed(sub)
                    sub = None
                    await asyncio.sleep(0.5)
                    continue
                if not messages:
                    idle += 1
                    if idle % IDLE_CHECKS == 0 and not await _consumer_exists(sub):
                        await _closed(sub)
                        sub = None
                    continue
                idle = 0
                for msg in messages:
                    sequence = msg.metadata.sequence
                    if sequence.consumer != expected:
                        log.warning(
                            "dispatch.partition_gap",
                            partition=self.partition,
                            after=self.last_read,
                            got=sequence.stream,
                        )
                        await _closed(sub)
                        sub = None
                        break
                    expected += 1
                    if sequence.stream > self.last_read:
                        self.last_read = sequence.stream
                        self._route(msg, sequence.stream)
        finally:
            if sub is not None:
                await _closed(sub)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.last_read + 1,
            filter_subject=subjects.COMMAND_SUBJECTS,
            # Gone by itself when its reader is (a killed dispatcher leaves no consumer behind).
            inactive_threshold=30.0,
            mem_storage=True,
        )
        return await self.js.pull_subscribe(
            subjects.COMMAND_SUBJECTS, durable=None, stream=subjects.COMMAND_STREAM, config=config
        )

    def _route(self, msg: Msg, seq: int) -> None:
        tenant, workflow_id = run_of(msg)
        if partition_of(tenant, workflow_id, self.partitions) != self.partition:
            return
        key = f"{tenant}/{workflow_id}"
        self._order.append(seq)
        task = asyncio.create_task(self._in_turn(self._tails.get(key), msg, seq, key))
        self._tails[key] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _in_turn(self, previous: asyncio.Task[None] | None, msg: Msg, seq: int, key: str) -> None:
        """Apply after the run's previous command is done; a predecessor that did not finish stops this one."""
        try:
            if previous is not None:
                await asyncio.wait({previous})
                if previous.cancelled() or previous.exception() is not None:
                    raise LeaseLost("the run's previous command did not finish")
            await self._apply(msg, seq)
        except LeaseLost:
            return  # left unfinished: the floor stays below it and the next owner applies it
        finally:
            if self._tails.get(key) is asyncio.current_task():
                del self._tails[key]
        self._finish(seq)

    async def _apply(self, msg: Msg, seq: int) -> None:
        attempt = 0
        while True:
            if not self.lease_held():
                raise LeaseLost("lease expired")
            async with self.slots:
                with tracer.start_as_current_span(
                    f"{msg.subject} process",
                    context=extract_context(msg.headers),
                    kind=SpanKind.CONSUMER,
                    attributes={"messaging.system": "nats", "messaging.destination.name": msg.subject},
                ):
                    try:
                        await _uncancelled(self.handler(msg, attempt > 0 or seq <= self.replay_until))
                        self.applied += 1
                        return
                    except TransientFault as fault:
                        delay = max(fault.delay_s, min(TRANSIENT_MAX_DELAY_S, 2.0**attempt))
                        log.warning("dispatch.retry_later", subject=msg.subject, reason=str(fault), delay_s=delay)
                    except PoisonMessage as poison:
                        log.error("messaging.poison_message", subject=msg.subject, reason=str(poison))
                        return
                    except Exception:
                        log.exception("messaging.handler_crashed", subject=msg.subject)
                        return
            attempt += 1
            await asyncio.sleep(delay)

    def _finish(self, seq: int) -> None:
        self._done.add(seq)
        while self._order and self._order[0] in self._done:
            self._done.discard(self._order.popleft())
        if len(self._order) < WINDOW:
            self._room.set()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - a deadline
        """Stop reading and wait for the commands in flight; True when all finished in time."""
        self._stopping.set()
        self._room.set()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return not self._order

    def cancel(self) -> None:
        """Drop everything in flight at once (the lease is gone): the next owner reads it again."""
        self._stopping.set()
        self._room.set()
        for task in list(self._tasks):
            task.cancel()


async def _uncancelled(work: Awaitable[None]) -> None:
    """Await `work`; when this task is being cancelled, end in CancelledError whatever `work` made of it.

    Temporal's client turns a cancelled update call into its own error: taken for the command's
    outcome, the command would count as done (or be retried) by a reader that was told to stop.
    """
    try:
        await work
    except Exception:
        if _cancelling():
            raise asyncio.CancelledError from None
        raise


def _cancelling() -> bool:
    """Whether this task was told to stop (nats-py and Temporal's client turn a cancellation into errors)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _consumer_exists(sub: JetStreamContext.PullSubscription) -> bool:
    try:
        await sub.consumer_info()
    except NotFoundError:
        return False
    except Exception:  # NATS unreachable: the fetches say so; keep the consumer until they do
        return True
    return True


async def _closed(sub: JetStreamContext.PullSubscription) -> None:
    """Unsubscribe and delete the reader's consumer, as far as NATS answers."""
    name = getattr(sub, "_consumer", None)
    with contextlib.suppress(Exception):
        await sub.unsubscribe()
    if name:
        with contextlib.suppress(Exception):
            await sub._js.delete_consumer(subjects.COMMAND_STREAM, name)
    return None


@dataclass
class _Lease:
    partition: int
    revision: int
    renewed: float
    """When the last successful renewal (or the creation) was sent, by this process's clock."""

    def held(self) -> bool:
        return time.monotonic() < self.renewed + LEASE_TTL_S - LEASE_MARGIN_S


@dataclass
class _Held:
    lease: _Lease
    reader: PartitionReader
    floor_revision: int
    saved_floor: int
    task: asyncio.Task[None] | None = None
    releasing: bool = False

    @property
    def partition(self) -> int:
        return self.lease.partition


@dataclass
class PartitionGroup:
    """This dispatcher's share of the partitions: leases, readers, floors and the progress consumer."""

    js: JetStreamContext
    handler: Handler
    partitions: int
    concurrency: int
    member: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: dict[int, _Held] = field(default_factory=dict)
    settled: bool = False
    """Whether this dispatcher holds every partition that belongs to it (its readiness)."""
    _members: KeyValue | None = None
    _floors: KeyValue | None = None
    _slots: asyncio.Semaphore | None = None
    _unowned_since: dict[int, float] = field(default_factory=dict)
    _progress: asyncio.Task[None] | None = None
    _releases: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, stop: asyncio.Event) -> None:
        """Take part until `stop` is set, then finish what is in flight and hand every partition over."""
        if self.partitions < 1:
            raise ValueError("partitions must be at least 1")
        self._slots = asyncio.Semaphore(self.concurrency)
        self._members = await _bucket(
            self.js, KeyValueConfig(bucket=MEMBERS_BUCKET, ttl=LEASE_TTL_S, history=1, storage=StorageType.FILE)
        )
        self._floors = await _bucket(self.js, KeyValueConfig(bucket=FLOORS_BUCKET, history=1, storage=StorageType.FILE))
        log.info("dispatch.partitions_joined", member=self.member, partitions=self.partitions)
        try:
            while not stop.is_set():
                try:
                    await self._tick()
                except Exception as error:  # NATS restarting: the next tick tries again; leases guard the rest
                    log.warning("dispatch.partitions_tick_failed", error=str(error) or type(error).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), TICK_S)
        except asyncio.CancelledError:
            # Cancelled, not stopped: drop everything at once, as a crash would; the leases expire.
            for held in list(self.held.values()):
                self._lose(held, "cancelled")
            for release in list(self._releases):
                release.cancel()
            raise
        await self._leave()

    # -- one tick ---------------------------------------------------------------------------------

    async def _tick(self) -> None:
        members_kv, now = self._kv(), time.monotonic()
        await members_kv.put(f"member.{self.member}", b"1")
        for held in list(self.held.values()):
            await self._renew(held)
        # Concurrently and bounded: a slow save must not hold back the next tick's renewals.
        saves = [self._save_floor(held) for held in list(self.held.values()) if not held.releasing]
        for failed in await asyncio.gather(
            *(asyncio.wait_for(s, SAVE_TIMEOUT_S) for s in saves), return_exceptions=True
        ):
            if isinstance(failed, Exception):
                log.warning("dispatch.floor_not_saved", error=str(failed) or type(failed).__name__)
        members = sorted(await self._live_members() | {self.member})
        assigned = [p for p in range(self.partitions) if members[p % len(members)] == self.member]
        for partition in range(self.partitions):
            owner = members[partition % len(members)]
            mine = self.held.get(partition)
            if mine is not None:
                if owner != self.member:
                    self._start_release(mine)
                continue
            if owner == self.member:
                await self._acquire(partition)
                continue
            if await self._leased(partition):
                self._unowned_since.pop(partition, None)
            elif now - self._unowned_since.setdefault(partition, now) >= UNOWNED_GRACE_S:
                await self._acquire(partition)
        self.settled = all(p in self.held for p in assigned)

    async def _live_members(self) -> set[str]:
        """The members whose key has not expired: the subjects the bucket's stream still holds.

        Read from the stream's subject counts, not with the KV's key listing: that listing follows a
        consumer that waits for every key it counted, and a key expiring meanwhile left it waiting forever.
        Members never delete their key (a delete marker would count as a key): it expires.
        """
        prefix = f"$KV.{MEMBERS_BUCKET}.member."
        info = await self.js.stream_info(f"KV_{MEMBERS_BUCKET}", subjects_filter=f"{prefix}>")
        return {subject.removeprefix(prefix) for subject in (info.state.subjects or {})}

    async def _leased(self, partition: int) -> bool:
        try:
            await self._kv().get(f"lease.{partition}")
        except NotFoundError:  # never leased, expired, or released (deleted)
            return False
        return True

    async def _renew(self, held: _Held) -> None:
        lease = held.lease
        if not lease.held():
            self._lose(held, "not renewed in time")
            return
        sent = time.monotonic()
        try:
            lease.revision = await self._kv().update(f"lease.{lease.partition}", self.member.encode(), lease.revision)
            lease.renewed = sent
        except (KeyWrongLastSequenceError, NotFoundError):
            self._lose(held, "taken over")
        except (NatsError, TimeoutError):
            pass  # renewed next tick, or given up once its time is out

    async def _acquire(self, partition: int) -> None:
        sent = time.monotonic()
        try:
            revision = await self._kv().create(f"lease.{partition}", self.member.encode())
        except KeyWrongLastSequenceError:
            return
        try:
            record, floor_revision = await self._claim_floor(partition)
            last = (await self.js.stream_info(subjects.COMMAND_STREAM)).state.last_seq
        except Exception:
            with contextlib.suppress(Exception):
                await self._kv().delete(f"lease.{partition}", last=revision)
            raise
        # After a crash the former owner may have applied anything it could read: all of it is a redelivery.
        replay_until = record.floor if record.clean else max(record.floor, last)
        lease = _Lease(partition, revision, sent)
        assert self._slots is not None
        reader = PartitionReader(
            self.js, partition, self.partitions, self.handler, self._slots, record.floor, replay_until, lease.held
        )
        held = _Held(lease, reader, floor_revision, record.floor)
        held.task = asyncio.create_task(held.reader.run())
        self.held[partition] = held
        self._unowned_since.pop(partition, None)
        log.info("dispatch.partition_acquired", partition=partition, floor=record.floor, redelivered_to=replay_until)
        if partition == 0:
            self._progress = asyncio.create_task(self._keep_progress())

    def _lose(self, held: _Held, why: str) -> None:
        """The lease is gone: stop at once, save nothing (the next owner starts from the last saved floor)."""
        held.reader.cancel()
        if held.task is not None:
            held.task.cancel()
        self.held.pop(held.partition, None)
        if held.partition == 0:
            self._stop_progress()
        log.warning("dispatch.partition_lost", partition=held.partition, reason=why, floor=held.saved_floor)

    def _start_release(self, held: _Held) -> None:
        if held.releasing:
            return
        held.releasing = True
        release = asyncio.create_task(self._release(held))
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    async def _release(self, held: _Held) -> None:
        """Hand a partition over: finish what is in flight, save the floor, delete the lease."""
        clean = await held.reader.drain(RELEASE_WAIT_S)
        if not clean:
            held.reader.cancel()
        if held.task is not None:
            held.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await held.task
        if self.held.get(held.partition) is not held:
            return  # lost meanwhile
        if held.partition == 0:
            self._stop_progress()
        try:
            await self._save_floor(held, clean=clean)
            await self._kv().delete(f"lease.{held.partition}", last=held.lease.revision)
        except Exception as error:
            log.warning("dispatch.partition_release_failed", partition=held.partition, error=str(error))
        self.held.pop(held.partition, None)
        log.info("dispatch.partition_released", partition=held.partition, floor=held.reader.floor, clean=clean)

    async def _leave(self) -> None:
        """Hand every partition over; the leases are renewed meanwhile, so no one takes one too early."""
        log.info("dispatch.partitions_leaving", held=sorted(self.held))
        for held in list(self.held.values()):
            self._start_release(held)
        while self._releases:
            await asyncio.wait(set(self._releases), timeout=TICK_S)
            for held in list(self.held.values()):
                with contextlib.suppress(Exception):
                    await self._renew(held)
        self._stop_progress()

    # -- floors -------------------------------------------------------------------------------------

    def _floor_key(self, partition: int) -> str:
        return f"p{partition}of{self.partitions}"

    async def _claim_floor(self, partition: int) -> tuple[FloorRecord, int]:
        """The partition's saved floor, re-written at once so that a former owner's late write fails."""
        floors, key = self._floors_kv(), self._floor_key(partition)
        try:
            entry = await floors.get(key)
        except NotFoundError:
            record = FloorRecord(await self._common_start())
            try:
                return record, await floors.create(key, msgspec.json.encode(record))
            except KeyWrongLastSequenceError:
                entry = await floors.get(key)
        assert entry.value is not None and entry.revision is not None
        record = msgspec.json.decode(entry.value, type=FloorRecord)
        return record, await floors.update(key, entry.value, last=entry.revision)

    async def _common_start(self) -> int:
        """Where a partition without a saved floor starts: where every partition is known to be done."""
        try:
            info = await self.js.consumer_info(subjects.COMMAND_STREAM, PROGRESS_DURABLE)
        except NotFoundError:
            return 0
        return int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0

    async def _save_floor(self, held: _Held, clean: bool = False) -> None:
        floor = held.reader.floor
        if floor == held.saved_floor and not clean:
            return
        value = msgspec.json.encode(FloorRecord(floor, clean))
        try:
            held.floor_revision = await self._floors_kv().update(
                self._floor_key(held.partition), value, last=held.floor_revision
            )
            held.saved_floor = floor
        except KeyWrongLastSequenceError:
            self._lose(held, "another dispatcher saved its floor")

    async def common_floor(self) -> int:
        """The sequence at or below which every partition's commands are done."""
        lowest: int | None = None
        for partition in range(self.partitions):
            held = self.held.get(partition)
            if held is not None:
                floor = held.reader.floor
            else:
                try:
                    entry = await self._floors_kv().get(self._floor_key(partition))
                except NotFoundError:
                    return await self._common_start()
                assert entry.value is not None
                floor = msgspec.json.decode(entry.value, type=FloorRecord).floor
            lowest = floor if lowest is None else min(lowest, floor)
        return lowest or 0

    # -- the progress consumer ------------------------------------------------------------------

    async def _keep_progress(self) -> None:
        """Acknowledge the `dispatcher` durable's messages as the common floor passes them."""
        config = consumers.durable_explicit(
            PROGRESS_DURABLE,
            subjects.COMMAND_SUBJECTS,
            max_deliver=UNLIMITED_DELIVERIES,
            ack_wait_s=30.0,
            max_ack_pending=PROGRESS_HELD,
        )
        held: dict[int, Msg] = {}
        sub: JetStreamContext.PullSubscription | None = None
        while not _cancelling():
            try:
                if sub is None:
                    sub = await self.js.pull_subscribe(
                        subjects.COMMAND_SUBJECTS,
                        durable=PROGRESS_DURABLE,
                        stream=subjects.COMMAND_STREAM,
                        config=config,
                    )
                    fetcher = consumers.Fetcher(sub, PROGRESS_EVERY_S)
                floor = await self.common_floor()
                for seq in sorted(s for s in held if s <= floor):
                    await held.pop(seq).ack()
                if len(held) < PROGRESS_HELD // 2:
                    fetched = await fetcher.fetch(256)
                    for msg in fetched:
                        held[msg.metadata.sequence.stream] = msg
                    if fetched:
                        continue
                await asyncio.sleep(PROGRESS_EVERY_S)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("dispatch.progress_failed", error=str(error) or type(error).__name__)
                sub, held = None, {}
                await asyncio.sleep(1.0)
            finally:
                if sub is not None and _cancelling():
                    # The durable stays (it is the progress); only this reader's subscription goes.
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.cancel()
            self._progress = None

    def _kv(self) -> KeyValue:
        assert self._members is not None
        return self._members

    def _floors_kv(self) -> KeyValue:
        assert self._floors is not None
        return self._floors

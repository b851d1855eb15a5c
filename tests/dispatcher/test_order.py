"""Per-run command order with three dispatchers sharing the command stream, one of them crashing midway."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from dispatcher.support import Servers, StubDefinitions, servers
from drift_dispatcher.commands import CommandDispatcher
from drift_dispatcher.partitions import LEASE_TTL_S, UNOWNED_GRACE_S, PartitionGroup, partition_of, run_of
from drift_dispatcher.tenancy import TenantDuplicates
from drift_runtime import messaging
from drift_schema import subjects
from drift_schema.run import temporal_id

PARTITIONS = 6
RUNS = 24
TENANT = "acme"


@dataclass
class Applied:
    """One completed application of a command by a dispatcher."""

    workflow_id: str
    seq: int
    began: float
    ended: float
    dispatcher: int


@dataclass
class Three:
    """Three dispatchers (each its own NATS connection and partition group) on shared servers."""

    servers: Servers
    groups: list[PartitionGroup] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    connections: list[NatsClient] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, index: int) -> None:
        nc = await messaging.connect(self.servers.nats_url, name=f"dispatcher-{index}")
        js = nc.jetstream()
        dispatcher = CommandDispatcher(
            self.servers.client,
            js,
            StubDefinitions(),  # type: ignore[arg-type]
            self.servers.task_queue,
            duplicates=TenantDuplicates(await messaging.command_ids(js)),
        )

        async def recorded(msg: Msg, replayed: bool) -> None:
            began = time.monotonic()
            await dispatcher.handle(msg, replayed)
            workflow_id = run_of(msg)[1]
            async with self.changed:
                self.applied.append(Applied(workflow_id, msg.metadata.sequence.stream, began, time.monotonic(), index))
                self.changed.notify_all()

        group = PartitionGroup(js, recorded, partitions=PARTITIONS, concurrency=8)
        self.groups.append(group)
        self.connections.append(nc)
        self.tasks.append(asyncio.create_task(group.run(self.stop)))

    async def crash(self, index: int) -> None:
        """Like `kill -9`: everything in flight dropped, no partition handed over, the connection gone."""
        self.tasks[index].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.tasks[index]
        await self.connections[index].close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def three(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Three]:
    async with servers(tmp_path_factory.mktemp("three-dispatchers")) as found:
        three = Three(found)
        for index in range(3):
            await three.add(index)
        try:
            yield three
        finally:
            three.stop.set()
            await asyncio.gather(*three.tasks, return_exceptions=True)
            for nc in three.connections:
                if not nc.is_closed:
                    await nc.close()


async def _spread(three: Three) -> None:
    """Every partition held, each dispatcher holding some (the leases settle within a few ticks)."""
    deadline = time.monotonic() + 30
    while True:
        held = [set(g.held) for g in three.groups]
        if all(held) and set().union(*held) == set(range(PARTITIONS)) and sum(map(len, held)) == PARTITIONS:
            return
        assert time.monotonic() < deadline, f"partitions never spread over the three: {held}"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio(loop_scope="session")
async def test_each_runs_commands_apply_in_order_with_three_dispatchers_one_crashing(three: Three) -> None:
    """Interleaved start/resume/event/terminate of many runs over three dispatchers, one crashing: in order, once."""
    await _spread(three)
    servers_ = three.servers
    prefix = uuid.uuid4().hex[:6]
    runs = [f"order-{prefix}-{n}" for n in range(RUNS)]
    plans = {
        w: [
            ("start", {"workflow": {"id": "hold"}, "workflowId": w}),
            ("resume", {"workflowId": w, "viewResponse": {"selectedOptions": {}}}),
            ("event", {"workflowId": w, "event": "late"}),
            ("terminate", {"workflowId": w, "reason": "in order"}),
        ]
        for w in runs
    }
    # Interleaved: each step is a random run's next command, so runs' commands alternate in the stream.
    rng = random.Random(7)
    pending = {w: list(plan) for w, plan in plans.items()}
    published: dict[str, list[tuple[str, int]]] = defaultdict(list)
    total = RUNS * 4
    crashed = 1
    for count in range(total):
        workflow_id = rng.choice([w for w, left in pending.items() if left])
        kind, body = pending[workflow_id].pop(0)
        ack = await servers_.js.publish(
            subjects.command(TENANT, kind),
            msgspec.json.encode(body),
            headers={messaging.MSG_ID: uuid.uuid4().hex},
        )
        published[workflow_id].append((kind, ack.seq))
        if count == total // 2:
            # Once it has applied some, so the crash hits a dispatcher at work.
            async with asyncio.timeout(30), three.changed:
                while not any(a.dispatcher == crashed for a in three.applied):
                    await three.changed.wait()
            await three.crash(crashed)

    def settled() -> bool:
        return all(
            any(e["workflowStatus"] == "TERMINATED" for e in servers_.events.by_run[(TENANT, w)])
            and sum(e["workflowStatus"] == "REJECTED" for e in servers_.events.by_run[(TENANT, w)]) >= 2
            for w in runs
        )

    # The crashed dispatcher's partitions wait for its leases to expire, then the others read them again.
    await servers_.events.wait_for(settled, timeout=60 + LEASE_TTL_S)
    every = {seq for sent in published.values() for _, seq in sent}
    async with asyncio.timeout(30), three.changed:
        while not every <= {a.seq for a in three.applied}:
            await three.changed.wait()

    by_run: dict[str, list[Applied]] = defaultdict(list)
    for applied in sorted(three.applied, key=lambda a: a.ended):
        by_run[applied.workflow_id].append(applied)
    for workflow_id in runs:
        seqs = [seq for _, seq in published[workflow_id]]
        first: dict[int, Applied] = {}
        for applied in by_run[workflow_id]:
            first.setdefault(applied.seq, applied)
        # None lost: every command applied; in order: first applications in stream order, none overlapping.
        assert list(first) == seqs, (workflow_id, seqs, by_run[workflow_id])
        for earlier, later in itertools.pairwise(seqs):
            assert first[later].began >= first[earlier].ended, (workflow_id, first[earlier], first[later])
        # None doubled: one execution, terminated; the terminate and the start never refused; the resume
        # and the event refused as a running run refuses them (CONFLICT), never as an absent one (NOT_FOUND).
        # Stored once each (a replayed command publishes the same event id again; the core subscription sees both).
        events = list({e["eventId"]: e for e in servers_.events.by_run[(TENANT, workflow_id)]}.values())
        rejected = sorted(e["errorCode"] for e in events if e["workflowStatus"] == "REJECTED")
        assert rejected == ["CONFLICT", "CONFLICT"], (workflow_id, events)
        chains = {str(e["eventId"]).rsplit(":", 1)[0] for e in events if e["workflowStatus"] != "REJECTED"}
        assert len(chains) == 1, (workflow_id, events)
        description = await servers_.client.get_workflow_handle(temporal_id(TENANT, workflow_id)).describe()
        assert description.status is not None and description.status.name == "TERMINATED", workflow_id
    # The crash hit work: the survivors took over the crashed dispatcher's partitions and applied commands.
    assert {a.dispatcher for a in three.applied} == {0, 1, 2}
    assert not three.groups[crashed].held
    # Its partitions with nothing left to apply are taken over too, once its leases expired (no event: polled).
    deadline = time.monotonic() + LEASE_TTL_S + UNOWNED_GRACE_S + 10
    while set(three.groups[0].held) | set(three.groups[2].held) != set(range(PARTITIONS)):
        assert time.monotonic() < deadline, [sorted(g.held) for g in three.groups]
        await asyncio.sleep(0.1)


def test_a_runs_partition_is_the_same_for_every_version() -> None:
    """`partition_of` is pinned: dispatchers of two versions side by side (a rolling upgrade) agree on every run."""
    assert [partition_of("acme", f"order-{n}", 8) for n in range(8)] == [3, 7, 6, 6, 7, 1, 1, 2]
    assert partition_of("globex", "x", 6) == 4
    # A command naming no run still has exactly one partition: its tenant's "".
    assert partition_of("acme", "", 8) == 2

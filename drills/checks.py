"""Acknowledged work against what happened: lost, duplicated and stuck counts.

A command counts as acknowledged when JetStream acknowledged its publish (drills
that publish directly) or when the gateway answered 200 or 202 (drills that go
through the API). After the fault and the recovery, every acknowledged command must
have exactly one run, that run must reach its expected state, and its status events
must be complete (`seq` 1..n without gaps, the last one the expected status).

- lost: an acknowledged command without a run, or a run with status events missing;
- duplicated: a command with more than one run (Temporal executions or event chains);
- stuck: a run that exists but did not reach its expected state by the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from drift_schema import codec, subjects
from drift_schema.events import WorkflowEvent
from drift_schema.run import temporal_id
from drift_schema.statuses import WorkflowStatus
from drills.stack import TENANT, DrillStack, wait_for
from tests.support.loopback import holds_within


@dataclass(frozen=True)
class Acked:
    """One acknowledged command: the run it names and the state it must reach."""

    workflow_id: str
    expect: WorkflowStatus = WorkflowStatus.COMPLETED
    command_id: str | None = None
    """The Nats-Msg-Id when the drill published it; None when the gateway chose it."""
    callback: bool = False
    """Whether a webhook must be delivered for the expected state."""


@dataclass
class Result:
    """The figures of one drill."""

    name: str
    fault: str
    acked: int = 0
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.stuck == 0 and not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


class Ledger:
    """The commands one drill had acknowledged."""

    def __init__(self) -> None:
        self.acked: list[Acked] = []

    def add(self, command: Acked) -> None:
        self.acked.append(command)

    def __len__(self) -> int:
        return len(self.acked)


def run_chain(event: WorkflowEvent) -> str:
    """The run chain an event belongs to (its id without the `:s<seq>` suffix)."""
    return event.event_id.rsplit(":", 1)[0]


class EventLog:
    """Follows every status event of the drill tenant from the start of the stream, across NATS restarts.

    A tail of the event stream that resubscribes from the last sequence it saw
    whenever its subscription fails or falls idle, so a restarted server costs it
    nothing; `wait_until()` wakes on every event, so nothing here polls.
    """

    def __init__(self, stack: DrillStack) -> None:
        self.stack = stack
        self.events: dict[str, list[WorkflowEvent]] = defaultdict(list)
        self.copies = 0
        """Events stored twice in the stream (same event id): harmless, consumers are idempotent."""
        self.resubscribed = 0
        """Times the tail lost its subscription (not counting idle ones)."""
        self._ids: set[str] = set()
        self._last_seq = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        subject = subjects.workflow_events(TENANT, "*")
        while True:
            try:
                subscription = await self.stack.js.subscribe(
                    subject,
                    stream=subjects.EVENT_STREAM,
                    ordered_consumer=True,
                    config=ConsumerConfig(
                        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._last_seq + 1
                    ),
                )
            except Exception:  # NATS restarting: try again shortly
                await asyncio.sleep(0.5)
                continue
            try:
                while True:
                    msg = await subscription.next_msg(timeout=IDLE_RESUBSCRIBE_S)
                    self._last_seq = msg.metadata.sequence.stream
                    await self._add(codec.decode_with(codec.workflow_event_decoder, msg.data))
            except Exception as error:  # idle or disconnected: resubscribe from the last sequence seen
                self.resubscribed += 0 if isinstance(error, NatsTimeoutError) else 1
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _add(self, event: WorkflowEvent) -> None:
        if event.event_id in self._ids:
            self.copies += 1
            return
        self._ids.add(event.event_id)
        self.events[event.workflow_id].append(event)
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109 - a deadline
        """Wait until `done()` holds, checked after every event; False at the deadline."""
        return await holds_within(self._changed, done, timeout)

    def reached(self, workflow_id: str, expect: WorkflowStatus) -> bool:
        return _reached(self.events.get(workflow_id, []), expect)

    def count_started(self, ledger: Ledger) -> int:
        """How many of the ledger's runs announced anything yet."""
        return sum(1 for c in ledger.acked if self.events.get(c.workflow_id))

    def count_reached(self, ledger: Ledger) -> int:
        return sum(1 for c in ledger.acked if self.reached(c.workflow_id, c.expect))


IDLE_RESUBSCRIBE_S = 2.0


def _reached(events: list[WorkflowEvent], expect: WorkflowStatus) -> bool:
    runs = [e for e in events if e.workflow_status != WorkflowStatus.REJECTED]
    if not runs:
        return False
    last = max(runs, key=lambda e: e.seq)
    return last.workflow_status == expect


CONSUMERS = (
    (subjects.COMMAND_STREAM, "dispatcher"),
    (subjects.EVENT_STREAM, "notifier-states"),
    (subjects.EVENT_STREAM, "notifier-webhooks"),
)


async def consumers_drained(stack: DrillStack) -> bool:
    """Whether every durable consumer has delivered and had acknowledged everything (no redelivery due)."""
    try:
        for stream, durable in CONSUMERS:
            info = await stack.js.consumer_info(stream, durable, timeout=2)
            if info.num_pending or info.num_ack_pending:
                return False
    except Exception:  # NATS restarting, or a consumer not created yet
        return False
    return True


async def quiesce(stack: DrillStack, timeout: float) -> None:  # noqa: ASYNC109 - a deadline
    """Wait until no command or event is pending or unacknowledged anywhere (redeliveries included).

    Only then can a duplicate no longer appear: a command whose ack was lost comes
    back after the consumer's ack wait. Consumer state lives in the NATS server, so
    this polls it, with a deadline.
    """
    await wait_for(lambda: consumers_drained(stack), timeout, "every consumer drained", interval=0.5)


async def settle(log: EventLog, ledger: Ledger, timeout: float) -> None:  # noqa: ASYNC109 - a deadline
    """Wait until every acknowledged run announced its expected state, or the deadline."""
    await log.wait_until(lambda: log.count_reached(ledger) == len(ledger), timeout)


async def temporal_runs(stack: DrillStack, workflow_id: str) -> tuple[int, str | None, str | None]:
    """(executions of this workflow id, status of the latest, its memo's commandId)."""
    tid = temporal_id(TENANT, workflow_id)
    count = 0
    async for _ in stack.client.list_workflows(f"WorkflowId = '{tid}'"):
        count += 1
    try:
        description = await stack.client.get_workflow_handle(tid).describe()
    except Exception:
        return count, None, None
    memo = await description.memo()
    status = description.status.name if description.status else None
    return max(count, 1), status, memo.get("commandId")


async def check(
    stack: DrillStack,
    log: EventLog,
    ledger: Ledger,
    result: Result,
    timeout: float,  # noqa: ASYNC109 - a deadline
) -> None:
    """Drain, settle, then count lost, duplicated and stuck runs of the ledger into `result`."""
    started = time.monotonic()
    try:
        await quiesce(stack, timeout)
    except TimeoutError as error:
        result.problem(str(error))
    await settle(log, ledger, max(5.0, timeout - (time.monotonic() - started)))
    events = log.events
    result.acked = len(ledger)
    seen_ids: set[str] = set()
    for command in ledger.acked:
        if command.workflow_id in seen_ids:
            result.problem(f"the drill acknowledged two commands for {command.workflow_id}")
            continue
        seen_ids.add(command.workflow_id)
        own = [e for e in events.get(command.workflow_id, []) if e.workflow_status != WorkflowStatus.REJECTED]
        rejected = [e for e in events.get(command.workflow_id, []) if e.workflow_status == WorkflowStatus.REJECTED]
        executions, status, memo_command = await temporal_runs(stack, command.workflow_id)
        chains = {run_chain(e) for e in own}
        runs = max(executions, len(chains))
        result.runs += min(runs, 1)
        if runs == 0:
            result.lost += 1
            detail = f" (rejected: {rejected[0].error_message})" if rejected else ""
            result.problem(f"{command.workflow_id}: acknowledged, no run{detail}")
            continue
        if runs > 1:
            result.duplicated += runs - 1
            result.problem(f"{command.workflow_id}: {runs} runs ({executions} executions, {len(chains)} event chains)")
        # Another command for the same id may be refused (a CONFLICT); this command itself must not be.
        rejected = [e for e in rejected if command.command_id is None or e.command_id == command.command_id]
        if rejected:
            result.problem(
                f"{command.workflow_id}: also rejected ({rejected[0].error_code}: {rejected[0].error_message})"
            )
        if command.command_id is not None and memo_command not in (None, command.command_id):
            result.problem(f"{command.workflow_id}: run started by command {memo_command}, not {command.command_id}")
        if not _reached(own, command.expect):
            result.stuck += 1
            last = max(own, key=lambda e: e.seq).workflow_status if own else None
            result.problem(f"{command.workflow_id}: {last or status} after the deadline, expected {command.expect}")
            continue
        chain = run_chain(max(own, key=lambda e: e.seq))
        seqs = sorted({e.seq for e in own if run_chain(e) == chain})
        if seqs != list(range(1, len(seqs) + 1)):
            result.lost += 1
            result.problem(f"{command.workflow_id}: status events missing, seqs {seqs}")

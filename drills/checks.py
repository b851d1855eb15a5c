"""Acknowledged work against what happened, judged from evidence independent of Drift's own events.

A command counts as acknowledged when JetStream acknowledged its publish (drills
that publish directly) or when the gateway answered 200 or 202 (drills that go
through the API). After the fault and the recovery, every durable consumer is
drained, and then each acknowledged command is judged from four sources:

- Temporal: the executions of its workflow id (`list`) and the latest one's
  `describe`: its status must match the expected state (COMPLETED: COMPLETED,
  WAITING: RUNNING, TERMINATED: TERMINATED) and its memo must carry the
  `commandId` of the command that started it (a missing memo fails the check:
  the dispatcher's duplicate-start guard reads it);
- the run-context store (the dsl-store's `/runs/{id}`, written by the notifier's
  `notifier-run-contexts` consumer): the expected status, at the run's last `seq`;
- the webhooks the loopback receiver got (runs started with a `callbackUrl`);
- the event stream: `seq` 1..n without gaps, the last one the expected status.

Counts:
- lost: an acknowledged command without a run, a run with status events
  missing, or a webhook never delivered;
- duplicated: more than one Temporal execution or event chain for one command,
  or a (run, status) delivered by webhook under two different `webhook-id`s;
- stuck: a run whose Temporal status, stored context or events did not reach the
  expected state by the deadline (the message names which source disagrees).

Webhook deliveries beyond one per (run, status) are all visible to a user; those
that repeat the `webhook-id` (at-least-once delivery, deduplicated by the
receiver per Standard Webhooks) are reported as re-deliveries, a column of their own.

Requests the gateway answered with a 5xx or that timed out may have published
their command or not: each must have run exactly once to its end, or not at all
(no execution, no event); the drill reports how many of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import ConsumerConfig, DeliverPolicy

from drift_schema import codec, subjects
from drift_schema.events import WorkflowEvent
from drift_schema.run import TERMINATED_SEQ, temporal_id
from drift_schema.statuses import WorkflowStatus
from drills.loopback import WebhookReceiver
from drills.stack import TENANT, DrillStack, wait_for
from tests.support.loopback import holds_within

TEMPORAL_STATUS = {
    WorkflowStatus.COMPLETED: frozenset({"COMPLETED"}),
    WorkflowStatus.WAITING: frozenset({"RUNNING"}),
    WorkflowStatus.TERMINATED: frozenset({"TERMINATED"}),
    WorkflowStatus.FAILED: frozenset({"FAILED"}),  # the workflow fails with the run (RUN_FAILED_ERROR)
}
"""The Temporal execution status each expected Drift state must show."""
EVIDENCE_DEADLINE_S = 20.0
"""After the consumers drained: how long Temporal and the run-context store may lag the events."""


@dataclass(frozen=True)
class Acked:
    """One acknowledged command: the run it names and the state it must reach."""

    workflow_id: str
    expect: WorkflowStatus = WorkflowStatus.COMPLETED
    command_id: str | None = None
    """The Nats-Msg-Id when the drill published it; None when the gateway chose it."""
    callback: bool = False
    """Whether a webhook must be delivered for the expected state."""


@dataclass(frozen=True)
class Unclear:
    """A request answered with a 5xx or a timeout: its command may or may not have been published."""

    workflow_id: str
    answer: str


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
    webhook_duplicates: int = 0
    """Deliveries beyond one per (run, status), whatever their webhook-id: what a user sees twice."""
    redelivered: int = 0
    """Of those, deliveries that repeat a webhook-id (a receiver deduplicates them by id)."""
    unclear_ran_once: int = 0
    unclear_never_ran: int = 0
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.stuck == 0 and not self.problems

    def problem(self, text: str) -> None:
        self.problems.append(text)


class Ledger:
    """The commands one drill had acknowledged, and the requests whose outcome was unclear (5xx, timeout)."""

    def __init__(self) -> None:
        self.acked: list[Acked] = []
        self.unclear: list[Unclear] = []

    def add(self, command: Acked) -> None:
        self.acked.append(command)

    def add_unclear(self, workflow_id: str, answer: str) -> None:
        self.unclear.append(Unclear(workflow_id, answer))

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
    (subjects.EVENT_STREAM, "notifier-run-contexts"),
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


async def commands_unacknowledged(stack: DrillStack) -> int:
    """Commands JetStream holds that the dispatcher has not acknowledged (pending or in its hands)."""
    info = await stack.js.consumer_info(subjects.COMMAND_STREAM, "dispatcher", timeout=2)
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


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


@dataclass(frozen=True)
class TemporalRun:
    """What Temporal says about one workflow id."""

    executions: int
    status: str | None
    command_id: str | None


async def temporal_runs(stack: DrillStack, workflow_id: str) -> TemporalRun:
    """The executions of this workflow id, the latest one's status and its memo's commandId."""
    tid = temporal_id(TENANT, workflow_id)
    count = 0
    async for _ in stack.client.list_workflows(f"WorkflowId = '{tid}'"):
        count += 1
    try:
        description = await stack.client.get_workflow_handle(tid).describe()
    except Exception:
        return TemporalRun(count, None, None)
    memo = await description.memo()
    status = description.status.name if description.status else None
    command = memo.get("commandId")
    return TemporalRun(max(count, 1), status, command if isinstance(command, str) else None)


async def stored_context(stack: DrillStack, workflow_id: str) -> dict[str, Any] | None:
    """The run-context store's record of the run (status, seq), or None when it holds none."""
    response = await stack.store.get(f"/runs/{workflow_id}", headers={"X-Drift-Tenant": TENANT})
    if response.status_code == 404:
        return None
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


@dataclass
class Evidence:
    """One command's state from each independent source."""

    temporal: TemporalRun
    stored: dict[str, Any] | None
    delivered: set[str]

    def disagreements(self, command: Acked) -> list[str]:
        """Which sources do not (yet) show the command's expected state."""
        found = []
        if self.temporal.status not in TEMPORAL_STATUS[command.expect]:
            found.append(f"Temporal says {self.temporal.status}")
        stored_status = self.stored.get("workflowStatus") if self.stored else None
        if stored_status != command.expect.value:
            found.append(f"the run-context store says {stored_status}")
        if command.callback and command.expect.value not in self.delivered:
            found.append(f"no {command.expect.value} webhook (got {sorted(self.delivered)})")
        return found


async def gather_evidence(
    stack: DrillStack, receiver: WebhookReceiver, command: Acked, deadline: float
) -> tuple[Evidence, list[str]]:
    """The command's evidence, polled until every source agrees with the expected state or the deadline.

    The sources lag the event stream (a run closes after it announced COMPLETED; the store and the
    webhook are written by other consumers) and none of them signals: so this polls, with a deadline.
    """
    while True:
        evidence = Evidence(
            await temporal_runs(stack, command.workflow_id),
            await stored_context(stack, command.workflow_id),
            receiver.statuses().get(command.workflow_id, set()),
        )
        disagree = evidence.disagreements(command)
        if not disagree or time.monotonic() >= deadline:
            return evidence, disagree
        await asyncio.sleep(0.5)


async def check(
    stack: DrillStack,
    log: EventLog,
    ledger: Ledger,
    result: Result,
    timeout: float,  # noqa: ASYNC109 - a deadline
    receiver: WebhookReceiver,
) -> None:
    """Drain, settle, then judge every acknowledged command (and every unclear request) into `result`."""
    started = time.monotonic()
    try:
        await quiesce(stack, timeout)
    except TimeoutError as error:
        result.problem(str(error))
    await settle(log, ledger, max(5.0, timeout - (time.monotonic() - started)))
    events = log.events
    result.acked = len(ledger)
    seen_ids: set[str] = set()
    deadline = time.monotonic() + EVIDENCE_DEADLINE_S
    for command in ledger.acked:
        if command.workflow_id in seen_ids:
            result.problem(f"the drill acknowledged two commands for {command.workflow_id}")
            continue
        seen_ids.add(command.workflow_id)
        own = [e for e in events.get(command.workflow_id, []) if e.workflow_status != WorkflowStatus.REJECTED]
        rejected = [e for e in events.get(command.workflow_id, []) if e.workflow_status == WorkflowStatus.REJECTED]
        evidence, disagree = await gather_evidence(stack, receiver, command, deadline)
        temporal = evidence.temporal
        chains = {run_chain(e) for e in own}
        runs = max(temporal.executions, len(chains))
        result.runs += min(runs, 1)
        if runs == 0:
            result.lost += 1
            detail = f" (rejected: {rejected[0].error_message})" if rejected else ""
            result.problem(f"{command.workflow_id}: acknowledged, no run{detail}")
            continue
        if runs > 1:
            result.duplicated += runs - 1
            result.problem(
                f"{command.workflow_id}: {runs} runs ({temporal.executions} executions, {len(chains)} event chains)"
            )
        # Another command for the same id may be refused (a CONFLICT); this command itself must not be.
        rejected = [e for e in rejected if command.command_id is None or e.command_id == command.command_id]
        if rejected:
            result.problem(
                f"{command.workflow_id}: also rejected ({rejected[0].error_code}: {rejected[0].error_message})"
            )
        if temporal.executions and temporal.command_id is None:
            result.problem(f"{command.workflow_id}: its execution has no commandId memo (no duplicate-start guard)")
        elif command.command_id is not None and temporal.command_id not in (None, command.command_id):
            result.problem(
                f"{command.workflow_id}: run started by command {temporal.command_id}, not {command.command_id}"
            )
        if not _reached(own, command.expect) or disagree:
            result.stuck += 1
            last = max(own, key=lambda e: e.seq).workflow_status if own else None
            sources = ([f"its events end at {last}"] if not _reached(own, command.expect) else []) + disagree
            result.problem(
                f"{command.workflow_id}: expected {command.expect} by the deadline, but {'; '.join(sources)}"
            )
            continue
        chain = run_chain(max(own, key=lambda e: e.seq))
        seqs = sorted({e.seq for e in own if run_chain(e) == chain})
        # A terminated run cannot announce itself: the dispatcher does, at TERMINATED_SEQ, after its own 1..n.
        numbered = [seq for seq in seqs if seq != TERMINATED_SEQ]
        if numbered != list(range(1, len(numbered) + 1)):
            result.lost += 1
            result.problem(f"{command.workflow_id}: status events missing, seqs {seqs}")
        elif evidence.stored is not None and evidence.stored.get("seq") != seqs[-1]:
            result.problem(
                f"{command.workflow_id}: the run-context store holds seq {evidence.stored.get('seq')}, "
                f"the run's last is {seqs[-1]}"
            )
    await _judge_unclear(stack, log, ledger, result)
    count_webhooks(receiver, {c.workflow_id for c in ledger.acked if c.callback}, result)


async def _judge_unclear(stack: DrillStack, log: EventLog, ledger: Ledger, result: Result) -> None:
    """Each 5xx or timed-out request: its run ended exactly once, or it never ran; anything else fails."""
    answers: Counter[str] = Counter()
    for unclear in ledger.unclear:
        answers[unclear.answer] += 1
        own = [e for e in log.events.get(unclear.workflow_id, []) if e.workflow_status != WorkflowStatus.REJECTED]
        temporal = await temporal_runs(stack, unclear.workflow_id)
        chains = {run_chain(e) for e in own}
        if temporal.executions == 0 and not own:
            result.unclear_never_ran += 1
        elif temporal.executions == 1 and len(chains) == 1 and _reached(own, WorkflowStatus.COMPLETED):
            result.unclear_ran_once += 1
        else:
            result.problem(
                f"{unclear.workflow_id} (answered {unclear.answer}): {temporal.executions} executions, "
                f"{len(chains)} event chains, Temporal {temporal.status}: neither ran once to its end nor never ran"
            )
    if ledger.unclear:
        result.figures["5xx or timeout answers"] = dict(sorted(answers.items()))
        result.figures["of those, ran exactly once / never ran"] = (
            f"{result.unclear_ran_once} / {result.unclear_never_ran}"
        )


def count_webhooks(receiver: WebhookReceiver, workflow_ids: set[str], result: Result) -> None:
    """Every delivery beyond one per (run, status) is a duplicate a user sees; same-id ones are re-deliveries."""
    by_state: dict[tuple[str, str], list[str]] = defaultdict(list)
    for delivery in receiver.deliveries:
        body = json.loads(delivery.body)
        if body.get("workflowId") in workflow_ids:
            by_state[(body["workflowId"], body["workflowStatus"])].append(delivery.webhook_id)
    for (workflow_id, status), ids in by_state.items():
        if len(ids) < 2:
            continue
        result.webhook_duplicates += len(ids) - 1
        distinct = len(set(ids))
        result.redelivered += len(ids) - distinct
        if distinct > 1:
            result.duplicated += distinct - 1
            result.problem(f"{workflow_id}: {status} delivered under {distinct} different webhook-ids")
    if any(not d.valid_signature for d in receiver.deliveries):
        result.problem("a webhook with an invalid signature")

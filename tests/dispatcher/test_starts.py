"""A start's look-up for a run it may have started already: skipped on a first delivery, kept on any repeat."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

import msgspec
import pytest
from nats.aio.msg import Msg

from dispatcher.support import Stack, StubDefinitions
from drift_dispatcher.commands import CommandDispatcher
from drift_runtime import messaging
from drift_schema import subjects
from drift_schema.run import temporal_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Spying(CommandDispatcher):
    """The dispatcher, counting its look-ups of the run a start may have started before."""

    lookups: int = 0

    async def _started_by(self, workflow_id: str, command_id: str) -> bool:
        self.lookups += 1
        return await super()._started_by(workflow_id, command_id)


def _dispatcher(stack: Stack) -> Spying:
    return Spying(stack.client, stack.js, StubDefinitions(), stack.task_queue, duplicates=stack.duplicates)  # type: ignore[arg-type]


def _start(tenant: str, workflow_id: str, msg_id: str, sequence: int, delivered: int = 1) -> Msg:
    """A start command as a partition reader hands it over: stream `sequence`, delivered `delivered` times."""
    body: dict[str, Any] = {"workflow": {"id": "quick"}, "workflowId": workflow_id}
    reply = f"$JS.ACK.{subjects.COMMAND_STREAM}.reader.{delivered}.{sequence}.1.{time.time_ns()}.0"
    return Msg(
        _client=None,  # type: ignore[arg-type]  # never acknowledged: the reader's consumer takes no acks
        subject=subjects.command(tenant, "start"),
        reply=reply,
        data=msgspec.json.encode(body),
        headers={messaging.MSG_ID: msg_id},
    )


def _ids() -> tuple[str, str, str, int]:
    suffix = uuid.uuid4().hex[:8]
    # Far past any sequence the stream reaches in these tests: the claim is this message's alone.
    return f"starts{suffix}", f"run-{suffix}", f"cmd-{suffix}", random.randint(10**12, 10**13)


async def _latest_run(stack: Stack, tenant: str, workflow_id: str) -> str:
    """The run id of the latest execution under the run's Temporal id."""
    return (await stack.client.get_workflow_handle(temporal_id(tenant, workflow_id)).describe()).run_id


async def test_a_first_delivery_starts_its_run_without_looking_for_an_earlier_one(stack: Stack) -> None:
    """A start delivered once whose id it claimed just now is certainly new: no Temporal look-up before it starts."""
    tenant, workflow_id, msg_id, sequence = _ids()
    dispatcher = _dispatcher(stack)
    await dispatcher.handle(_start(tenant, workflow_id, msg_id, sequence))
    assert (await stack.events.status(tenant, workflow_id, "COMPLETED"))["commandId"] == msg_id
    assert dispatcher.lookups == 0


@pytest.mark.parametrize("how", ["same-claim", "delivered-twice", "replayed"])
async def test_a_start_met_again_finds_its_closed_run_and_starts_no_second(stack: Stack, how: str) -> None:
    """A start that may have been applied (its id claimed by an earlier delivery, a delivery count over one,
    a partition read again) looks first, and finds the run it started even once that run has closed."""
    tenant, workflow_id, msg_id, sequence = _ids()
    dispatcher = _dispatcher(stack)
    await dispatcher.handle(_start(tenant, workflow_id, msg_id, sequence))
    await stack.events.status(tenant, workflow_id, "COMPLETED")
    started = await _latest_run(stack, tenant, workflow_id)
    if how == "same-claim":
        await dispatcher.handle(_start(tenant, workflow_id, msg_id, sequence))
    else:
        # A claim lost with the key's expiry: only the delivery's own flags tell it may have been applied.
        await stack.duplicates.kv.purge(stack.duplicates.key(tenant, msg_id))
        again = _start(tenant, workflow_id, msg_id, sequence, delivered=2 if how == "delivered-twice" else 1)
        await dispatcher.handle(again, replayed=how == "replayed")
    assert dispatcher.lookups == 1
    # A second start would have made a new execution, the latest, by the time handle() returned.
    assert await _latest_run(stack, tenant, workflow_id) == started

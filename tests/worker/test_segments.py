"""Runs of pure nodes evaluated in one local activity (segments): same events, outputs and failures as one by one."""

from __future__ import annotations

import uuid
from typing import Any

from nats.aio.client import Client as NatsClient
from temporalio.api.enums.v1 import EventType
from worker_support import TENANT, EventTap, Runner, definition, script, state, success

from drift_schema.events import NodeEvent
from drift_worker.activities import SEGMENT_ACTIVITY
from drift_worker.announcer import Acknowledgements, Batch
from drift_worker.segments import global_keys, reachable_pure

RUNAWAY = "{% $count($distinct([1..100000])) %}"


def chain(length: int, last: dict[str, Any] | None = None, **extra: Any) -> Any:
    """`length` SCRIPT nodes, each adding one to the previous output, then `last` (SUCCESS by default)."""
    states = {
        f"s{i}": script("{% 1 %}" if i == 0 else f"{{% $global.s{i - 1} + 1 %}}", f"s{i + 1}") for i in range(length)
    }
    return definition({**states, f"s{length}": last or success("{% $global.s" + str(length - 1) + " %}")}, **extra)


async def segment_activities(handle: Any) -> int:
    """How many segment local activities the run's history records (one marker each)."""
    history = await handle.fetch_history()
    markers = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED]
    return sum(1 for marker in markers if SEGMENT_ACTIVITY.encode() in marker.SerializeToString())


async def test_a_chain_of_pure_nodes_is_one_segment_with_every_nodes_event_in_order(
    runner: Runner, tap: EventTap
) -> None:
    """Twenty SCRIPT nodes and a SUCCESS: one segment activity, one COMPLETED event per node, in visit order."""
    public, handle = await runner.start(chain(20, start="s0"))
    snapshot = await handle.result()
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == 20
    assert snapshot.context["s19"] == 20
    events = await tap.wait_for(lambda: len(tap.nodes[public]) >= 21 and tap.nodes[public])
    assert [event["instanceName"] for event in events] == [f"s{i}" for i in range(21)]
    assert [event["output"] for event in events[:20]] == list(range(1, 21))
    assert all(event["status"] == "COMPLETED" for event in events)
    assert [event["eventId"].rsplit(":n", 1)[1] for event in events] == [str(n) for n in range(1, 22)]
    await tap.status(public, "COMPLETED")
    assert tap.statuses(public) == ["RUNNING", "COMPLETED"]
    assert await segment_activities(handle) == 1


async def test_a_node_failing_inside_a_segment_fails_alone_after_the_nodes_before_it(
    runner: Runner, tap: EventTap
) -> None:
    """The nodes before a failing expression complete; it is announced FAILED once; the failure path runs on."""
    wf = definition(
        {
            "a": script("{% 1 %}", "b"),
            "b": script("{% $nope() %}", "c"),
            "c": script("{% 3 %}", "done"),
            "recover": script("{% 'after ' & $global.lastError.node %}", "done"),
            "done": success("{% $global.recover %}"),
        },
        start="a",
        defaultFailureNode="recover",
    )
    public, handle = await runner.start(wf)
    snapshot = await handle.result()
    assert snapshot.disposition == "after b"
    assert "c" not in snapshot.context
    events = await tap.wait_for(lambda: len(tap.nodes[public]) >= 4 and tap.nodes[public])
    assert [(e["instanceName"], e["status"]) for e in events] == [
        ("a", "COMPLETED"),
        ("b", "FAILED"),
        ("recover", "COMPLETED"),
        ("done", "COMPLETED"),
    ]
    assert events[1]["error"] == "output: Attempted to invoke a non-function"


async def test_a_nodes_timeout_ms_holds_inside_a_segment(runner: Runner, tap: EventTap) -> None:
    """A runaway expression in a node with `timeoutMs` is stopped at that limit, not at the segment's."""
    slow = state({"type": "SCRIPT", "output": RUNAWAY, "timeoutMs": 300}, "done")
    wf = definition(
        {"fast": script("{% 'quick' %}", "slow"), "slow": slow, "done": success()},
        start="fast",
    )
    public, handle = await runner.start(wf)
    snapshot = await handle.result()
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "evaluating 'slow' took longer than its time limit of 300 ms"
    assert snapshot.context["fast"] == "quick"
    failed = await tap.wait_for(lambda: [e for e in tap.nodes[public] if e["status"] == "FAILED"])
    assert failed[0]["instanceName"] == "slow"


def test_a_segment_is_sent_only_the_global_keys_its_expressions_read() -> None:
    """Keys read as `$global.name` are sent; `$global` used any other way (or `$eval`) sends the whole context."""
    wf = definition(
        {
            "a": script("{% $global.params.n + $global.`odd key` %}", "b", parameters={"p": "{% $global.cfg.x %}"}),
            "b": script("{% $global.a %}", "http"),
            "http": state({"type": "HTTP", "request": {"url": "{% $global.everything %}"}}),
        }
    )
    states = reachable_pure(wf, "a")
    assert set(states) == {"a", "b"}
    assert global_keys(states) == {"params", "odd key", "cfg", "a"}
    for whole in (
        "{% $keys($global) %}",
        "{% $global[0] %}",
        "{% $eval('$global.a') %}",
        "{% $lookup($global, 'a') %}",
    ):
        assert global_keys(reachable_pure(definition({"x": script(whole)}), "x")) is None, whole


async def test_events_published_again_under_the_same_ids_are_not_stored_twice(nats_client: NatsClient) -> None:
    """A retried segment's batch: every event is acknowledged, and those already stored come back as duplicates."""
    acks = Acknowledgements(nats_client.jetstream())
    run = uuid.uuid4().hex
    events = [
        NodeEvent(
            event_id=f"{run}:n{number}",
            workflow_id=f"dup-{run[:8]}",
            tenant=TENANT,
            instance_name=f"s{number}",
            node_type="SCRIPT",
            status="COMPLETED",
            output=number,
        )
        for number in range(1, 6)
    ]
    first = Batch(acks)
    for event in events:
        first.send(event)
    assert await first.settled() == events
    again = Batch(acks)
    for event in events:
        again.send(event)
    assert await again.settled() == []

"""Runs of pure nodes evaluated in one local activity (segments): same events, outputs and failures as one by one."""

from __future__ import annotations

import json
import uuid
from typing import Any

from nats.aio.client import Client as NatsClient
from temporalio.api.enums.v1 import EventType

from drift_runtime.temporal import run_result
from drift_schema.events import NodeEvent
from drift_worker.activities import MAX_EVENT_CONTEXT_BYTES, SEGMENT_ACTIVITY
from drift_worker.announcer import Acknowledgements, Batch
from drift_worker.segments import global_keys, reachable_pure
from worker.worker_support import TENANT, EventTap, Runner, definition, failure, script, state, success

RUNAWAY = "{% $count($distinct([1..100000])) %}"


def chain(length: int, last: dict[str, Any] | None = None, **extra: Any) -> Any:
    """`length` SCRIPT nodes, each adding one to the previous output, then `last` (SUCCESS by default)."""
    states = {
        f"s{i}": script("{% 1 %}" if i == 0 else f"{{% $global.s{i - 1} + 1 %}}", f"s{i + 1}") for i in range(length)
    }
    return definition({**states, f"s{length}": last or success("{% $global.s" + str(length - 1) + " %}")}, **extra)


async def local_activities(handle: Any) -> list[str]:
    """The types of the local activities the run's history records (one marker each), in order."""
    history = await handle.fetch_history()
    found = []
    for event in history.events:
        marker = event.marker_recorded_event_attributes
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and "data" in marker.details:
            found.append(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    return found


async def segment_activities(handle: Any) -> int:
    """How many segment local activities the run's history records."""
    return (await local_activities(handle)).count(SEGMENT_ACTIVITY)


def arrivals(tap: EventTap, public: str) -> list[str]:
    """The run's events in the order the tap heard them: node events by instance, status events by status."""
    return [
        event.get("instanceName") or event["workflowStatus"] for event in tap.arrivals if event["workflowId"] == public
    ]


async def test_a_chain_of_pure_nodes_is_one_segment_with_every_nodes_event_in_order(
    runner: Runner, tap: EventTap
) -> None:
    """Twenty SCRIPT nodes and a SUCCESS: one segment activity, one COMPLETED event per node, in visit order."""
    public, handle = await runner.start(chain(20, start="s0"))
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == 20
    assert snapshot.context["s19"] == 20
    events = await tap.wait_for(lambda: len(tap.nodes[public]) >= 21 and tap.nodes[public])
    assert [event["instanceName"] for event in events] == [f"s{i}" for i in range(21)]
    assert [event["output"] for event in events[:20]] == list(range(1, 21))
    assert all(event["status"] == "COMPLETED" for event in events)
    assert [event["eventId"].rsplit(":n", 1)[1] for event in events] == [str(n) for n in range(1, 22)]
    completed = await tap.status(public, "COMPLETED")
    assert tap.statuses(public) == ["RUNNING", "COMPLETED"]
    assert arrivals(tap, public) == ["RUNNING", *(f"s{i}" for i in range(21)), "COMPLETED"]
    # The segment publishes the run's end as the workflow would have: its node, disposition, outputs, next seq.
    assert (completed["currentNode"], completed["disposition"], completed["seq"]) == ("s20", 20, 2)
    assert completed["eventId"] == f"{handle.first_execution_run_id}:s2"
    assert completed["context"]["s19"] == 20
    assert await local_activities(handle) == [SEGMENT_ACTIVITY]


async def test_a_failure_node_ending_a_segment_fails_the_run_from_the_segments_activity(
    runner: Runner, tap: EventTap
) -> None:
    """A chain ending in FAILURE: one local activity; FAILED with the node's error, after every node event."""
    public, handle = await runner.start(chain(3, failure("{% 'stopped at ' & $string($global.s2) %}"), start="s0"))
    snapshot = await run_result(handle)
    assert (snapshot.workflow_status, snapshot.error_message) == ("FAILED", "stopped at 3")
    failed = await tap.status(public, "FAILED")
    assert (failed["errorMessage"], failed["currentNode"], failed["context"]["s2"]) == ("stopped at 3", "s3", 3)
    assert arrivals(tap, public) == ["RUNNING", "s0", "s1", "s2", "s3", "FAILED"]
    assert await local_activities(handle) == [SEGMENT_ACTIVITY]


async def test_a_segment_walking_off_the_graph_completes_the_run_from_its_activity(
    runner: Runner, tap: EventTap
) -> None:
    """The last node has no next node: COMPLETED at that node, the disposition kept, in the segment's activity."""
    wf = definition({"a": script("{% 1 %}", "b"), "b": script("{% $global.a + 1 %}", end=True)}, start="a")
    public, handle = await runner.start(wf)
    snapshot = await run_result(handle)
    assert (snapshot.workflow_status, snapshot.current_node, snapshot.disposition) == ("COMPLETED", "b", None)
    completed = await tap.status(public, "COMPLETED")
    assert (completed["currentNode"], completed["disposition"], completed["context"]["b"]) == ("b", None, 2)
    assert arrivals(tap, public) == ["RUNNING", "a", "b", "COMPLETED"]
    assert await local_activities(handle) == [SEGMENT_ACTIVITY]


async def test_a_context_too_large_to_carry_leaves_the_runs_end_to_the_workflow(runner: Runner, tap: EventTap) -> None:
    """Past MAX_EVENT_CONTEXT_BYTES the segment is not handed the run's end: the workflow publishes it after."""
    blob = "x" * (MAX_EVENT_CONTEXT_BYTES + 1)
    public, handle = await runner.start(chain(2, start="s0"), {"blob": blob})
    snapshot = await run_result(handle)
    assert snapshot.disposition == 2
    completed = await tap.status(public, "COMPLETED")
    assert (completed["contextOmitted"], completed["disposition"]) == (True, 2)
    assert arrivals(tap, public) == ["RUNNING", "s0", "s1", "s2", "COMPLETED"]
    assert await local_activities(handle) == [SEGMENT_ACTIVITY, "drift.emit"]


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
    public, snapshot = await runner.finish(wf)
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
    public, snapshot = await runner.finish(wf)
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


async def test_a_node_after_a_segment_never_starts_before_the_segments_nodes_finished(
    runner: Runner, tap: EventTap
) -> None:
    """Five SCRIPT nodes (one segment), then a PARALLEL node in the same workflow task: the PARALLEL node's
    start is not before the last SCRIPT node's finish, though the workflow's own clock stood still meanwhile."""
    scripts = {f"s{i}": script(f"{{% {i} %}}", f"s{i + 1}") for i in range(5)}
    fan = {"s5": state({"type": "PARALLEL", "branches": ["a"]}, "done"), "a": script("A", end=True)}
    wf = definition({**scripts, **fan, "done": success()}, start="s0")
    public, handle = await runner.start(wf)
    assert (await run_result(handle)).workflow_status == "COMPLETED"
    events = await tap.wait_for(lambda: len(tap.nodes[public]) >= 8 and tap.nodes[public])
    by_instance = {event["instanceName"]: event for event in events}
    assert by_instance["s5"]["startedAt"] >= by_instance["s4"]["finishedAt"], (by_instance["s4"], by_instance["s5"])
    assert by_instance["s4"]["startedAt"] >= by_instance["s3"]["finishedAt"]

"""The dispatcher pins CHILD definitions at start, so a child resolves from the run's input, never the store."""

from __future__ import annotations

from typing import Any

from drift_dispatcher.commands import CommandDispatcher
from drift_runtime.temporal import run_result
from drift_schema.api import WorkflowRef
from drift_schema.commands import StartCommand
from drift_schema.run import RunSnapshot, temporal_id
from drift_schema.workflow import WorkflowDefinition
from worker.worker_support import TENANT, Runner, definition, new_id, script, state, success


class StoreAtStart:
    """Stands in for the dsl-store: answers definitions by (id, version) and records what was asked."""

    def __init__(self, definitions: dict[tuple[str, str], WorkflowDefinition]) -> None:
        self.definitions = definitions
        self.asked: list[tuple[str, str]] = []

    async def pinned(self, tenant: str, definition_id: str, version: str) -> WorkflowDefinition | None:
        self.asked.append((definition_id, version))
        return self.definitions.get((definition_id, version))

    async def enums(self, tenant: str) -> dict[str, Any]:
        return {}

    async def traffic_split(self, tenant: str, definition_id: str) -> None:
        return None  # no splits: ACTIVE is pinned as the store answers it


def child(workflow_id: str, version: str = "ACTIVE", params: Any = None) -> dict[str, Any]:
    node = {"type": "CHILD", "childWorkflowId": workflow_id, "childWorkflowVersion": version, "executionMode": "SYNC"}
    return state({**node, "params": params}, "done")


async def test_start_pins_children_recursively_and_the_child_feeds_its_parent(runner: Runner) -> None:
    """`start()` resolves CHILD references (grandchildren too, each once); the pinned SYNC chain runs."""
    leaf = definition({"leaf": script("{% $global.params.n + 1 %}", "done"), "done": success("LEAF")}, id="leaf")
    middle = definition(
        {"call": child("leaf", "2", "{% {'n': $global.params.n * 10} %}"), "done": success("MIDDLE")}, id="middle"
    )
    parent = definition(
        {
            "call": child("middle", params="{% {'n': $global.params.n} %}"),
            "done": success("{% $string($global.call.context.call.context.leaf) %}"),
        },
        id="parent",
    )
    store = StoreAtStart({("parent", "ACTIVE"): parent, ("middle", "ACTIVE"): middle, ("leaf", "2"): leaf})
    dispatcher = CommandDispatcher(runner.client, None, store, runner.task_queue)  # type: ignore[arg-type]
    public = new_id("pinned")
    command = StartCommand(workflow=WorkflowRef(id="parent"), workflow_id=public, params={"n": 4})
    await dispatcher.start(TENANT, command, f"cmd-{public}")
    assert sorted(store.asked) == [("leaf", "2"), ("middle", "ACTIVE"), ("parent", "ACTIVE")]
    # Publishing a new version now changes nothing for the running chain: it never asks the store again.
    store.definitions.clear()
    handle = runner.client.get_workflow_handle(temporal_id(TENANT, public), result_type=RunSnapshot)
    snapshot = await run_result(handle)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "41"
    assert len(store.asked) == 3

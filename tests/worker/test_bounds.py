"""Expression bounds on a real worker: time, depth, ranges and a node's `timeoutMs` fail the node, naming the field."""

from __future__ import annotations

import asyncio

from worker_support import Runner, definition, script, state, success

# Roughly a second of work for jsonata-python on this kind of machine: well over 150 ms, far under a hang.
SLOW = "{% $count($map([1..20000], function($x) { $x * 2 })) %}"


async def test_runaway_recursion_fails_the_node_naming_the_field(runner: Runner) -> None:
    """Endless recursion stops at its depth or time bound and fails the node; the message names `output`."""
    wf = definition({"loop": script("{% ($f := function($x) { $f($x + 1) }; $f(1)) %}", "done"), "done": success()})
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert snapshot.error_message.startswith("output: ")


async def test_breach_in_a_parameter_names_the_parameter(runner: Runner) -> None:
    """A bound breached while resolving a parameter names `parameters/<name>`, into the default failure path."""
    wf = definition(
        {
            "use": state(
                {"type": "SCRIPT", "parameters": ["n"], "output": "{% $params.n %}"},
                "done",
                parameters={"n": "{% $count([1..500000]) %}"},
            ),
            "done": success(),
            "handler": success("{% $global.lastError.message %}"),
        },
        start="use",
        defaultFailureNode="handler",
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "parameters/n: range of 500000 items exceeds the limit of 100000"


async def test_node_timeout_bounds_a_pure_node_and_fails_it(runner: Runner) -> None:
    """A SCRIPT slower than its own `timeoutMs` fails (once, clearly) instead of being retried forever."""
    slow = state({"type": "SCRIPT", "output": SLOW, "timeoutMs": 150}, "done")
    wf = definition({"slow": slow, "done": success()})
    _, handle = await runner.start(wf)
    async with asyncio.timeout(30):
        snapshot = await handle.result()
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    # Whichever stops it first: the activity's deadline, or the expression's time bound capped by timeoutMs.
    assert "time limit of 150 ms" in snapshot.error_message or snapshot.error_message.startswith("output: ")

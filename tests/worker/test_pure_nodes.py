"""SCRIPT, BRANCH, SUCCESS, FAILURE and the failure paths, on a real Temporal server."""

from __future__ import annotations

from worker.worker_support import EventTap, Runner, definition, failure, script, state, success


async def test_script_output_lands_in_global_and_success_completes(runner: Runner, tap: EventTap) -> None:
    """A SCRIPT's output becomes `$global.<instance>`; SUCCESS completes with its disposition."""
    wf = definition(
        {
            "greet": state(
                {"type": "SCRIPT", "parameters": ["who"], "output": "{% 'Hello, ' & $params.who %}"},
                "done",
                parameters={"who": "{% $global.params.name %}"},
            ),
            "done": success("{% $global.greet %}"),
        }
    )
    public, snapshot = await runner.finish(wf, {"name": "Ada"})
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "Hello, Ada"
    assert snapshot.context["greet"] == "Hello, Ada"
    completed = await tap.node(public, "greet")
    assert completed["status"] == "COMPLETED"
    assert completed["output"] == "Hello, Ada"
    await tap.status(public, "COMPLETED")
    assert tap.statuses(public) == ["RUNNING", "COMPLETED"]


async def test_branch_takes_the_first_true_rule_else_the_default(runner: Runner) -> None:
    """BRANCH goes to the first choice whose rule is true, else to `defaultNode`."""
    branch = state(
        {
            "type": "BRANCH",
            "choices": [
                {"rule": "{% $global.params.n > 10 %}", "nextNode": "big"},
                {"rule": "{% $global.params.n > 5 %}", "nextNode": "medium"},
            ],
            "defaultNode": "small",
        }
    )
    wf = definition({"route": branch, "big": success("BIG"), "medium": success("MEDIUM"), "small": success("SMALL")})
    assert (await runner.run(wf, {"n": 20})).disposition == "BIG"
    assert (await runner.run(wf, {"n": 7})).disposition == "MEDIUM"
    assert (await runner.run(wf, {"n": 1})).disposition == "SMALL"


async def test_failure_node_fails_the_run_with_its_error(runner: Runner) -> None:
    """A FAILURE node fails the run with its rendered error as `errorMessage`."""
    wf = definition({"stop": failure("{% 'bad input: ' & $global.params.x %}")})
    snapshot = await runner.run(wf, {"x": "42"})
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message == "bad input: 42"


async def test_node_failure_goes_to_default_failure_node_with_last_error(runner: Runner, tap: EventTap) -> None:
    """A failing expression routes to `defaultFailureNode`, whose expressions see `$global.lastError`."""
    wf = definition(
        {
            "boom": script("{% $undefinedFunction() %}", "never"),
            "never": success("UNREACHED"),
            "handler": failure("{% 'handled: ' & $global.lastError.node & ' / ' & $global.lastError.message %}"),
        },
        defaultFailureNode="handler",
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.error_message is not None
    assert snapshot.error_message.startswith("handled: boom / output:")
    failed = await tap.node(public, "boom")
    assert failed["status"] == "FAILED"
    assert failed["error"].startswith("output:")


async def test_failure_without_default_failure_node_fails_the_run_clearly(runner: Runner) -> None:
    """Without `defaultFailureNode`, a node failure fails the run with a message naming the field."""
    message = await runner.script_failure("{% $count([1..200000]) %}")
    assert message == "output: range of 200000 items exceeds the limit of 100000"


async def test_failure_on_the_failure_path_fails_the_run(runner: Runner) -> None:
    """A node failing on the default failure path fails the run instead of looping."""
    wf = definition(
        {
            "boom": script("{% $nope() %}", "done"),
            "done": success(),
            "handler": script("{% $alsoNope() %}", "done"),
        },
        defaultFailureNode="handler",
    )
    snapshot = await runner.run(wf)
    assert snapshot.workflow_status == "FAILED"
    assert snapshot.context["lastError"]["node"] == "handler"


async def test_oversized_output_is_refused_naming_the_field(runner: Runner) -> None:
    """An output over the node output limit fails the node, naming `output` and the limit."""
    message = await runner.script_failure("{% $pad('', 20000, 'x') %}", "huge")
    assert message.startswith("output: the output of 'huge' is")
    assert "over the limit of 16384 bytes" in message


async def test_post_completion_nodes_run_after_the_terminal_state_without_changing_it(
    runner: Runner, tap: EventTap
) -> None:
    """`postWorkflowCompletionNodes` run after COMPLETED; even a failing one leaves the status as is."""
    wf = definition(
        {
            "main": script("main", "done"),
            "done": success("FINISHED"),
            "audit": script("{% 'audited ' & $global.main %}"),
            "broken": failure("post failure"),
        },
        start="main",
        postWorkflowCompletionNodes=["audit", "broken"],
    )
    public, snapshot = await runner.finish(wf)
    assert snapshot.workflow_status == "COMPLETED"
    assert snapshot.disposition == "FINISHED"
    assert snapshot.context["audit"] == "audited main"
    audit = await tap.node(public, "audit")
    completed = await tap.status(public, "COMPLETED")
    assert tap.arrivals.index(completed) < tap.arrivals.index(audit)
    assert tap.statuses(public) == ["RUNNING", "COMPLETED"]

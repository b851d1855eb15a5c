"""Graph checks: every structural fault of a workflow at once, each with a pointer."""

from __future__ import annotations

from drift_schema import codec
from drift_schema.graph import check_workflow, disconnected
from drift_schema.nodes import BranchNode, ParallelNode, ScriptNode, SuccessNode
from drift_schema.workflow import State, WorkflowDefinition


def _workflow(body: str) -> WorkflowDefinition:
    return codec.decode(body, WorkflowDefinition)


def test_a_sound_graph_has_no_faults() -> None:
    """A start node, resolvable edges and a terminal state make a valid graph."""
    definition = _workflow(
        '{"id":"w","startNode":"a","states":{"a":{"resourceId":"s","nextNode":"b"},"b":{"resourceId":"t","end":true}}}'
    )
    assert check_workflow(definition) == []


def test_all_faults_are_reported_at_once() -> None:
    """Missing start, dangling edges, bad expressions and no terminal state are all listed."""
    definition = _workflow(
        '{"id":"w","defaultFailureNode":"nowhere","states":{'
        '"a":{"resourceId":"s","nextNode":"ghost","parameters":{"p":"{% 1 + %}"}},'
        '"b":{"nodeDefinition":{"id":"br","type":"BRANCH","choices":[{"rule":"{% true %}","nextNode":"zzz"}]}}}}'
    )
    pointers = {error.pointer for error in check_workflow(definition)}
    assert pointers >= {
        "/startNode",
        "/defaultFailureNode",
        "/states/a/nextNode",
        "/states/a/parameters/p",
        "/states/b/nodeDefinition/choices/0/nextNode",
        "/states",
    }


def test_expression_errors_give_their_position() -> None:
    """A syntax error inside an inline node names the field and the position in the expression."""
    definition = _workflow(
        '{"id":"w","startNode":"a","states":{"a":{"end":true,'
        '"nodeDefinition":{"id":"s","type":"SCRIPT","output":"{% $x + %}"}}}}'
    )
    [error] = check_workflow(definition)
    assert error.pointer == "/states/a/nodeDefinition/output"
    assert "position" in error.message


def test_unresolvable_references_are_faults_when_a_resolver_is_given() -> None:
    """With a resolver, a resourceId that names no node is reported at /states/<name>/resourceId."""
    definition = _workflow('{"id":"w","startNode":"a","states":{"a":{"resourceId":"missing","end":true}}}')
    [error] = check_workflow(definition, resolve=lambda state: None)
    assert error.pointer == "/states/a/resourceId"


def test_referenced_branch_targets_are_checked() -> None:
    """A referenced BRANCH whose choices name no state is a fault of the referencing state."""
    branch = BranchNode(id="br", choices=[], default_node="elsewhere")
    definition = _workflow('{"id":"w","startNode":"a","states":{"a":{"resourceId":"br"},"z":{"resourceId":"done"}}}')
    nodes = {"br": branch, "done": SuccessNode(id="done")}

    def resolve(state: State) -> BranchNode | SuccessNode | None:
        return nodes.get(state.resource_id or "")

    [error] = check_workflow(definition, resolve=resolve)
    assert error.pointer == "/states/a/resourceId"
    assert "elsewhere" in error.message


def test_disconnected_states_are_listed_not_refused() -> None:
    """States that no edge reaches are allowed and listed."""
    definition = _workflow(
        '{"id":"w","startNode":"a","states":{"a":{"resourceId":"s","end":true},"side":{"resourceId":"s"}}}'
    )
    assert check_workflow(definition) == []
    assert disconnected(definition) == ["side"]


def _parallel_workflow(branch_a_next: str | None, extra_states: str = "") -> WorkflowDefinition:
    """start -> fork (PARALLEL a, b) -> join; a and b end unless a goes on to `branch_a_next`."""
    a_wiring = f'"nextNode":"{branch_a_next}"' if branch_a_next else '"end":true'
    return _workflow(
        '{"id":"w","startNode":"fork","states":{'
        '"fork":{"nodeDefinition":{"id":"p","type":"PARALLEL","branches":["a","b"]},"nextNode":"join"},'
        f'"a":{{"resourceId":"s",{a_wiring}}},'
        '"a2":{"resourceId":"s","end":true},'
        '"b":{"resourceId":"s","end":true},'
        f'"join":{{"resourceId":"t","end":true}}{extra_states}}}}}'
    )


def test_parallel_branches_that_end_are_sound() -> None:
    """Branches that walk their own states and end are no fault, however long they are."""
    assert check_workflow(_parallel_workflow("a2")) == []


def test_parallel_branch_reaching_the_continuation_escapes() -> None:
    """A branch whose path reaches the PARALLEL's nextNode leaves its branch: reported at the branch."""
    [error] = check_workflow(_parallel_workflow("join"))
    assert error.pointer == "/states/fork/nodeDefinition/branches/0"
    assert "'join'" in error.message


def test_parallel_branch_reaching_a_sibling_or_the_fork_escapes() -> None:
    """Reaching a sibling branch's state, or the PARALLEL itself, is an escape too."""
    [error] = check_workflow(_parallel_workflow("b"))
    assert error.pointer == "/states/fork/nodeDefinition/branches/0"
    assert "'b'" in error.message
    [error] = check_workflow(_parallel_workflow("fork"))
    assert "'fork'" in error.message


def test_parallel_branch_escaping_through_a_branch_choice() -> None:
    """A BRANCH inside a branch whose default leads outside escapes; a referenced PARALLEL points at resourceId."""
    definition = _parallel_workflow(
        "pick",
        ',"pick":{"nodeDefinition":{"id":"k","type":"BRANCH","choices":[{"rule":"{% true %}","nextNode":"a2"}],'
        '"defaultNode":"join"}}',
    )
    [error] = check_workflow(definition)
    assert "'join'" in error.message
    parallel = ParallelNode(id="p", branches=["a"])
    referenced = _workflow(
        '{"id":"w","startNode":"fork","states":{"fork":{"resourceId":"p","nextNode":"a"},'
        '"a":{"resourceId":"s","end":true}}}'
    )
    nodes = {"p": parallel, "s": ScriptNode(id="s")}
    [error] = check_workflow(referenced, resolve=lambda state: nodes.get(state.resource_id or ""))
    assert error.pointer == "/states/fork/resourceId"


def test_no_terminal_state_is_a_fault() -> None:
    """A state list with no end, SUCCESS or FAILURE is reported at /states; undecided references are not."""
    looping = _workflow(
        '{"id":"w","startNode":"a","states":{"a":{"resourceId":"s","nextNode":"b"},'
        '"b":{"nodeDefinition":{"id":"x","type":"SCRIPT"},"nextNode":"a"}}}'
    )
    assert [e.pointer for e in check_workflow(looping)] == ["/states"]
    dead_end = _workflow('{"id":"w","startNode":"a","states":{"a":{"resourceId":"done"}}}')
    assert check_workflow(dead_end) == []
    assert [e.pointer for e in check_workflow(dead_end, resolve=lambda state: ScriptNode(id="done"))] == ["/states"]

"""Graph checks: every structural fault of a workflow at once, each with a pointer."""

from __future__ import annotations

from drift_schema import codec
from drift_schema.graph import check_workflow, disconnected
from drift_schema.nodes import BranchNode, SuccessNode
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

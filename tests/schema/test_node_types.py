"""Node types describe themselves (edges, whether they end a run), and the worker knows exactly the schema's types."""

from __future__ import annotations

from typing import get_args

import pytest

from drift_schema.api import ProblemError
from drift_schema.graph import check_workflow, edges
from drift_schema.nodes import (
    NODE_TYPES,
    BranchNode,
    Edge,
    EdgeKind,
    MapNode,
    NodeDefinition,
    ParallelNode,
    ScriptNode,
    node_type,
)
from drift_schema.nodes.branch import Choice
from drift_schema.workflow import State, WorkflowDefinition
from drift_worker.nodes import NODE_KINDS


def test_the_worker_interprets_exactly_the_schemas_node_types() -> None:
    """A `type` tag the schema decodes but the worker cannot run (or the other way round) fails here."""
    assert set(NODE_KINDS) == set(NODE_TYPES), (
        f"only in drift_schema: {sorted(set(NODE_TYPES) - set(NODE_KINDS))}; "
        f"only in the worker: {sorted(set(NODE_KINDS) - set(NODE_TYPES))}"
    )


def test_node_types_are_the_members_of_the_node_definition_union() -> None:
    """NODE_TYPES is built from the NodeDefinition union, each member under its own `type` tag."""
    members = get_args(NodeDefinition)
    assert set(NODE_TYPES.values()) == set(members)
    assert len(NODE_TYPES) == len(members)
    for tag, cls in NODE_TYPES.items():
        assert cls.__struct_config__.tag == tag


@pytest.mark.parametrize("tag", sorted(NODE_TYPES))
def test_each_node_type_declares_its_edges_and_whether_it_ends_a_run(tag: str) -> None:
    """A node type says in its own class whether it ends a run and which edges it has, never by inheriting."""
    cls = NODE_TYPES[tag]
    assert "ends_run" in vars(cls), f"{cls.__name__} does not declare ends_run"
    assert "edges" in vars(cls), f"{cls.__name__} does not declare edges()"
    assert "ends_run" not in cls.__struct_fields__, "ends_run is a class attribute, never a wire field"


def test_only_success_and_failure_end_a_run() -> None:
    """SUCCESS and FAILURE end a run; no other node type does."""
    assert {tag for tag, cls in NODE_TYPES.items() if cls.ends_run} == {"SUCCESS", "FAILURE"}


def test_branch_parallel_success_and_failure_steer_a_run() -> None:
    """The node types a test run's mock cannot stand in for are BRANCH, PARALLEL, SUCCESS and FAILURE."""
    assert {tag for tag, cls in NODE_TYPES.items() if cls.steers} == {"BRANCH", "PARALLEL", "SUCCESS", "FAILURE"}


def test_a_branch_names_each_choice_with_its_rule_then_its_default() -> None:
    """A BRANCH's edges are its choices (pointer, position and rule each) and then its default."""
    node = BranchNode(
        id="b",
        choices=[Choice(rule="{% $x > 1 %}", next_node="big"), Choice(rule=True, next_node="small")],
        default_node="other",
    )
    assert node.edges() == [
        Edge("/choices/0/nextNode", "big", EdgeKind.CHOICE, 0, "{% $x > 1 %}"),
        Edge("/choices/1/nextNode", "small", EdgeKind.CHOICE, 1, True),
        Edge("/defaultNode", "other", EdgeKind.DEFAULT),
    ]
    assert BranchNode(id="b").edges() == []


def test_parallel_and_map_edges_start_branches() -> None:
    """PARALLEL's branches and MAP's item node are branch-starting edges; choices and nextNode are not."""
    parallel = ParallelNode(id="p", branches=["a", "b"]).edges()
    assert parallel == [Edge("/branches/0", "a", EdgeKind.BRANCH, 0), Edge("/branches/1", "b", EdgeKind.BRANCH, 1)]
    assert MapNode(id="m", items=[1], item_node="each").edges() == [Edge("/itemNode", "each", EdgeKind.ITEM)]
    assert {kind for kind in EdgeKind if kind.starts_branch} == {EdgeKind.BRANCH, EdgeKind.ITEM}


def test_a_states_edges_are_its_next_node_then_its_nodes_own() -> None:
    """graph.edges puts the state's nextNode first, then the node's edges; an unknown node adds none."""
    state = State(resource_id="p", next_node="after")
    node = ParallelNode(id="p", branches=["a"])
    assert edges(state, node) == [
        Edge("/nextNode", "after", EdgeKind.NEXT),
        Edge("/branches/0", "a", EdgeKind.BRANCH, 0),
    ]
    assert edges(state, None) == [Edge("/nextNode", "after", EdgeKind.NEXT)]
    assert edges(State(resource_id="s"), ScriptNode(id="s")) == []


def test_a_callers_fault_for_an_unresolved_node_replaces_the_generic_one() -> None:
    """check_workflow reports `unresolved[name]` for a node it cannot resolve, the generic fault for the others."""
    definition = WorkflowDefinition(
        id="w",
        start_node="a",
        states={"a": State(resource_id="gone", next_node="b"), "b": State(resource_id="also", end=True)},
    )
    precise = ProblemError(pointer="/states/a/resourceVersion", message="node 'gone' has no published version '3'")
    faults = check_workflow(definition, lambda state: None, unresolved={"a": precise})
    assert faults == [
        precise,
        ProblemError(pointer="/states/b/resourceId", message="node 'also' version 'LATEST' does not exist"),
    ]


def test_node_type_reads_the_wire_tag() -> None:
    """node_type answers the `type` tag a node definition is written with."""
    assert node_type(ScriptNode(id="s")) == "SCRIPT"

"""treeView in svg, png and mermaid (layers, routes, measured text, full labels), and disconnected states listed
on every workflow write."""

from __future__ import annotations

import io
import itertools
import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image

from drift_dsl_store.render import (
    BOX_H,
    FILLS,
    LINE,
    MAX_DRAWN_STATES,
    MAX_PNG_PIXELS,
    NAME_SIZE,
    PAD_X,
    PNG_SCALE,
    TEXT_SIZE,
    TooLargeToDraw,
    layout,
    mermaid,
    png,
    svg,
    text_width,
)
from drift_schema.codec import workflow_definition_decoder
from drift_schema.expressions import expression_body
from dsl_store.helpers import ACME, publish_nodes, success_node

Client = AsyncTestClient[Any]
SVG_NS = "{http://www.w3.org/2000/svg}"
HEADER = "x-drift-disconnected-states"


def _workflow() -> dict[str, Any]:
    """A BRANCH with two rules and a default, a PARALLEL of two branches, a loop back and two disconnected states."""
    return {
        "id": "orders",
        "startNode": "check",
        "defaultFailureNode": "oops",
        "states": {
            "check": {
                "nodeDefinition": {
                    "id": "b",
                    "type": "BRANCH",
                    "choices": [
                        {"rule": "{% $params.amount > 100 %}", "nextNode": "approve"},
                        {"rule": "{% $params.kind = 'gift' %}", "nextNode": "fork"},
                    ],
                    "defaultNode": "done",
                }
            },
            "approve": {"resourceId": "calc", "nextNode": "fork"},
            "fork": {
                "nodeDefinition": {"id": "p", "type": "PARALLEL", "branches": ["left", "right"]},
                "nextNode": "done",
            },
            "left": {"resourceId": "calc", "end": True},
            "right": {"resourceId": "calc", "end": True},
            "done": {"resourceId": "done"},
            "oops": {"nodeDefinition": {"id": "bad", "type": "FAILURE", "error": "no"}},
            "retry": {"resourceId": "calc", "nextNode": "check"},
            "orphan": {"resourceId": "calc"},
        },
    }


async def _published(client: Client) -> None:
    await publish_nodes(client)
    assert (await client.post("/workflowDefinition", json=_workflow(), headers=ACME)).status_code == 201
    assert (await client.post("/workflowDefinition/orders/publishWorkflow", headers=ACME)).status_code == 200


async def _view(client: Client, drawing: str) -> Any:
    response = await client.get("/workflowDefinition/treeView/orders", params={"format": drawing}, headers=ACME)
    assert response.status_code == 200, response.text
    return response


async def test_svg_labels_states_rules_branches_and_marks(client: Client) -> None:
    """The SVG names each state and its type, labels choices with their rule, and marks start, terminals, detached."""
    await _published(client)
    root = ET.fromstring((await _view(client, "svg")).text)
    texts = {element.text for element in root.iter(f"{SVG_NS}text")}
    assert {"check", "approve", "fork", "left", "right", "done", "oops", "retry", "orphan"} <= texts
    assert {"1: $params.amount > 100", "2: $params.kind = 'gift'", "default", "branch 1", "branch 2"} <= texts
    assert {"BRANCH (inline)", "SCRIPT · calc@LATEST", "SUCCESS · done@LATEST", "start"} <= texts
    groups = {
        group.findall(f"{SVG_NS}text")[-2].text: set(group.get("class", "").split())
        for group in root.iter(f"{SVG_NS}g")
    }
    assert groups["check"] == {"state", "start"}
    assert {name for name, classes in groups.items() if "terminal" in classes} == {"left", "right", "done", "oops"}
    assert {name for name, classes in groups.items() if "disconnected" in classes} == {"retry", "orphan"}
    # 3 edges of the BRANCH, 2 parallel branches, 2 nextNode edges and the loop from retry: one path each.
    assert len(root.findall(f"{SVG_NS}path")) == 8


async def test_png_is_the_svg_rendered_with_each_state_drawn(client: Client) -> None:
    """The PNG is the SVG drawn at twice its size (one drawing), each state in its fill: start blue, SUCCESS green,
    detached grey."""
    await _published(client)
    response = await _view(client, "png")
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    root = ET.fromstring((await _view(client, "svg")).text)
    assert image.size == (int(root.get("width", "0")) * PNG_SCALE, int(root.get("height", "0")) * PNG_SCALE)
    rgb = image.convert("RGB")
    boxes = {group.findall(f"{SVG_NS}text")[-2].text: group.find(f"{SVG_NS}rect") for group in root.iter(f"{SVG_NS}g")}

    def fill_of(name: str) -> str:
        rect = boxes[name]
        assert rect is not None
        # A point inside the box, left of its centred text and inside any inner terminal border.
        x, y = (float(rect.get("x", "0")) + 12) * PNG_SCALE, (float(rect.get("y", "0")) + BOX_H / 2) * PNG_SCALE
        return "#{:02x}{:02x}{:02x}".format(*rgb.getpixel((int(x), int(y))))

    assert fill_of("check") == FILLS["start"]
    assert fill_of("done") == FILLS["SUCCESS"]
    assert fill_of("oops") == FILLS["FAILURE"]
    assert fill_of("retry") == fill_of("orphan") == FILLS["disconnected"]
    assert fill_of("approve") == FILLS["other"]


async def test_mermaid_shows_rules_branches_start_terminals_and_detached(client: Client) -> None:
    """The Mermaid flowchart labels choices with their rule and classes the start and the disconnected states."""
    await _published(client)
    text = (await _view(client, "mermaid")).text
    ids = {line.split('"')[1].split("<br/>")[0]: line.split()[0][:2] for line in text.splitlines()[1:10]}
    assert f'{ids["check"]} -->|"1: $params.amount #gt; 100"| {ids["approve"]}' in text
    assert f'{ids["check"]} -->|"default"| {ids["done"]}' in text
    assert f'{ids["fork"]} -.->|"branch 2"| {ids["right"]}' in text
    assert f"class {ids['check']} start" in text
    assert f"class {ids['retry']},{ids['orphan']} disconnected" in text
    assert f'{ids["left"]}[["left' in text and f'{ids["check"]}(["check' in text


async def test_disconnected_states_are_allowed_and_listed(client: Client) -> None:
    """A workflow with unreachable states is accepted; create, update and publish list them in a header."""
    await publish_nodes(client)
    created = await client.post("/workflowDefinition", json=_workflow(), headers=ACME)
    assert created.status_code == 201
    assert json.loads(created.headers[HEADER]) == ["retry", "orphan"]
    reconnected = _workflow()
    reconnected["states"]["done"]["nextNode"] = "orphan"
    updated = await client.put("/workflowDefinition", json=reconnected, headers=ACME)
    assert json.loads(updated.headers[HEADER]) == ["retry"]
    published = await client.post("/workflowDefinition/orders/publishWorkflow", headers=ACME)
    assert published.status_code == 200
    assert json.loads(published.headers[HEADER]) == ["retry"]
    connected = _workflow()
    del connected["states"]["retry"], connected["states"]["orphan"]
    clean = await client.put("/workflowDefinition", json=connected, headers=ACME)
    assert clean.status_code == 200 and HEADER not in clean.headers


async def test_disconnected_states_follow_referenced_branch_edges(client: Client) -> None:
    """A state reached only through a referenced BRANCH node's choice is not listed as disconnected."""
    branch = {"id": "route", "type": "BRANCH", "choices": [{"rule": "{% true %}", "nextNode": "yes"}]}
    await publish_nodes(client, branch, success_node())
    workflow = {
        "id": "w",
        "startNode": "route",
        "states": {
            "route": {"resourceId": "route", "nextNode": "no"},
            "yes": {"resourceId": "done"},
            "no": {"resourceId": "done"},
            "unused": {"resourceId": "done"},
        },
    }
    created = await client.post("/workflowDefinition", json=workflow, headers=ACME)
    assert created.status_code == 201
    assert json.loads(created.headers[HEADER]) == ["unused"]


def _chain(count: int) -> dict[str, Any]:
    """A workflow of `count` inline states in a line."""
    states: dict[str, Any] = {
        f"s{i}": {"nodeDefinition": {"id": "n", "type": "SCRIPT", "output": 1}, "nextNode": f"s{i + 1}"}
        for i in range(count - 1)
    }
    states[f"s{count - 1}"] = {"nodeDefinition": {"id": "n", "type": "SUCCESS"}, "end": True}
    return {"id": "big", "startNode": "s0", "states": states}


async def test_svg_and_png_past_the_drawing_limit_answer_422_and_mermaid_still_draws(client: Client) -> None:
    """A graph over MAX_DRAWN_STATES answers 422 at /states for svg and png (naming mermaid); mermaid draws it."""
    count = MAX_DRAWN_STATES + 1
    assert (await client.post("/workflowDefinition", json=_chain(count), headers=ACME)).status_code == 201
    for drawing in ("svg", "png"):
        response = await client.get(
            "/workflowDefinition/treeView/big", params={"version": "SNAPSHOT", "format": drawing}, headers=ACME
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        (error,) = response.json()["errors"]
        assert error["pointer"] == "/states" and str(count) in error["message"] and "mermaid" in error["message"]
    text = await client.get(
        "/workflowDefinition/treeView/big", params={"version": "SNAPSHOT", "format": "mermaid"}, headers=ACME
    )
    assert text.status_code == 200 and f"s{count - 1}" in text.text


async def test_a_graph_at_the_drawing_limit_still_draws(client: Client) -> None:
    """A graph of exactly MAX_DRAWN_STATES states draws as svg and png."""
    assert (await client.post("/workflowDefinition", json=_chain(MAX_DRAWN_STATES), headers=ACME)).status_code == 201
    for drawing in ("svg", "png"):
        response = await client.get(
            "/workflowDefinition/treeView/big", params={"version": "SNAPSHOT", "format": drawing}, headers=ACME
        )
        assert response.status_code == 200, response.text[:300]


def test_a_png_wider_than_the_pixel_limit_is_refused_before_drawing() -> None:
    """A wide PARALLEL above a long chain lays out past MAX_PNG_PIXELS even at scale 1: refused, never drawn."""
    branches = [f"b{i}" for i in range(200)]
    chain = [f"c{i}" for i in range(MAX_DRAWN_STATES - len(branches) - 1)]
    states: dict[str, Any] = {
        "fork": {"nodeDefinition": {"id": "p", "type": "PARALLEL", "branches": branches}, "nextNode": chain[0]},
        **{name: {"nodeDefinition": {"id": "s", "type": "SCRIPT", "output": 1}, "end": True} for name in branches},
        **{
            name: {"nodeDefinition": {"id": "s", "type": "SCRIPT", "output": 1}, "nextNode": after}
            for name, after in itertools.pairwise(chain)
        },
        chain[-1]: {"nodeDefinition": {"id": "d", "type": "SUCCESS"}, "end": True},
    }
    definition = workflow_definition_decoder.decode(
        json.dumps({"id": "wide", "startNode": "fork", "states": states}).encode()
    )
    nodes = {name: state.node_definition for name, state in definition.states.items()}
    plan = layout(definition, nodes)
    assert plan.width * plan.height > MAX_PNG_PIXELS
    with pytest.raises(TooLargeToDraw, match="pixels"):
        png(definition, nodes)


def _inline(start: str, states: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A decoded definition of inline states and its nodes by instance name (what the store hands the drawing)."""
    definition = workflow_definition_decoder.decode(json.dumps({"id": "w", "startNode": start, "states": states}))
    return definition, {name: state.node_definition for name, state in definition.states.items()}


def _script(next_node: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"nodeDefinition": {"id": "s", "type": "SCRIPT", "output": 1}}
    if next_node is None:
        state["end"] = True
    else:
        state["nextNode"] = next_node
    return state


def _branch(*targets: str, rules: list[str] | None = None) -> dict[str, Any]:
    rules = rules or [f"{{% $params.n = {i} %}}" for i in range(len(targets) - 1)]
    choices = [{"rule": rule, "nextNode": target} for rule, target in zip(rules, targets, strict=False)]
    return {"nodeDefinition": {"id": "b", "type": "BRANCH", "choices": choices, "defaultNode": targets[-1]}}


def _joins() -> tuple[Any, dict[str, Any]]:
    """A BRANCH into a short and a long path that join, a join of the join, and a loop back to the start."""
    return _inline(
        "route",
        {
            "route": _branch("short", "long1", "join"),
            "short": _script("join"),
            "long1": _script("long2"),
            "long2": _script("long3"),
            "long3": _script("join"),
            "join": _script("again"),
            "again": _branch("route", "end"),
            "end": {"nodeDefinition": {"id": "d", "type": "SUCCESS"}, "end": True},
        },
    )


def test_layers_put_a_join_below_every_parent_and_only_loops_point_up() -> None:
    """Layers go by longest path: a join is drawn below each of its parents (the short path's too), and the only
    edge drawn upwards is the loop back to the start."""
    plan = layout(*_joins())
    top = {box.name: box.y for box in plan.boxes}
    for parent in ("route", "short", "long1", "long2", "long3"):
        assert top["join"] > top[parent], parent
    assert top["long1"] < top["long2"] < top["long3"] < top["join"] < top["again"] < top["end"]
    upward = [(e.source, e.target) for e in plan.edges if e.points[-1][1] < e.points[0][1]]
    assert upward == [("again", "route")]


def test_no_edge_runs_across_a_box() -> None:
    """Edges that skip layers pass beside the boxes in between: no edge's line crosses a box it does not join."""
    plan = layout(*_joins())
    for edge in plan.edges:
        for (x1, y1), (x2, y2) in itertools.pairwise(edge.points):
            for box in plan.boxes:
                if box.name in (edge.source, edge.target):
                    continue
                for step in range(101):
                    x, y = x1 + (x2 - x1) * step / 100, y1 + (y2 - y1) * step / 100
                    inside = box.x + 1 < x < box.x + box.w - 1 and box.y + 1 < y < box.y + BOX_H - 1
                    assert not inside, (edge.source, edge.target, box.name)


LONG_NAME = "a_state_with_a_rather_long_instance_name_indeed"
LONG_RULE = (
    "{% $params.kind = 'gift' and $count($params.items[price > 10 and category in ['toys', 'books']]) > 3 "
    "or $params.customer.vip = true %}"
)


def test_text_fits_its_box_in_the_svg_and_in_the_png() -> None:
    """Boxes are as wide as their measured text: each name and type fits its box in the SVG, and in the PNG (the
    SVG rendered with the same font) no ink of a box's text falls outside it."""
    definition, nodes = _inline("first", {"first": _script(LONG_NAME), LONG_NAME: _script("x"), "x": _script()})
    plan = layout(definition, nodes)
    root = ET.fromstring(svg(definition, nodes))
    texts = [element.text for element in root.iter(f"{SVG_NS}text")]
    assert LONG_NAME in texts  # whole, not cut
    for box in plan.boxes:
        assert text_width(box.name, NAME_SIZE) <= box.w - 2 * PAD_X
        assert text_width(box.subtitle, TEXT_SIZE) <= box.w - 2 * PAD_X
    image = Image.open(io.BytesIO(png(definition, nodes))).convert("L")
    assert image.size == (int(root.get("width", "0")) * PNG_SCALE, int(root.get("height", "0")) * PNG_SCALE)
    for box in plan.boxes:
        band = (int(box.y + 6) * PNG_SCALE, int(box.y + BOX_H - 6) * PNG_SCALE)
        left_side = (max(int(box.x - 18), 0) * PNG_SCALE, int(box.x - 3) * PNG_SCALE)
        right_side = (int(box.x + box.w + 3) * PNG_SCALE, int(min(box.x + box.w + 18, plan.width)) * PNG_SCALE)
        for x0, x1 in (left_side, right_side):
            ink = [image.getpixel((x, y)) for x in range(x0, x1) for y in range(*band)]
            assert min(ink, default=255) > 200, box.name
        # ...and there is ink inside: the text was drawn.
        inside = range(int(box.x + 8) * PNG_SCALE, int(box.x + box.w - 8) * PNG_SCALE)
        assert min(image.getpixel((x, y)) for x in inside for y in range(*band)) < 128, box.name


def test_branch_labels_are_full_on_the_edge_or_in_the_legend() -> None:
    """A short rule labels its edge in full, a longer one wrapped over lines (a long path cut after its dots); a rule
    too long for three lines is numbered on its edge and written in full in the legend below the graph; Mermaid
    carries every rule in full."""
    dotted = "{% $global.ask_approval.selectedOptions.decision = 'APPROVE' %}"
    definition, nodes = _inline(
        "route",
        {
            "route": _branch("a", "b", "d", "c", rules=["{% $params.n > 1 %}", LONG_RULE, dotted]),
            **{n: _script() for n in "abcd"},
        },
    )
    root = ET.fromstring(svg(definition, nodes))
    texts = [element.text or "" for element in root.iter(f"{SVG_NS}text")]
    assert "1: $params.n > 1" in texts and "default" in texts
    (wrapped,) = [edge.label_lines for edge in layout(definition, nodes).edges if edge.target == "d"]
    assert len(wrapped) > 1 and "".join(wrapped).replace(" ", "") == "3:" + expression_body(dotted).replace(" ", "")
    assert all(line in texts for line in wrapped) and wrapped[0].endswith(".")
    assert any(text.startswith("2: $params.kind = 'gift'") and text.endswith(" [1]") for text in texts)
    legend = " ".join(e.text or "" for e in root.iter(f"{SVG_NS}text") if e.get("class") == "legend")
    assert "[1] route -> b: 2: " + " ".join(expression_body(LONG_RULE).split()) in legend
    plan = layout(definition, nodes)
    assert plan.height > max(box.y for box in plan.boxes) + BOX_H + LINE * 2  # room for the legend
    assert " ".join(expression_body(LONG_RULE).split()).replace(">", "#gt;") in mermaid(definition, nodes)

"""Drawings of a workflow graph for `treeView`: a Mermaid flowchart, an SVG, and a PNG rendered from that SVG.

One drawing: the PNG is the SVG rasterised by resvg, so both show the same thing. States are laid
out in layers by longest path (a state sits below every state with an edge into it, so a join is
drawn below both its parents; only loops point upwards, along a lane right of the graph); edges
that skip layers pass through slots of their own, never across a box. Every text is measured with
the font the drawing uses (Aileron, shipped with the package and embedded in the SVG, the font
resvg is given), so boxes are as wide as their text. Every state shows its instance name and node
type; edges are drawn for `nextNode`, each branch choice (labelled with its full rule, wrapped; a
rule too long for three lines gets a numbered note in the legend below), the default, each parallel
branch and a MAP's item node. The start state is blue with a thick border and a `start` tag,
terminal states (SUCCESS, FAILURE or `end: true`) have a double border, and disconnected states
(no edge reaches them) are grey and dashed.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from statistics import fmean
from xml.sax.saxutils import escape

import resvg_py
from PIL import ImageFont

from drift_schema.expressions import expression_body, is_expression
from drift_schema.graph import disconnected, edges
from drift_schema.nodes import Edge as GraphEdge  # `Edge` here is an edge as drawn
from drift_schema.nodes import EdgeKind, NodeBase, node_type
from drift_schema.workflow import WorkflowDefinition

Nodes = Mapping[str, NodeBase | None]
Point = tuple[float, float]

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN, TOP, LANE = 160, 48, 40, 80, 24, 44, 14
"""BOX_W is the narrowest box; a box is as wide as its text, up to MAX_BOX_W."""
MAX_BOX_W = 360
PAD_X = 12
DUMMY_W = 16
"""Width of the slot an edge takes in each layer it passes through."""
LOOP_GAP = 8
"""How far above its source and below its target a loop runs to and from its lane."""
NAME_SIZE, TEXT_SIZE, LINE = 13, 11, 14
LABEL_W = 190
"""The widest line of an edge label; a rule needing more than LABEL_LINES lines goes to the legend."""
LABEL_LINES = 3
MIN_LEGEND_W = 480
MAX_LABEL = 28
FONT_PATH = Path(__file__).with_name("fonts") / "Aileron-Regular.ttf"
"""Aileron Regular (CC0), the font Pillow bundles: measured here, embedded in the SVG, given to resvg."""
FONT_FAMILY = "Aileron"
FILLS = {
    "start": "#dbeafe",
    "SUCCESS": "#dcfce7",
    "FAILURE": "#fee2e2",
    "disconnected": "#e5e7eb",
    "other": "#f8fafc",
}
INK, EDGE, BORDER, MUTED = "#0f172a", "#475569", "#334155", "#6b7280"
# PNG is rendered at twice the SVG's scale so that text stays crisp.
PNG_SCALE = 2
MAX_DRAWN_STATES = 250
"""The most states an SVG or PNG draws; a larger graph is refused (mermaid has no such limit)."""
MAX_DRAWN_EDGES = 1000
"""The most edges an SVG or PNG draws."""
MAX_PNG_PIXELS = 16_000_000
"""The largest PNG drawn, width x height (48 MB of RGB while drawing); past it at PNG_SCALE, drawn at scale 1."""


class TooLargeToDraw(ValueError):
    """The graph is over a drawing limit; the message says which, and that mermaid still answers."""


def check_drawable(definition: WorkflowDefinition) -> None:
    """Refuse an SVG or PNG of a graph with too many states, before any node is loaded or laid out."""
    count = len(definition.states)
    if count > MAX_DRAWN_STATES:
        raise TooLargeToDraw(
            f"{count} states: svg and png draw at most {MAX_DRAWN_STATES}; use format=mermaid for larger graphs"
        )


@dataclass(frozen=True, slots=True)
class Box:
    """One state as drawn (`x`, `y` its top-left corner, `w` its width; BOX_H high)."""

    name: str
    x: float
    y: float
    w: float
    subtitle: str
    fill: str
    start: bool
    terminal: bool
    detached: bool
    failure_handler: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge as drawn: a polyline from the source to the target, its label's lines centred at `label_at`."""

    source: str
    target: str
    label: str | None
    kind: str
    points: tuple[Point, ...]
    label_at: Point
    label_lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    title: str
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]
    legend: tuple[str, ...] = ()
    """Lines of the notes below the graph: rules too long to label their edge."""
    legend_y: float = 0.0


def _short(text: str, limit: int = MAX_LABEL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rule_text(rule: object) -> str:
    if is_expression(rule):
        return expression_body(str(rule)).strip()
    return str(rule).lower() if isinstance(rule, bool) else str(rule)


def _edge_label(edge: GraphEdge) -> tuple[str | None, str]:
    """(label, drawing style) of an edge: a choice shows its rule, plain `nextNode` edges stay unlabelled."""
    match edge.kind:
        case EdgeKind.CHOICE:
            return " ".join(f"{edge.position + 1}: {_rule_text(edge.rule)}".split()), "choice"
        case EdgeKind.BRANCH:
            return f"branch {edge.position + 1}", "branch"
        case EdgeKind.ITEM:
            return "each item", "branch"
        case EdgeKind.DEFAULT:
            return "default", "default"
        case EdgeKind.NEXT:
            return None, "next"


def _subtitle(definition: WorkflowDefinition, name: str, nodes: Nodes) -> str:
    state = definition.states[name]
    node = nodes.get(name)
    kind = node_type(node) if node is not None else "?"
    if state.node_definition is not None:
        return f"{kind} (inline)"
    return f"{kind} · {state.resource_id}@{state.resource_version}"


def _is_terminal(definition: WorkflowDefinition, name: str, nodes: Nodes) -> bool:
    node = nodes.get(name)
    return definition.states[name].end or (node is not None and node.ends_run)


def _graph_edges(definition: WorkflowDefinition, nodes: Nodes) -> list[tuple[str, str, str | None, str]]:
    """(source, target, label, kind) of every edge whose target exists."""
    found = []
    for name, state in definition.states.items():
        node = nodes.get(name)
        for edge in edges(state, node):
            if edge.target in definition.states:
                label, kind = _edge_label(edge)
                found.append((name, edge.target, label, kind))
    return found


def _detached(definition: WorkflowDefinition, nodes: Nodes) -> set[str]:
    """States no edge reaches (contract 4.2): allowed, and drawn as such."""
    # The resolver is handed a State; the drawing knows nodes by instance name.
    by_state = {id(state): nodes.get(name) for name, state in definition.states.items()}
    return set(disconnected(definition, lambda state: by_state.get(id(state))))


def mermaid(definition: WorkflowDefinition, nodes: Nodes) -> str:
    """A Mermaid `flowchart TD`; instance names are quoted labels, so any name is safe."""

    def text(value: str) -> str:
        return value.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")

    ids = {name: f"s{index}" for index, name in enumerate(definition.states)}
    detached = _detached(definition, nodes)
    lines = ["flowchart TD"]
    for name in definition.states:
        caption = f"{text(name)}<br/><small>{text(_subtitle(definition, name, nodes))}</small>"
        opening, closing = ("([", "])") if name == definition.start_node else ("[", "]")
        if _is_terminal(definition, name, nodes):
            opening, closing = "[[", "]]"
        lines.append(f'    {ids[name]}{opening}"{caption}"{closing}')
    for source, target, label, kind in _graph_edges(definition, nodes):
        arrow = "-.->" if kind == "branch" else "-->"
        lines.append(
            f'    {ids[source]} {arrow}|"{text(label)}"| {ids[target]}'
            if label
            else f"    {ids[source]} {arrow} {ids[target]}"
        )
    if definition.start_node in ids:
        lines += ["    classDef start stroke-width:3px", f"    class {ids[definition.start_node]} start"]
    if definition.default_failure_node is not None and definition.default_failure_node in ids:
        lines += [
            "    classDef failure stroke-dasharray: 4 3",
            f"    class {ids[definition.default_failure_node]} failure",
        ]
    if detached:
        lines.append("    classDef disconnected fill:#e5e7eb,stroke-dasharray: 2 2,color:#6b7280")
        lines.append(f"    class {','.join(ids[name] for name in definition.states if name in detached)} disconnected")
    return "\n".join(lines) + "\n"


# -- measuring -------------------------------------------------------------------------------


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    """The drawing's font at `size` px, for measuring (the same file resvg draws with)."""
    return ImageFont.truetype(str(FONT_PATH), size)


@cache
def _font_face() -> str:
    """The font as an SVG @font-face rule, so a browser draws the SVG with the font it was measured in."""
    data = base64.b64encode(FONT_PATH.read_bytes()).decode()
    return f"@font-face{{font-family:{FONT_FAMILY};src:url(data:font/ttf;base64,{data}) format('truetype')}}"


def text_width(text: str, size: int) -> float:
    """How wide `text` is drawn at `size` px, in SVG units."""
    return float(_font(size).getlength(text))


def _fit(text: str, size: int, width: float) -> str:
    """`text`, cut with an ellipsis where it would be wider than `width`."""
    if text_width(text, size) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits with the ellipsis
        middle = (low + high + 1) // 2
        if text_width(text[:middle] + "…", size) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low] + "…"


def _head(word: str, size: int, width: float) -> tuple[str, str]:
    """The longest head of `word` no wider than `width`, cut after `.`, `_`, `/`, `-` or `,` where one fits."""
    low, high = 0, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if text_width(word[:middle], size) <= width:
            low = middle
        else:
            high = middle - 1
    if low >= len(word):
        return word, ""
    cut = max((index + 1 for index, char in enumerate(word[:low]) if char in "._/-,"), default=low)
    return word[:cut], word[cut:]


def wrap(text: str, size: int, width: float) -> list[str]:
    """`text` in lines no wider than `width`: at spaces, and inside a word wider than a line (after
    punctuation where possible), filling the line it starts on."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size) <= width:
            current = candidate
            continue
        if text_width(word, size) <= width:
            lines.append(current)
            current = word
            continue
        prefix = f"{current} " if current else ""
        head, rest = _head(word, size, width - text_width(prefix, size))
        if head:
            lines.append(prefix + head)
        elif current:
            lines.append(current)
            rest = word
        while text_width(rest, size) > width:
            head, rest = _head(rest, size, width)
            if not head:  # not even one character fits: give it a line of its own
                head, rest = rest[0], rest[1:]
            lines.append(head)
        current = rest
    if current:
        lines.append(current)
    return lines or [""]


# -- layers ----------------------------------------------------------------------------------

Link = tuple[str, str, str | None, str]


def _upward(definition: WorkflowDefinition, links: list[Link]) -> tuple[set[int], set[str]]:
    """(indexes of the links that close a loop, states reachable from the start).

    A depth-first search from the start, then from each state it did not reach (in definition
    order): an edge to a state still on the search's stack closes a loop.
    """
    following: dict[str, list[tuple[int, str]]] = {name: [] for name in definition.states}
    for index, (source, target, _, _) in enumerate(links):
        following[source].append((index, target))
    roots = [definition.start_node] if definition.start_node in definition.states else []
    roots += [name for name in definition.states if name != definition.start_node]
    status: dict[str, int] = {}  # 1 on the stack, 2 done
    loops: set[int] = set()
    reached: set[str] = set()
    for number, root in enumerate(roots):
        if root in status:
            continue
        status[root] = 1
        stack = [(root, iter(following[root]))]
        while stack:
            node, pending = stack[-1]
            for index, target in pending:
                if status.get(target) == 1:
                    loops.add(index)
                elif target not in status:
                    status[target] = 1
                    stack.append((target, iter(following[target])))
                    break
            else:
                status[node] = 2
                stack.pop()
        if number == 0 and roots[0] == definition.start_node:
            reached = {name for name in status}
    return loops, reached


def _layers(definition: WorkflowDefinition, links: list[Link]) -> dict[str, int]:
    """Layer of each state by longest path: below every state with a (non-loop) edge into it.

    States the start does not reach come in layers of their own below the others.
    """
    loops, reached = _upward(definition, links)
    parents: dict[str, list[str]] = {name: [] for name in definition.states}
    for index, (source, target, _, _) in enumerate(links):
        if index not in loops and source != target:
            parents[target].append(source)
    layer: dict[str, int] = {}

    def place(group: list[str], base: int) -> None:
        members = set(group)
        remaining = {name: sum(1 for p in parents[name] if p in members) for name in group}
        ready = [name for name in group if remaining[name] == 0]
        children: dict[str, list[str]] = {name: [] for name in group}
        for name in group:
            for parent in parents[name]:
                if parent in members:
                    children[parent].append(name)
        while ready:  # Kahn's order: every parent is placed before its children
            name = ready.pop()
            layer[name] = max((layer[p] + 1 for p in parents[name] if p in members), default=base)
            for child in children[name]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)

    place([name for name in definition.states if name in reached], 0)
    base = max(layer.values(), default=-1) + 1
    place([name for name in definition.states if name not in reached], base)
    return layer


def _order(rows: list[list[str]], ups: dict[str, list[str]], downs: dict[str, list[str]]) -> None:
    """Reorder each row in place by the mean position of its neighbours (fewer crossings), a few sweeps."""

    def sweep(sequence: list[int], neighbours: dict[str, list[str]]) -> None:
        position = {name: slot for row in rows for slot, name in enumerate(row)}
        for index in sequence:
            row = rows[index]
            keys = {
                name: fmean(position[n] for n in neighbours[name]) if neighbours[name] else float(slot)
                for slot, name in enumerate(row)
            }
            row.sort(key=lambda name: keys[name])
            position.update({name: slot for slot, name in enumerate(row)})

    for _ in range(2):
        sweep(list(range(1, len(rows))), ups)
        sweep(list(range(len(rows) - 2, -1, -1)), downs)
    sweep(list(range(1, len(rows))), ups)


# -- layout ----------------------------------------------------------------------------------


def _box_width(name: str, subtitle: str) -> float:
    wanted = max(text_width(name, NAME_SIZE), text_width(subtitle, TEXT_SIZE)) + 2 * PAD_X
    return float(min(max(BOX_W, math.ceil(wanted)), MAX_BOX_W))


def _spread(count: int, index: int, left: float, width: float) -> float:
    return left + width * (index + 1) / (count + 1)


def layout(definition: WorkflowDefinition, nodes: Nodes) -> Layout:
    """Positions of every state and edge, in SVG units; TooLargeToDraw past the drawing limits."""
    check_drawable(definition)
    links = _graph_edges(definition, nodes)
    if len(links) > MAX_DRAWN_EDGES:
        raise TooLargeToDraw(
            f"{len(links)} edges: svg and png draw at most {MAX_DRAWN_EDGES}; use format=mermaid for larger graphs"
        )
    detached = _detached(definition, nodes)
    layer = _layers(definition, links)
    subtitles = {
        name: _subtitle(definition, name, nodes) + (" · disconnected" if name in detached else "")
        for name in definition.states
    }
    width_of = {name: _box_width(name, subtitles[name]) for name in definition.states}

    # Rows of states plus one slot per layer an edge passes through without stopping.
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for name in definition.states:
        rows[layer[name]].append(name)
    ups: dict[str, list[str]] = {name: [] for name in definition.states}
    downs: dict[str, list[str]] = {name: [] for name in definition.states}
    chains: dict[int, list[str]] = {}
    for index, (source, target, _, _) in enumerate(links):
        if layer[target] <= layer[source]:
            continue
        chain = [source]
        for depth in range(layer[source] + 1, layer[target]):
            slot = f"\0{index}:{depth}"
            rows[depth].append(slot)
            width_of[slot] = DUMMY_W
            ups[slot], downs[slot] = [], []
            chain.append(slot)
        chain.append(target)
        for upper, lower in itertools.pairwise(chain):
            downs[upper].append(lower)
            ups[lower].append(upper)
        chains[index] = chain
    _order(rows, ups, downs)

    row_widths = [sum(width_of[n] for n in row) + GAP_X * max(len(row) - 1, 0) for row in rows]
    graph_width = max(row_widths, default=BOX_W)
    where: dict[str, Point] = {}
    for depth, row in enumerate(rows):
        x = MARGIN + (graph_width - row_widths[depth]) / 2
        for name in row:
            where[name] = (x, TOP + depth * (BOX_H + GAP_Y))
            x += width_of[name] + GAP_X

    # Where each downward edge leaves its source and enters its target: spread along the side,
    # in the order of where the edges go, so edges of one state do not cross each other.
    def centre(name: str) -> float:
        return where[name][0] + width_of[name] / 2

    leaving: dict[str, list[int]] = {}
    entering: dict[str, list[int]] = {}
    for index, chain in chains.items():
        leaving.setdefault(chain[0], []).append(index)
        entering.setdefault(chain[-1], []).append(index)
    exit_x: dict[int, float] = {}
    entry_x: dict[int, float] = {}
    for name, indexes in leaving.items():
        indexes.sort(key=lambda i: centre(chains[i][1]))
        for position, index in enumerate(indexes):
            exit_x[index] = _spread(len(indexes), position, where[name][0], width_of[name])
    for name, indexes in entering.items():
        indexes.sort(key=lambda i: centre(chains[i][-2]))
        for position, index in enumerate(indexes):
            entry_x[index] = _spread(len(indexes), position, where[name][0], width_of[name])

    loops = sum(1 for source, target, _, _ in links if layer[target] < layer[source])
    lane_x = MARGIN + graph_width + GAP_X / 2
    notes: list[str] = []
    drawn: list[Edge] = []
    lanes = 0
    fans: dict[str, int] = {}
    for index, (source, target, label, kind) in enumerate(links):
        fan = fans.get(source, 0)
        fans[source] = fan + 1
        lines: tuple[str, ...] = ()
        if label:
            wrapped = wrap(label, TEXT_SIZE, LABEL_W)
            if len(wrapped) > LABEL_LINES:
                notes.append(f"[{len(notes) + 1}] {source} -> {target}: {label}")
                wrapped = [
                    _fit(label, TEXT_SIZE, LABEL_W - text_width(f" [{len(notes)}]", TEXT_SIZE)) + f" [{len(notes)}]"
                ]
            lines = tuple(wrapped)
        (x1, y1), (x2, y2) = where[source], where[target]
        if index in chains:
            chain = chains[index]
            points: list[Point] = [(exit_x[index], y1 + BOX_H)]
            for slot in chain[1:-1]:
                sx, sy = where[slot]
                points += [(sx + DUMMY_W / 2, sy), (sx + DUMMY_W / 2, sy + BOX_H)]
            points.append((entry_x[index], y2))
            (ax, ay), (bx, by) = points[0], points[1]
            share = 0.3 + 0.35 * (fan % 2)
            label_y = ay + GAP_Y * share
            label_x = ax + (bx - ax) * (label_y - ay) / (by - ay)
            drawn.append(Edge(source, target, label, kind, tuple(points), (label_x, label_y), lines))
            continue
        gap = GAP_Y / 3
        if y2 == y1:  # a state's edge to itself (or within a row): dip into the gap below
            out, into = (x1 + width_of[source] * 0.6, y1 + BOX_H), (x2 + width_of[target] * 0.4, y2 + BOX_H)
            below = y1 + BOX_H + gap
            points = [out, (out[0], below), (into[0], below), into]
            drawn.append(Edge(source, target, label, kind, tuple(points), ((out[0] + into[0]) / 2, below), lines))
            continue
        # A loop: up a lane of its own right of every box, through the gaps between rows.
        lane = lane_x + LANE * lanes
        lanes += 1
        out, into = (x1 + width_of[source] * 0.75, y1), (x2 + width_of[target] * 0.75, y2 + BOX_H)
        # Close to the boxes, clear of the labels in the middle of the gaps.
        above, below = y1 - LOOP_GAP, y2 + BOX_H + LOOP_GAP
        points = [out, (out[0], above), (lane, above), (lane, below), (into[0], below), into]
        drawn.append(Edge(source, target, label, kind, tuple(points), (lane, (above + below) / 2), lines))

    title = f"{definition.id} {definition.version or ''}".strip()
    width = 2 * MARGIN + graph_width + (GAP_X + LANE * loops if loops else 0)
    width = max(width, 2 * MARGIN + text_width(title, NAME_SIZE))
    height: float = TOP + MARGIN + max(len(rows), 1) * (BOX_H + GAP_Y) - GAP_Y
    legend: list[str] = []
    legend_y = height
    if notes:
        width = max(width, MIN_LEGEND_W + 2 * MARGIN)
        legend = ["Branch rules too long to label their edge:"]
        for note in notes:
            legend += wrap(note, TEXT_SIZE, width - 2 * MARGIN)
        height += LINE * len(legend) + MARGIN / 2

    boxes = []
    for name in definition.states:
        x, y = where[name]
        node = nodes.get(name)
        kind = node_type(node) if node is not None else "other"
        if name in detached:
            fill = FILLS["disconnected"]
        elif name == definition.start_node:
            fill = FILLS["start"]
        else:
            fill = FILLS.get(kind, FILLS["other"])
        boxes.append(
            Box(
                name=name,
                x=x,
                y=y,
                w=width_of[name],
                subtitle=subtitles[name],
                fill=fill,
                start=name == definition.start_node,
                terminal=_is_terminal(definition, name, nodes),
                detached=name in detached,
                failure_handler=name == definition.default_failure_node,
            )
        )
    return Layout(width, height, title, tuple(boxes), tuple(drawn), tuple(legend), legend_y)


def svg(definition: WorkflowDefinition, nodes: Nodes) -> str:
    """The SVG of the layout, its font embedded (so it looks the same in a browser as in the PNG)."""
    return _svg(layout(definition, nodes))


def _svg(plan: Layout, *, embed_font: bool = True) -> str:
    """The SVG; `embed_font` False leaves out the @font-face (resvg is handed the file, and parsing it costs time)."""
    width, height = math.ceil(plan.width), math.ceil(plan.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT_FAMILY}, sans-serif" font-size="{TEXT_SIZE}">',
        f"<title>{escape(plan.title)}</title>",
        f"<style>{_font_face()}</style>" if embed_font else "",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{EDGE}"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{MARGIN}" y="{MARGIN}" font-size="{NAME_SIZE}" fill="{INK}">{escape(plan.title)}</text>',
    ]
    for edge in plan.edges:
        path = "M" + "L".join(f"{x:.1f},{y:.1f}" for x, y in edge.points)
        dash = ' stroke-dasharray="5 3"' if edge.kind == "branch" else ""
        out.append(f'<path d="{path}" fill="none" stroke="{EDGE}"{dash} marker-end="url(#arrow)"/>')
    for edge in plan.edges:  # labels over every line
        x, y = edge.label_at
        top = y - LINE * (len(edge.label_lines) - 1) / 2
        for number, line in enumerate(edge.label_lines):
            out.append(
                f'<text x="{x:.1f}" y="{top + number * LINE + 4:.1f}" text-anchor="middle" fill="{EDGE}" '
                f'stroke="white" stroke-width="4" paint-order="stroke">{escape(line)}</text>'
            )
    for box in plan.boxes:
        dash = ' stroke-dasharray="4 3"' if box.failure_handler or box.detached else ""
        stroke = f' stroke-width="{3 if box.start else 1}"'
        out.append(
            f'<g class="state{" start" if box.start else ""}{" terminal" if box.terminal else ""}'
            f'{" disconnected" if box.detached else ""}">'
        )
        out.append(
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.0f}" height="{BOX_H}" rx="6" fill="{box.fill}" '
            f'stroke="{BORDER}"{stroke}{dash}/>'
        )
        if box.terminal:
            out.append(
                f'<rect x="{box.x + 4:.1f}" y="{box.y + 4:.1f}" width="{box.w - 8:.0f}" height="{BOX_H - 8}" rx="4" '
                f'fill="none" stroke="{BORDER}"/>'
            )
        if box.start:
            out.append(f'<text x="{box.x:.1f}" y="{box.y - 5:.1f}" fill="#1d4ed8">start</text>')
        colour = MUTED if box.detached else INK
        inner = box.w - 2 * PAD_X
        out += [
            f'<text x="{box.x + box.w / 2:.1f}" y="{box.y + 21:.1f}" text-anchor="middle" font-size="{NAME_SIZE}" '
            f'fill="{colour}">{escape(_fit(box.name, NAME_SIZE, inner))}</text>',
            f'<text x="{box.x + box.w / 2:.1f}" y="{box.y + 37:.1f}" text-anchor="middle" fill="{EDGE}">'
            f"{escape(_fit(box.subtitle, TEXT_SIZE, inner))}</text></g>",
        ]
    for number, line in enumerate(plan.legend):
        out.append(
            f'<text class="legend" x="{MARGIN}" y="{plan.legend_y + number * LINE:.1f}" fill="{INK}">'
            f"{escape(line)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _pixels(plan: Layout, scale: int) -> int:
    return math.ceil(plan.width * scale) * math.ceil(plan.height * scale)


def png(definition: WorkflowDefinition, nodes: Nodes) -> bytes:
    """The SVG rendered by resvg (with the same font) into a PNG: one drawing in two formats."""
    plan = layout(definition, nodes)
    # Twice the SVG's scale when that fits the pixel budget, else the SVG's own scale; else refused.
    scale = next((scale for scale in (PNG_SCALE, 1) if _pixels(plan, scale) <= MAX_PNG_PIXELS), 0)
    if not scale:
        raise TooLargeToDraw(
            f"the drawing would be {_pixels(plan, 1)} pixels: png draws at most {MAX_PNG_PIXELS}; "
            "use svg or format=mermaid"
        )
    return bytes(
        resvg_py.svg_to_bytes(
            svg_string=_svg(plan, embed_font=False),
            zoom=scale,
            background="white",
            skip_system_fonts=True,
            font_files=[str(FONT_PATH)],
            font_family=FONT_FAMILY,
            sans_serif_family=FONT_FAMILY,
        )
    )

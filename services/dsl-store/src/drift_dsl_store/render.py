"""Drawings of a workflow graph for `treeView`: a Mermaid flowchart, a self-made SVG and a PNG (Pillow).

SVG and PNG share one layout (breadth-first rows from the start state). Every
state shows its instance name and node type; edges are drawn for `nextNode`,
each branch choice (labelled with its rule), the default and each parallel
branch. The start state is blue with a thick border and a `start` tag,
terminal states (SUCCESS, FAILURE or `end: true`) have a double border, and
disconnected states (no edge reaches them) are grey and dashed.
"""

from __future__ import annotations

import io
import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from xml.sax.saxutils import escape

from PIL import Image, ImageDraw, ImageFont

from drift_schema.expressions import expression_body, is_expression
from drift_schema.graph import disconnected, edges
from drift_schema.nodes import BranchNode, FailureNode, NodeBase, SuccessNode, node_type
from drift_schema.workflow import WorkflowDefinition

Nodes = Mapping[str, NodeBase | None]
Point = tuple[float, float]

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN, TOP, LANE = 224, 48, 40, 72, 24, 40, 14
MAX_LABEL = 28
FILLS = {
    "start": "#dbeafe",
    "SUCCESS": "#dcfce7",
    "FAILURE": "#fee2e2",
    "disconnected": "#e5e7eb",
    "other": "#f8fafc",
}
INK, EDGE, BORDER, MUTED = "#0f172a", "#475569", "#334155", "#6b7280"
# PNG is drawn at twice the SVG's scale so that text stays crisp.
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
    """One state as drawn."""

    name: str
    x: float
    y: float
    subtitle: str
    fill: str
    start: bool
    terminal: bool
    detached: bool
    failure_handler: bool


@dataclass(frozen=True, slots=True)
class Edge:
    """One edge as drawn: a polyline from the source to the target, its label centred at `label_at`."""

    source: str
    target: str
    label: str | None
    kind: str
    points: tuple[Point, ...]
    label_at: Point


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    title: str
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]


def _short(text: str, limit: int = MAX_LABEL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rule_text(rule: object) -> str:
    if is_expression(rule):
        return expression_body(str(rule)).strip()
    return str(rule).lower() if isinstance(rule, bool) else str(rule)


def _edge_label(relative: str, node: NodeBase | None) -> tuple[str | None, str]:
    """(label, kind) of an edge: a choice shows its rule, plain `nextNode` edges stay unlabelled."""
    parts = relative.strip("/").split("/")
    if parts[0] == "choices":
        index = int(parts[1])
        rule = node.choices[index].rule if isinstance(node, BranchNode) else ""
        return _short(f"{index + 1}: {_rule_text(rule)}"), "choice"
    if parts[0] == "branches":
        return f"branch {int(parts[1]) + 1}", "branch"
    if parts[0] == "defaultNode":
        return "default", "default"
    if parts[0] == "itemNode":
        return "each item", "branch"
    return None, "next"


def _subtitle(definition: WorkflowDefinition, name: str, nodes: Nodes) -> str:
    state = definition.states[name]
    node = nodes.get(name)
    kind = node_type(node) if node is not None else "?"
    if state.node_definition is not None:
        return f"{kind} (inline)"
    return f"{kind} · {state.resource_id}@{state.resource_version}"


def _is_terminal(definition: WorkflowDefinition, name: str, nodes: Nodes) -> bool:
    return definition.states[name].end or isinstance(nodes.get(name), SuccessNode | FailureNode)


def _graph_edges(definition: WorkflowDefinition, nodes: Nodes) -> list[tuple[str, str, str | None, str]]:
    """(source, target, label, kind) of every edge whose target exists."""
    found = []
    for name, state in definition.states.items():
        node = nodes.get(name)
        for relative, target in edges(state, node):
            if target in definition.states:
                label, kind = _edge_label(relative, node)
                found.append((name, target, label, kind))
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


def _layers(definition: WorkflowDefinition, links: list[tuple[str, str, str | None, str]]) -> list[list[str]]:
    """Breadth-first rows from the start node; states it does not reach get rows of their own below."""
    following: dict[str, list[str]] = {name: [] for name in definition.states}
    for source, target, _, _ in links:
        following[source].append(target)
    depth: dict[str, int] = {}
    roots = [definition.start_node] if definition.start_node in definition.states else []
    roots += [name for name in definition.states if name not in roots]
    for root in roots:
        if root is None or root in depth:
            continue
        depth[root] = max(depth.values(), default=-1) + 1 if depth else 0
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for target in following[current]:
                if target not in depth:
                    depth[target] = depth[current] + 1
                    queue.append(target)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in definition.states:
        rows[depth[name]].append(name)
    return [row for row in rows if row]


def _route(source: Point, target: Point, lane: float, fan: int) -> tuple[tuple[Point, ...], Point]:
    """(polyline, label position) of an edge between boxes whose top-left corners are given.

    Downward edges go straight from the bottom of the source to the top of the
    target. Edges within a row dip into the gap below it; upward edges (loops)
    climb in their own lane right of every box. Both run through the gaps
    between rows, never across a box. `fan` staggers the labels of edges
    leaving one state, so that they do not overlap.
    """
    (x1, y1), (x2, y2) = source, target
    gap = GAP_Y / 3
    if y2 > y1:
        start, end = (x1 + BOX_W / 2, y1 + BOX_H), (x2 + BOX_W / 2, y2)
        share = 0.4 + 0.3 * (fan % 2)
        return (start, end), (start[0] + (end[0] - start[0]) * share, start[1] + (end[1] - start[1]) * share)
    if y2 == y1:
        out, into = (x1 + BOX_W * 0.6, y1 + BOX_H), (x2 + BOX_W * 0.4, y2 + BOX_H)
        below = y1 + BOX_H + gap
        return (out, (out[0], below), (into[0], below), into), ((out[0] + into[0]) / 2, below)
    out, into = (x1 + BOX_W * 0.75, y1), (x2 + BOX_W * 0.75, y2 + BOX_H)
    above, below = y1 - gap, y2 + BOX_H + gap
    points = (out, (out[0], above), (lane, above), (lane, below), (into[0], below), into)
    return points, (lane, (above + below) / 2)


def layout(definition: WorkflowDefinition, nodes: Nodes) -> Layout:
    """Positions of every state and edge, in SVG units; TooLargeToDraw past the drawing limits."""
    check_drawable(definition)
    links = _graph_edges(definition, nodes)
    if len(links) > MAX_DRAWN_EDGES:
        raise TooLargeToDraw(
            f"{len(links)} edges: svg and png draw at most {MAX_DRAWN_EDGES}; use format=mermaid for larger graphs"
        )
    rows = _layers(definition, links)
    detached = _detached(definition, nodes)
    row_of = {name: index for index, row in enumerate(rows) for name in row}
    loops = sum(1 for source, target, _, _ in links if row_of[target] < row_of[source])
    widest = max((len(row) for row in rows), default=1)
    boxes_width = widest * BOX_W + (widest - 1) * GAP_X
    width = 2 * MARGIN + boxes_width + (GAP_X + LANE * loops if loops else 0)
    height = TOP + MARGIN + max(len(rows), 1) * (BOX_H + GAP_Y) - GAP_Y
    where: dict[str, Point] = {}
    for index, row in enumerate(rows):
        left = MARGIN + (boxes_width - (len(row) * BOX_W + (len(row) - 1) * GAP_X)) / 2
        for slot, name in enumerate(row):
            where[name] = (left + slot * (BOX_W + GAP_X), TOP + index * (BOX_H + GAP_Y))

    drawn: list[Edge] = []
    lanes = 0
    fans: dict[str, int] = {}
    for source, target, label, kind in links:
        lane = MARGIN + boxes_width + GAP_X / 2 + LANE * lanes
        if row_of[target] < row_of[source]:
            lanes += 1
        fan = fans.get(source, 0)
        fans[source] = fan + 1
        points, label_at = _route(where[source], where[target], lane, fan)
        drawn.append(Edge(source, target, label, kind, points, label_at))

    boxes = []
    for name, (x, y) in where.items():
        node = nodes.get(name)
        kind = node_type(node) if node is not None else "other"
        if name in detached:
            fill = FILLS["disconnected"]
        elif name == definition.start_node:
            fill = FILLS["start"]
        else:
            fill = FILLS.get(kind, FILLS["other"])
        subtitle = _subtitle(definition, name, nodes) + (" · disconnected" if name in detached else "")
        boxes.append(
            Box(
                name=name,
                x=x,
                y=y,
                subtitle=subtitle,
                fill=fill,
                start=name == definition.start_node,
                terminal=_is_terminal(definition, name, nodes),
                detached=name in detached,
                failure_handler=name == definition.default_failure_node,
            )
        )
    title = f"{definition.id} {definition.version or ''}".strip()
    return Layout(width, height, title, tuple(boxes), tuple(drawn))


def svg(definition: WorkflowDefinition, nodes: Nodes) -> str:
    """A compact, dependency-free SVG of the layout."""
    plan = layout(definition, nodes)
    width, height = plan.width, plan.height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(plan.title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="{EDGE}"/></marker></defs>',
        f'<text x="{MARGIN}" y="{MARGIN}" font-weight="bold" fill="{INK}">{escape(plan.title)}</text>',
    ]
    for edge in plan.edges:
        path = "M" + "L".join(f"{x:.0f},{y:.0f}" for x, y in edge.points)
        dash = ' stroke-dasharray="5 3"' if edge.kind == "branch" else ""
        out.append(f'<path d="{path}" fill="none" stroke="{EDGE}"{dash} marker-end="url(#arrow)"/>')
        if edge.label:
            x, y = edge.label_at
            out.append(
                f'<text x="{x:.0f}" y="{y + 4:.0f}" text-anchor="middle" fill="{EDGE}" stroke="white" '
                f'stroke-width="4" paint-order="stroke">{escape(edge.label)}</text>'
            )
    for box in plan.boxes:
        dash = ' stroke-dasharray="4 3"' if box.failure_handler or box.detached else ""
        stroke = f' stroke-width="{3 if box.start else 1}"'
        out.append(
            f'<g class="state{" start" if box.start else ""}{" terminal" if box.terminal else ""}'
            f'{" disconnected" if box.detached else ""}">'
        )
        out.append(
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{box.fill}" '
            f'stroke="{BORDER}"{stroke}{dash}/>'
        )
        if box.terminal:
            out.append(
                f'<rect x="{box.x + 4:.0f}" y="{box.y + 4:.0f}" width="{BOX_W - 8}" height="{BOX_H - 8}" rx="4" '
                f'fill="none" stroke="{BORDER}"/>'
            )
        if box.start:
            out.append(f'<text x="{box.x:.0f}" y="{box.y - 5:.0f}" fill="#1d4ed8" font-weight="bold">start</text>')
        colour = MUTED if box.detached else INK
        out += [
            f'<text x="{box.x + BOX_W / 2:.0f}" y="{box.y + 20:.0f}" text-anchor="middle" font-weight="bold" '
            f'fill="{colour}">{escape(_short(box.name, 28))}</text>',
            f'<text x="{box.x + BOX_W / 2:.0f}" y="{box.y + 36:.0f}" text-anchor="middle" fill="{EDGE}">'
            f"{escape(_short(box.subtitle, 36))}</text></g>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font (no system fonts needed); bold is faked by a stroke when drawing."""
    return ImageFont.load_default(size=size)


def _dashed(draw: ImageDraw.ImageDraw, points: list[Point], fill: str, width: int, dash: float = 8) -> None:
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        length = math.hypot(x2 - x1, y2 - y1)
        steps = max(int(length // dash), 1)
        for step in range(0, steps, 2):
            a, b = step / steps, min((step + 1) / steps, 1.0)
            draw.line([(x1 + (x2 - x1) * a, y1 + (y2 - y1) * a), (x1 + (x2 - x1) * b, y1 + (y2 - y1) * b)], fill, width)


def _rect_outline(x: float, y: float, w: float, h: float) -> list[Point]:
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]


def _pixels(plan: Layout, scale: int) -> int:
    return math.ceil(plan.width * scale) * math.ceil(plan.height * scale)


def png(definition: WorkflowDefinition, nodes: Nodes) -> bytes:
    """The same layout as the SVG, drawn with Pillow into a PNG."""
    plan = layout(definition, nodes)
    # Twice the SVG's scale when that fits the pixel budget, else the SVG's own scale; else refused.
    s = next((scale for scale in (PNG_SCALE, 1) if _pixels(plan, scale) <= MAX_PNG_PIXELS), 0)
    if not s:
        raise TooLargeToDraw(
            f"the drawing would be {_pixels(plan, 1)} pixels: png draws at most {MAX_PNG_PIXELS}; "
            "use svg or format=mermaid"
        )
    image = Image.new("RGB", (math.ceil(plan.width * s), math.ceil(plan.height * s)), "white")
    draw = ImageDraw.Draw(image)
    regular, small = _font(12 * s), _font(11 * s)
    draw.text((MARGIN * s, (MARGIN - 12) * s), plan.title, fill=INK, font=regular, stroke_width=1, stroke_fill=INK)

    for edge in plan.edges:
        points = [(x * s, y * s) for x, y in edge.points]
        if edge.kind == "branch":
            _dashed(draw, points, EDGE, s)
        else:
            draw.line(points, fill=EDGE, width=s)
        (ax, ay), (bx, by) = points[-2], points[-1]
        angle = math.atan2(by - ay, bx - ax)
        size = 7 * s
        head = [
            (bx, by),
            (bx - size * math.cos(angle - 0.4), by - size * math.sin(angle - 0.4)),
            (bx - size * math.cos(angle + 0.4), by - size * math.sin(angle + 0.4)),
        ]
        draw.polygon(head, fill=EDGE)
        if edge.label:
            x, y = edge.label_at[0] * s, edge.label_at[1] * s
            left, top, right, bottom = draw.textbbox((x, y), edge.label, font=small, anchor="mm")
            draw.rectangle((left - 3, top - 2, right + 3, bottom + 2), fill="white")
            draw.text((x, y), edge.label, fill=EDGE, font=small, anchor="mm")

    for box in plan.boxes:
        x, y, w, h = box.x * s, box.y * s, BOX_W * s, BOX_H * s
        draw.rounded_rectangle((x, y, x + w, y + h), radius=6 * s, fill=box.fill)
        if box.detached or box.failure_handler:
            _dashed(draw, _rect_outline(x, y, w, h), BORDER, s)
        else:
            draw.rounded_rectangle((x, y, x + w, y + h), radius=6 * s, outline=BORDER, width=3 * s if box.start else s)
        if box.terminal:
            inset = 4 * s
            draw.rounded_rectangle(
                (x + inset, y + inset, x + w - inset, y + h - inset), radius=4 * s, outline=BORDER, width=s
            )
        if box.start:
            draw.text((x, y - 17 * s), "start", fill="#1d4ed8", font=small, stroke_width=1, stroke_fill="#1d4ed8")
        colour = MUTED if box.detached else INK
        draw.text(
            (x + w / 2, y + 15 * s),
            _short(box.name, 28),
            fill=colour,
            font=regular,
            anchor="mm",
            stroke_width=1,
            stroke_fill=colour,
        )
        draw.text((x + w / 2, y + 33 * s), _short(box.subtitle, 36), fill=EDGE, font=small, anchor="mm")

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

"""Drawings of a workflow graph for `treeView`: a Mermaid flowchart and a small self-made SVG."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from xml.sax.saxutils import escape

from drift_schema.graph import edges
from drift_schema.nodes import FailureNode, NodeBase, SuccessNode, node_type
from drift_schema.workflow import WorkflowDefinition

Nodes = Mapping[str, NodeBase | None]

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 44, 30, 56, 24
FILLS = {"start": "#dbeafe", "SUCCESS": "#dcfce7", "FAILURE": "#fee2e2", "other": "#f8fafc"}


def _edge_label(relative: str) -> str | None:
    """`/choices/0/nextNode` -> `choice 1`; plain `nextNode` edges stay unlabelled."""
    parts = relative.strip("/").split("/")
    if parts[0] == "choices":
        return f"choice {int(parts[1]) + 1}"
    if parts[0] == "branches":
        return f"branch {int(parts[1]) + 1}"
    if parts[0] == "defaultNode":
        return "default"
    return None


def _subtitle(definition: WorkflowDefinition, name: str, nodes: Nodes) -> str:
    state = definition.states[name]
    node = nodes.get(name)
    kind = node_type(node) if node is not None else "?"
    if state.node_definition is not None:
        return f"{kind} (inline)"
    return f"{kind} {state.resource_id}@{state.resource_version}"


def _graph_edges(definition: WorkflowDefinition, nodes: Nodes) -> list[tuple[str, str, str | None]]:
    """(source, target, label) of every edge whose target exists."""
    found = []
    for name, state in definition.states.items():
        for relative, target in edges(state, nodes.get(name)):
            if target in definition.states:
                found.append((name, target, _edge_label(relative)))
    return found


def mermaid(definition: WorkflowDefinition, nodes: Nodes) -> str:
    """A Mermaid `flowchart TD`; instance names are quoted labels, so any name is safe."""

    def text(value: str) -> str:
        return value.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")

    ids = {name: f"s{index}" for index, name in enumerate(definition.states)}
    lines = ["flowchart TD"]
    for name in definition.states:
        caption = f"{text(name)}<br/><small>{text(_subtitle(definition, name, nodes))}</small>"
        node = nodes.get(name)
        opening, closing = ("([", "])") if name == definition.start_node else ("[", "]")
        if isinstance(node, SuccessNode | FailureNode) or definition.states[name].end:
            opening, closing = "[[", "]]"
        lines.append(f'    {ids[name]}{opening}"{caption}"{closing}')
    for source, target, label in _graph_edges(definition, nodes):
        arrow = f'-->|"{text(label)}"|' if label else "-->"
        lines.append(f"    {ids[source]} {arrow} {ids[target]}")
    if definition.default_failure_node is not None and definition.default_failure_node in ids:
        failure = ids[definition.default_failure_node]
        lines += ["    classDef failure stroke-dasharray: 4 3", f"    class {failure} failure"]
    return "\n".join(lines) + "\n"


def _layers(definition: WorkflowDefinition, links: list[tuple[str, str, str | None]]) -> list[list[str]]:
    """Breadth-first rows from the start node; states it does not reach get rows of their own below."""
    following: dict[str, list[str]] = {name: [] for name in definition.states}
    for source, target, _ in links:
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


def svg(definition: WorkflowDefinition, nodes: Nodes) -> str:
    """A compact, dependency-free SVG: one row per breadth-first layer, arrows between boxes."""
    links = _graph_edges(definition, nodes)
    rows = _layers(definition, links)
    widest = max((len(row) for row in rows), default=1)
    width = 2 * MARGIN + widest * BOX_W + (widest - 1) * GAP_X
    height = 2 * MARGIN + max(len(rows), 1) * (BOX_H + GAP_Y) - GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for index, row in enumerate(rows):
        left = MARGIN + (width - 2 * MARGIN - (len(row) * BOX_W + (len(row) - 1) * GAP_X)) / 2
        for slot, name in enumerate(row):
            where[name] = (left + slot * (BOX_W + GAP_X), MARGIN + index * (BOX_H + GAP_Y))

    title = f"{definition.id} {definition.version or ''}".strip()
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#475569"/></marker></defs>',
    ]
    for source, target, label in links:
        (x1, y1), (x2, y2) = where[source], where[target]
        if y2 > y1:
            start, end = (x1 + BOX_W / 2, y1 + BOX_H), (x2 + BOX_W / 2, y2)
            path = f"M{start[0]:.0f},{start[1]:.0f}L{end[0]:.0f},{end[1]:.0f}"
            middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        else:
            # Back-edges and same-row edges bend around the right side so they do not cross the boxes.
            start, end = (x1 + BOX_W, y1 + BOX_H / 2), (x2 + BOX_W, y2 + BOX_H / 2)
            bend = max(start[0], end[0]) + GAP_X
            path = (
                f"M{start[0]:.0f},{start[1]:.0f}"
                f"C{bend:.0f},{start[1]:.0f} {bend:.0f},{end[1]:.0f} {end[0]:.0f},{end[1]:.0f}"
            )
            middle = (bend - 4, (start[1] + end[1]) / 2)
        out.append(f'<path d="{path}" fill="none" stroke="#475569" marker-end="url(#arrow)"/>')
        if label:
            out.append(f'<text x="{middle[0] + 4:.0f}" y="{middle[1]:.0f}" fill="#475569">{escape(label)}</text>')
    for name, (x, y) in where.items():
        node = nodes.get(name)
        kind = node_type(node) if node is not None else "other"
        fill = FILLS["start"] if name == definition.start_node else FILLS.get(kind, FILLS["other"])
        dash = ' stroke-dasharray="4 3"' if name == definition.default_failure_node else ""
        out += [
            f'<g><rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="#334155"{dash}/>',
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 18:.0f}" text-anchor="middle" font-weight="bold">'
            f"{escape(name[:28])}</text>",
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 34:.0f}" text-anchor="middle" fill="#475569">'
            f"{escape(_subtitle(definition, name, nodes)[:32])}</text></g>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"

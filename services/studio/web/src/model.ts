// The workflow definition as the dsl-store speaks it (contract 4), and pure operations on it.
import dagre from "@dagrejs/dagre";

export const NODE_TYPES = ["HTTP", "SCRIPT", "BRANCH", "INSTRUCTION", "WAIT", "CHILD", "PARALLEL", "MAP", "SUCCESS", "FAILURE"] as const;
export type NodeType = (typeof NODE_TYPES)[number];

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export interface NodeDefinition {
  id: string;
  type: string;
  name?: string;
  [field: string]: Json | undefined;
}

export interface State {
  resourceId?: string | null;
  resourceVersion?: string;
  parameters?: Record<string, Json>;
  nextNode?: string | null;
  end?: boolean;
  nodeDefinition?: NodeDefinition | null;
}

export interface WorkflowDefinition {
  id: string;
  comment?: string | null;
  version?: string | null;
  startNode?: string | null;
  defaultFailureNode?: string | null;
  postWorkflowCompletionNodes?: string[];
  states: Record<string, State>;
}

export type EdgeKind = "next" | "branch" | "default" | "parallel" | "item" | "failure";

export interface FlowEdge {
  id: string;
  source: string;
  target: string;
  kind: EdgeKind;
  label?: string;
}

/** The node definition a state runs: inline, or the referenced one when known. */
export function nodeOf(state: State, library: Record<string, NodeDefinition>): NodeDefinition | undefined {
  if (state.nodeDefinition) return state.nodeDefinition;
  return state.resourceId ? library[state.resourceId] : undefined;
}

export function typeOf(state: State, library: Record<string, NodeDefinition>): string {
  return nodeOf(state, library)?.type ?? "UNKNOWN";
}

function shortRule(rule: Json | undefined): string {
  const text = typeof rule === "string" ? rule.replace(/^\s*\{%\s*|\s*%\}\s*$/g, "") : JSON.stringify(rule);
  return text.length > 28 ? `${text.slice(0, 27)}…` : text;
}

/** Every edge of the graph, labelled by what makes the run take it. */
export function edgesOf(def: WorkflowDefinition, library: Record<string, NodeDefinition>, withFailure = true): FlowEdge[] {
  const edges: FlowEdge[] = [];
  const states = def.states ?? {};
  const add = (source: string, target: unknown, kind: EdgeKind, label?: string) => {
    if (typeof target !== "string" || !(target in states)) return;
    edges.push({ id: `${kind}:${source}:${target}:${edges.length}`, source, target, kind, label });
  };
  for (const [name, state] of Object.entries(states)) {
    const node = nodeOf(state, library);
    if (state.nextNode) add(name, state.nextNode, "next");
    if (!node) continue;
    if (node.type === "BRANCH") {
      const choices = Array.isArray(node.choices) ? node.choices : [];
      choices.forEach((choice, index) => {
        if (choice && typeof choice === "object" && !Array.isArray(choice)) {
          add(name, choice.nextNode, "branch", `if ${shortRule(choice.rule)}` || `choice ${index + 1}`);
        }
      });
      add(name, node.defaultNode, "default", "otherwise");
    } else if (node.type === "PARALLEL" && Array.isArray(node.branches)) {
      node.branches.forEach((branch, index) => add(name, branch, "parallel", `branch ${index + 1}`));
    } else if (node.type === "MAP") {
      add(name, node.itemNode, "item", "each item");
    }
  }
  const failure = def.defaultFailureNode;
  if (withFailure && failure && failure in states) {
    const reached = new Set(edges.map((e) => e.target));
    for (const [name, state] of Object.entries(states)) {
      const type = typeOf(state, library);
      if (name === failure || type === "SUCCESS" || type === "FAILURE" || (state.end && !state.nextNode)) continue;
      if (!reached.has(name) && name !== def.startNode) continue; // disconnected states never run in the flow
      if (edges.some((e) => e.source === name && e.target === failure)) continue; // already drawn, with its own label
      edges.push({ id: `failure:${name}:${failure}`, source: name, target: failure, kind: "failure", label: "on failure" });
    }
  }
  return edges;
}

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 58;

/**
 * The edges that shape the layout. Failure edges never do. In a big graph only the first edge to
 * reach each state (breadth-first from the start) does: an edge that skips many ranks makes dagre
 * add a placeholder on every rank it crosses, and a 200-state chain with a few such exits took
 * seconds to lay out. The other edges are still drawn; they just do not move the nodes.
 */
export function layoutEdges(def: WorkflowDefinition, edges: FlowEdge[], treeOnly: boolean): FlowEdge[] {
  const flow = edges.filter((e) => e.kind !== "failure" && e.source !== e.target);
  if (!treeOnly) return flow;
  const out = new Map<string, FlowEdge[]>();
  for (const edge of flow) out.set(edge.source, [...(out.get(edge.source) ?? []), edge]);
  const seen = new Set<string>();
  const tree: FlowEdge[] = [];
  const roots = [def.startNode, ...Object.keys(def.states ?? {})].filter((n): n is string => !!n && n in (def.states ?? {}));
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    const queue = [root];
    while (queue.length) {
      const name = queue.shift() as string;
      for (const edge of out.get(name) ?? []) {
        if (seen.has(edge.target)) continue;
        seen.add(edge.target);
        tree.push(edge);
        queue.push(edge.target);
      }
    }
  }
  return tree;
}

/** Automatic top-to-bottom layout (dagre); failure edges are drawn but do not shape the layout. */
export function layout(def: WorkflowDefinition, edges: FlowEdge[]): Record<string, { x: number; y: number }> {
  const graph = new dagre.graphlib.Graph();
  const size = Object.keys(def.states ?? {}).length;
  // network-simplex (dagre's default) balances ranks best but grows fast; big graphs take the
  // linear longest-path ranking so that a 200-state definition still opens at once.
  const ranker = size > 60 ? "longest-path" : "network-simplex";
  graph.setGraph({ rankdir: "TB", nodesep: 40, ranksep: 70, marginx: 20, marginy: 20, ranker });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const name of Object.keys(def.states ?? {})) graph.setNode(name, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of layoutEdges(def, edges, size > 60)) graph.setEdge(edge.source, edge.target);
  dagre.layout(graph);
  const positions: Record<string, { x: number; y: number }> = {};
  for (const name of Object.keys(def.states ?? {})) {
    const node = graph.node(name);
    positions[name] = { x: (node?.x ?? 0) - NODE_WIDTH / 2, y: (node?.y ?? 0) - NODE_HEIGHT / 2 };
  }
  return positions;
}

/** States no edge reaches (other than the start node): they only run on demand (contract 5.5). */
export function disconnected(def: WorkflowDefinition, edges: FlowEdge[]): string[] {
  const reached = new Set(edges.filter((e) => e.kind !== "failure").map((e) => e.target));
  if (def.startNode) reached.add(def.startNode);
  if (def.defaultFailureNode) reached.add(def.defaultFailureNode);
  (def.postWorkflowCompletionNodes ?? []).forEach((n) => reached.add(n));
  return Object.keys(def.states ?? {}).filter((name) => !reached.has(name));
}

/** Where a problem's JSON pointer lands: a state (and a field inside it) or a top-level field. */
export function pointerTarget(pointer: string): { instance?: string; field?: string } {
  const parts = pointer
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (parts[0] === "states" && parts.length >= 2) {
    const rest = parts.slice(2);
    if (rest[0] === "nodeDefinition") rest.shift();
    return { instance: parts[1], field: rest.join("/") || undefined };
  }
  return { field: parts.join("/") || undefined };
}

/** The definition as stored: referenced states without the node definitions enrichment added. */
export function unenriched(def: WorkflowDefinition): WorkflowDefinition {
  const states: Record<string, State> = {};
  for (const [name, state] of Object.entries(def.states ?? {})) {
    if (state.resourceId && state.nodeDefinition) {
      const copy = { ...state };
      delete copy.nodeDefinition;
      states[name] = copy;
    } else states[name] = state;
  }
  return { ...def, states };
}

// -- editing: every operation returns a new definition ------------------------------------------

export const INSTANCE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function emptyNode(type: NodeType | string, id: string): NodeDefinition {
  switch (type) {
    case "HTTP":
      return { id, type, request: { method: "GET", url: "https://example.com" } };
    case "SCRIPT":
      return { id, type, output: "{% {} %}" };
    case "BRANCH":
      return { id, type, choices: [] };
    case "INSTRUCTION":
      return { id, type, view: { layoutId: id, inputOptions: [] } };
    case "WAIT":
      return { id, type, config: { waitType: "SCHEDULER_WAIT", duration: 60 } };
    case "CHILD":
      return { id, type, childWorkflowId: "", executionMode: "SYNC" };
    case "PARALLEL":
      return { id, type, branches: [] };
    case "MAP":
      return { id, type, items: "{% [] %}", itemNode: "" };
    case "SUCCESS":
      return { id, type };
    case "FAILURE":
      return { id, type, error: "failed" };
    default:
      return { id, type };
  }
}

export function addState(def: WorkflowDefinition, name: string, state: State): WorkflowDefinition {
  if (!INSTANCE_NAME.test(name)) throw new Error("an instance name is 1 to 128 of A-Z a-z 0-9 _ . -");
  if (name in (def.states ?? {})) throw new Error(`there is already an instance named ${name}`);
  const next: WorkflowDefinition = { ...def, states: { ...def.states, [name]: state } };
  if (!next.startNode) next.startNode = name;
  return next;
}

export function updateState(def: WorkflowDefinition, name: string, state: State): WorkflowDefinition {
  return { ...def, states: { ...def.states, [name]: state } };
}

/** Removes a state and every reference to it. */
export function removeState(def: WorkflowDefinition, name: string): WorkflowDefinition {
  const states: Record<string, State> = {};
  for (const [other, state] of Object.entries(def.states)) {
    if (other === name) continue;
    states[other] = state.nextNode === name ? { ...state, nextNode: null } : state;
  }
  let next: WorkflowDefinition = { ...def, states };
  for (const [other] of Object.entries(states)) next = disconnectInNode(next, other, name);
  if (next.startNode === name) next.startNode = null;
  if (next.defaultFailureNode === name) next.defaultFailureNode = null;
  next.postWorkflowCompletionNodes = (next.postWorkflowCompletionNodes ?? []).filter((n) => n !== name);
  return next;
}

function disconnectInNode(def: WorkflowDefinition, source: string, target: string): WorkflowDefinition {
  const state = def.states[source];
  const node = state?.nodeDefinition;
  if (!node) return def;
  let changed: NodeDefinition = node;
  if (node.type === "BRANCH") {
    const choices = (Array.isArray(node.choices) ? node.choices : []).filter(
      (c) => !(c && typeof c === "object" && !Array.isArray(c) && c.nextNode === target),
    );
    changed = { ...node, choices, ...(node.defaultNode === target ? { defaultNode: null } : {}) };
  } else if (node.type === "PARALLEL" && Array.isArray(node.branches)) {
    changed = { ...node, branches: node.branches.filter((b) => b !== target) };
  } else if (node.type === "MAP" && node.itemNode === target) {
    changed = { ...node, itemNode: "" };
  }
  return changed === node ? def : updateState(def, source, { ...state, nodeDefinition: changed });
}

/** Connects `source` to `target` the way its node type connects: next node, branch default, branch, item. */
export function connect(def: WorkflowDefinition, source: string, target: string, library: Record<string, NodeDefinition>): WorkflowDefinition {
  const state = def.states[source];
  if (!state || !(target in def.states)) return def;
  const node = state.nodeDefinition;
  const type = typeOf(state, library);
  if (node && type === "BRANCH") {
    const choices = Array.isArray(node.choices) ? node.choices : [];
    if (!node.defaultNode) return updateState(def, source, { ...state, nodeDefinition: { ...node, defaultNode: target } });
    return updateState(def, source, {
      ...state,
      nodeDefinition: { ...node, choices: [...choices, { rule: "{% true %}", nextNode: target }] },
    });
  }
  if (node && type === "PARALLEL" && state.nextNode) {
    const branches = Array.isArray(node.branches) ? node.branches : [];
    return updateState(def, source, { ...state, nodeDefinition: { ...node, branches: [...branches, target] } });
  }
  return updateState(def, source, { ...state, nextNode: target, end: false });
}

export function removeEdge(def: WorkflowDefinition, edge: FlowEdge): WorkflowDefinition {
  if (edge.kind === "failure") return { ...def, defaultFailureNode: null };
  const state = def.states[edge.source];
  if (!state) return def;
  if (edge.kind === "next") return updateState(def, edge.source, { ...state, nextNode: null });
  return disconnectInNode(def, edge.source, edge.target);
}

// -- runs ----------------------------------------------------------------------------------------

export interface TimelineEntry {
  instanceName: string;
  nodeType: string;
  status: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  durationMs?: number | null;
  attempt?: number;
  error?: string | null;
}

export interface NodeRunState {
  status: string;
  visits: number;
  lastError?: string | null;
  /** A MAP's item progress, or an item branch state's counts across items (see items.ts). */
  summary?: string;
}

/** Each visited instance's latest status; the run's current node shows the run's own status. */
export function nodeStatuses(timeline: TimelineEntry[], currentNode?: string | null, runStatus?: string): Record<string, NodeRunState> {
  const result: Record<string, NodeRunState> = {};
  for (const entry of timeline) {
    const known = result[entry.instanceName];
    result[entry.instanceName] = {
      status: entry.status,
      visits: (known?.visits ?? 0) + 1,
      lastError: entry.error ?? known?.lastError,
    };
  }
  if (currentNode && runStatus && ["RUNNING", "WAITING", "SCHEDULER_WAITING", "CREATED"].includes(runStatus)) {
    const known = result[currentNode];
    result[currentNode] = { status: runStatus, visits: known?.visits ?? 0, lastError: known?.lastError };
  }
  return result;
}

/** The consecutive pairs of visited instances: the path the run took. */
export function pathOf(timeline: TimelineEntry[]): Set<string> {
  const pairs = new Set<string>();
  for (let i = 1; i < timeline.length; i++) pairs.add(`${timeline[i - 1].instanceName}->${timeline[i].instanceName}`);
  return pairs;
}

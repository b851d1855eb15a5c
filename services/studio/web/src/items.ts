// MAP items on a run: node events of an item's branch name their instance `name[index]`
// (`name[2][5]` inside a nested MAP, outer index first). These pure functions map such events
// back to the graph's states, count each MAP's items and group the timeline by item.
import { edgesOf, nodeOf, type Json, type NodeDefinition, type NodeRunState, type TimelineEntry, type WorkflowDefinition } from "./model";

export interface Instance {
  /** The state's name in the definition. */
  base: string;
  /** The item indexes, outermost MAP first; empty outside any MAP. */
  indexes: number[];
}

const INDEXED = /^(.*?)((?:\[\d+\])+)$/;

/** `double[3]` → {base: "double", indexes: [3]}; `times[1][2]` → [1, 2]; `plain` → []. */
export function parseInstance(name: string): Instance {
  const match = INDEXED.exec(name);
  if (!match || !match[1]) return { base: name, indexes: [] };
  const indexes = [...match[2].matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
  return { base: match[1], indexes };
}

/** The `[i][j]` suffix naming an item. */
export function itemKey(indexes: number[]): string {
  return indexes.map((i) => `[${i}]`).join("");
}

const DONE = new Set(["COMPLETED", "FAILED", "TERMINATED"]);
const ACTIVE_RUN = ["RUNNING", "WAITING", "SCHEDULER_WAITING", "CREATED"];

/** The states one MAP's item branch runs: reachable from its `itemNode` (nested MAPs' branches too). */
export function branchStates(def: WorkflowDefinition, library: Record<string, NodeDefinition>, mapState: string): Set<string> {
  const node = def.states?.[mapState] ? nodeOf(def.states[mapState], library) : undefined;
  const start = node?.type === "MAP" && typeof node.itemNode === "string" ? node.itemNode : null;
  const found = new Set<string>();
  if (!start) return found;
  const edges = edgesOf(def, library, false);
  const queue = [start];
  while (queue.length) {
    const name = queue.shift()!;
    if (found.has(name) || name === mapState || !(name in (def.states ?? {}))) continue;
    found.add(name);
    for (const edge of edges) if (edge.source === name) queue.push(edge.target);
  }
  return found;
}

export interface MapProgress {
  /** Items seen (or the literal list's length, or the finished MAP's output length). */
  total: number | null;
  completed: number;
  failed: number;
  running: number;
  /** e.g. "37/40 completed, 3 failed". */
  text: string;
}

function isBranchEnd(def: WorkflowDefinition, library: Record<string, NodeDefinition>, name: string): boolean {
  const state = def.states?.[name];
  if (!state) return false;
  const type = state ? nodeOf(state, library)?.type : undefined;
  return !state.nextNode && type !== "BRANCH";
}

/**
 * Each MAP's items: an item is failed when its latest visit failed, completed when its latest
 * visit completed a state that ends the branch (or the MAP itself finished), running otherwise.
 */
export function mapProgress(
  def: WorkflowDefinition,
  library: Record<string, NodeDefinition>,
  timeline: TimelineEntry[],
  context?: Record<string, unknown> | null,
): Record<string, MapProgress> {
  const result: Record<string, MapProgress> = {};
  for (const [name, state] of Object.entries(def.states ?? {})) {
    const node = nodeOf(state, library);
    if (node?.type !== "MAP" || typeof node.itemNode !== "string") continue;
    const branch = branchStates(def, library, name);
    const mapDone = timeline.some((e) => parseInstance(e.instanceName).base === name && DONE.has(e.status));
    // An item is named by the indexes of its `itemNode` visits (one level deeper than the MAP).
    const items = new Map<string, TimelineEntry | null>();
    for (const entry of timeline) {
      const parsed = parseInstance(entry.instanceName);
      if (parsed.base === node.itemNode && parsed.indexes.length) items.set(itemKey(parsed.indexes), null);
    }
    for (const entry of timeline) {
      const parsed = parseInstance(entry.instanceName);
      if (!branch.has(parsed.base)) continue;
      const key = itemKey(parsed.indexes);
      if (items.has(key)) items.set(key, entry); // the latest visit at the item's own depth
    }
    let completed = 0;
    let failed = 0;
    let running = 0;
    for (const last of items.values()) {
      if (last?.status === "FAILED") failed++;
      else if (mapDone || (last?.status === "COMPLETED" && isBranchEnd(def, library, parseInstance(last.instanceName).base))) completed++;
      else running++;
    }
    const output = context?.[name];
    const literal = Array.isArray(node.items) ? (node.items as Json[]).length : null;
    const total = mapDone && Array.isArray(output) ? output.length : literal;
    const text = total !== null ? `${completed}/${total} completed, ${failed} failed` : `${completed} completed, ${failed} failed${running ? `, ${running} running` : ""}`;
    result[name] = { total, completed, failed, running, text };
  }
  return result;
}

/**
 * Each state's status on the run: a state outside any MAP shows its latest visit; an item branch
 * state aggregates its latest visit per item (failed if any item's failed); a MAP adds its items'
 * progress as `summary`. The run's current node shows the run's own status while it runs.
 */
export function runStatuses(
  def: WorkflowDefinition | null,
  library: Record<string, NodeDefinition>,
  timeline: TimelineEntry[],
  currentNode?: string | null,
  runStatus?: string,
  context?: Record<string, unknown> | null,
): Record<string, NodeRunState> {
  const perState = new Map<string, Map<string, TimelineEntry>>();
  const visits = new Map<string, number>();
  const lastError = new Map<string, string>();
  for (const entry of timeline) {
    const { base, indexes } = parseInstance(entry.instanceName);
    const latest = perState.get(base) ?? new Map<string, TimelineEntry>();
    latest.set(itemKey(indexes), entry);
    perState.set(base, latest);
    visits.set(base, (visits.get(base) ?? 0) + 1);
    if (entry.error) lastError.set(base, entry.error);
  }
  const result: Record<string, NodeRunState> = {};
  for (const [base, latest] of perState) {
    const entries = [...latest.values()];
    const itemised = !latest.has("");
    let status = entries[entries.length - 1].status;
    let summary: string | undefined;
    if (itemised) {
      const failed = entries.filter((e) => e.status === "FAILED").length;
      const completed = entries.filter((e) => e.status === "COMPLETED").length;
      status = failed ? "FAILED" : completed === entries.length ? "COMPLETED" : status;
      summary = `items: ${completed} completed, ${failed} failed`;
    }
    result[base] = { status, visits: visits.get(base) ?? 0, lastError: lastError.get(base), summary };
  }
  if (def) {
    for (const [name, progress] of Object.entries(mapProgress(def, library, timeline, context))) {
      if (progress.total === null && progress.completed + progress.failed + progress.running === 0 && !result[name]) continue;
      const known = result[name];
      result[name] = { status: known?.status ?? "RUNNING", visits: known?.visits ?? 0, lastError: known?.lastError, summary: progress.text };
    }
  }
  if (currentNode && runStatus && ACTIVE_RUN.includes(runStatus)) {
    const known = result[currentNode];
    result[currentNode] = { ...known, status: runStatus, visits: known?.visits ?? 0 };
  }
  return result;
}

/** The path the run took, as `from->to` state pairs: visits in order within each item, plus MAP→item branch. */
export function runPath(def: WorkflowDefinition | null, library: Record<string, NodeDefinition>, timeline: TimelineEntry[]): Set<string> {
  const pairs = new Set<string>();
  const previous = new Map<string, string>();
  for (const entry of timeline) {
    const { base, indexes } = parseInstance(entry.instanceName);
    const key = itemKey(indexes);
    const before = previous.get(key);
    if (before !== undefined) pairs.add(`${before}->${base}`);
    previous.set(key, base);
  }
  if (def) {
    const visited = new Set(timeline.map((e) => parseInstance(e.instanceName).base));
    for (const [name, state] of Object.entries(def.states ?? {})) {
      const node = nodeOf(state, library);
      if (node?.type === "MAP" && typeof node.itemNode === "string" && visited.has(node.itemNode)) pairs.add(`${name}->${node.itemNode}`);
    }
  }
  return pairs;
}

export type TimelineRow =
  | { kind: "visit"; entry: TimelineEntry; depth: number; position: number }
  | { kind: "item"; label: string; key: string; depth: number; status: string; durationMs: number | null; visits: number };

interface Group {
  key: string;
  indexes: number[];
  label: string;
  entries: { entry: TimelineEntry; position: number }[];
  children: Group[];
}

function startsWith(indexes: number[], prefix: number[]): boolean {
  return prefix.length <= indexes.length && prefix.every((value, i) => indexes[i] === value);
}

/**
 * The timeline with each item's visits grouped under a row for the item, named by its first
 * visit (`double[3]`), at the place of that first visit; nested items nest. An item's group
 * closes when a visit outside it at a shallower depth on its path (its MAP's own event) comes,
 * so a later MAP's items with the same indexes form groups of their own.
 */
export function groupTimeline(entries: TimelineEntry[]): TimelineRow[] {
  const top: Group = { key: "", indexes: [], label: "", entries: [], children: [] };
  const order: (Group | { entry: TimelineEntry; position: number })[] = [];
  const open = new Map<string, Group>();
  const nodesOf = new Map<Group, (Group | { entry: TimelineEntry; position: number })[]>([[top, order]]);
  entries.forEach((entry, position) => {
    const { indexes } = parseInstance(entry.instanceName);
    for (const [key, group] of open) {
      if (group.indexes.length > indexes.length && startsWith(group.indexes, indexes)) open.delete(key);
    }
    let parent = top;
    for (let depth = 1; depth <= indexes.length; depth++) {
      const prefix = indexes.slice(0, depth);
      const key = itemKey(prefix);
      let group = open.get(key);
      if (!group) {
        group = { key, indexes: prefix, label: depth === indexes.length ? entry.instanceName : `${parseInstance(entry.instanceName).base}${key}`, entries: [], children: [] };
        open.set(key, group);
        nodesOf.get(parent)!.push(group);
        nodesOf.set(group, []);
      }
      parent = group;
    }
    parent.entries.push({ entry, position });
    nodesOf.get(parent)!.push({ entry, position });
  });
  const rows: TimelineRow[] = [];
  const allEntries = (group: Group): TimelineEntry[] => (nodesOf.get(group) ?? []).flatMap((n) => ("entry" in n ? [n.entry] : allEntries(n)));
  const emit = (nodes: (Group | { entry: TimelineEntry; position: number })[], depth: number) => {
    for (const node of nodes) {
      if ("entry" in node) {
        rows.push({ kind: "visit", entry: node.entry, depth, position: node.position });
        continue;
      }
      const inside = allEntries(node);
      const starts = inside.map((e) => (e.startedAt ? Date.parse(e.startedAt) : NaN)).filter((t) => !Number.isNaN(t));
      const ends = inside.map((e) => (e.finishedAt ? Date.parse(e.finishedAt) : NaN)).filter((t) => !Number.isNaN(t));
      const durationMs = starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : null;
      const status = inside.some((e) => e.status === "FAILED") && inside[inside.length - 1].status === "FAILED" ? "FAILED" : inside[inside.length - 1].status;
      rows.push({ kind: "item", label: node.label, key: node.key, depth, status, durationMs, visits: inside.length });
      emit(nodesOf.get(node) ?? [], depth + 1);
    }
  };
  emit(order, 0);
  return rows;
}

/** Where an item's output lives: the finished MAP's output list at the item's index (outer items only). */
export function itemOutput(
  def: WorkflowDefinition | null,
  library: Record<string, NodeDefinition>,
  context: Record<string, unknown> | null | undefined,
  instance: string,
): unknown {
  const { base, indexes } = parseInstance(instance);
  if (!def || !context || indexes.length !== 1) return undefined;
  for (const name of Object.keys(def.states ?? {})) {
    if (!branchStates(def, library, name).has(base)) continue;
    const output = context[name];
    if (Array.isArray(output)) return output[indexes[0]];
  }
  return undefined;
}

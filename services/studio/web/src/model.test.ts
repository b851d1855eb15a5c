import { describe, expect, it } from "vitest";
import {
  addState,
  connect,
  disconnected,
  edgesOf,
  emptyNode,
  layout,
  nodeStatuses,
  pathOf,
  pointerTarget,
  removeEdge,
  removeState,
  unenriched,
  type WorkflowDefinition,
} from "./model";

const hello: WorkflowDefinition = {
  id: "hello",
  startNode: "greet",
  defaultFailureNode: "rejected",
  states: {
    greet: { nodeDefinition: { id: "greet", type: "SCRIPT", output: "{% 1 %}" }, nextNode: "route" },
    route: {
      nodeDefinition: { id: "route", type: "BRANCH", choices: [{ rule: "{% $x = 1 %}", nextNode: "approved" }], defaultNode: "rejected" },
    },
    approved: { nodeDefinition: { id: "approved", type: "SUCCESS" }, end: true },
    rejected: { nodeDefinition: { id: "rejected", type: "FAILURE", error: "no" }, end: true },
  },
};

describe("edges", () => {
  it("labels branch rules, the default and failure edges", () => {
    const edges = edgesOf(hello, {});
    expect(edges.find((e) => e.kind === "next")).toMatchObject({ source: "greet", target: "route" });
    expect(edges.find((e) => e.kind === "branch")?.label).toBe("if $x = 1");
    expect(edges.find((e) => e.kind === "default")).toMatchObject({ source: "route", target: "rejected", label: "otherwise" });
    const failures = edges.filter((e) => e.kind === "failure").map((e) => e.source);
    // route already reaches the failure node by its labelled default edge: no second edge on top.
    expect(failures).toEqual(["greet"]);
  });

  it("uses referenced node definitions from the library", () => {
    const def: WorkflowDefinition = { id: "w", startNode: "a", states: { a: { resourceId: "fork" }, b: {}, c: {} } };
    const edges = edgesOf(def, { fork: { id: "fork", type: "PARALLEL", branches: ["b", "c"] } });
    expect(edges.map((e) => e.label)).toEqual(["branch 1", "branch 2"]);
  });
});

describe("layout", () => {
  it("places every state, a successor below its predecessor", () => {
    const positions = layout(hello, edgesOf(hello, {}));
    expect(Object.keys(positions).sort()).toEqual(["approved", "greet", "rejected", "route"]);
    expect(positions.route.y).toBeGreaterThan(positions.greet.y);
    expect(positions.approved.y).toBeGreaterThan(positions.route.y);
  });

  it("lays out 200 states quickly", () => {
    const states: WorkflowDefinition["states"] = {};
    for (let i = 0; i < 200; i++) states[`s${i}`] = { nodeDefinition: emptyNode("SCRIPT", `s${i}`), nextNode: i < 199 ? `s${i + 1}` : null };
    const def = { id: "big", startNode: "s0", states };
    const positions = layout(def, edgesOf(def, {}));
    expect(Object.keys(positions)).toHaveLength(200);
  });
});

describe("editing", () => {
  it("makes the first state the start and refuses a duplicate or bad name", () => {
    let def: WorkflowDefinition = { id: "w", states: {} };
    def = addState(def, "a", { nodeDefinition: emptyNode("SCRIPT", "a") });
    expect(def.startNode).toBe("a");
    def = addState(def, "b", { nodeDefinition: emptyNode("SUCCESS", "b") });
    expect(def.startNode).toBe("a");
    expect(() => addState(def, "a", {})).toThrow(/already/);
    expect(() => addState(def, "no spaces", {})).toThrow(/instance name/);
  });

  it("connects by node type and removes edges and states with every reference", () => {
    let def: WorkflowDefinition = { id: "w", states: {} };
    def = addState(def, "a", { nodeDefinition: emptyNode("SCRIPT", "a") });
    def = addState(def, "br", { nodeDefinition: emptyNode("BRANCH", "br") });
    def = addState(def, "x", { nodeDefinition: emptyNode("SUCCESS", "x") });
    def = addState(def, "y", { nodeDefinition: emptyNode("SUCCESS", "y") });
    def = connect(def, "a", "br", {});
    def = connect(def, "br", "x", {});
    def = connect(def, "br", "y", {});
    expect(def.states.a.nextNode).toBe("br");
    expect(def.states.br.nodeDefinition?.defaultNode).toBe("x");
    expect(def.states.br.nodeDefinition?.choices).toEqual([{ rule: "{% true %}", nextNode: "y" }]);
    const edge = edgesOf(def, {}).find((e) => e.kind === "next");
    expect(edge).toBeDefined();
    def = removeEdge(def, edge!);
    expect(def.states.a.nextNode).toBeNull();
    def = removeState(def, "x");
    expect(def.states.br.nodeDefinition?.defaultNode).toBeNull();
    expect(disconnected(def, edgesOf(def, {}))).toEqual(["br"]);
  });
});

describe("pointers", () => {
  it("finds the state and field a problem's pointer names", () => {
    expect(pointerTarget("/states/greet/nodeDefinition/output")).toEqual({ instance: "greet", field: "output" });
    expect(pointerTarget("/states/a~1b/nextNode")).toEqual({ instance: "a/b", field: "nextNode" });
    expect(pointerTarget("/startNode")).toEqual({ field: "startNode" });
  });
});

describe("run state", () => {
  it("gives each visited node its last status and the current node the run's status", () => {
    const timeline = [
      { instanceName: "greet", nodeType: "SCRIPT", status: "COMPLETED" },
      { instanceName: "loop", nodeType: "SCRIPT", status: "FAILED", error: "boom" },
      { instanceName: "loop", nodeType: "SCRIPT", status: "COMPLETED" },
    ];
    const states = nodeStatuses(timeline, "ask", "WAITING");
    expect(states.greet.status).toBe("COMPLETED");
    expect(states.loop).toEqual({ status: "COMPLETED", visits: 2, lastError: "boom" });
    expect(states.ask.status).toBe("WAITING");
    expect([...pathOf(timeline)]).toEqual(["greet->loop", "loop->loop"]);
  });
});

describe("enriched reads", () => {
  it("takes inlined references out again and keeps inline nodes and pinned versions", () => {
    const enriched: WorkflowDefinition = {
      id: "w",
      states: {
        a: { resourceId: "greet", resourceVersion: "3", nodeDefinition: { id: "greet", type: "SCRIPT" } },
        b: { nodeDefinition: { id: "b", type: "SUCCESS" } },
      },
    };
    expect(unenriched(enriched).states).toEqual({
      a: { resourceId: "greet", resourceVersion: "3" },
      b: { nodeDefinition: { id: "b", type: "SUCCESS" } },
    });
  });
});

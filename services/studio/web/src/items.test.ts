import { describe, expect, it } from "vitest";
import { groupTimeline, itemOutput, parseInstance, runPath, runStatuses } from "./items";
import type { TimelineEntry, WorkflowDefinition } from "./model";

const at = (s: number) => `2026-01-01T00:00:0${s}.000Z`;
const visit = (instanceName: string, status = "COMPLETED", nodeType = "SCRIPT", from = 0, to = 1, error?: string): TimelineEntry => ({
  instanceName,
  nodeType,
  status,
  startedAt: at(from),
  finishedAt: at(to),
  durationMs: (to - from) * 1000,
  error: error ?? null,
});

const script = (nextNode?: string) => ({ nodeDefinition: { id: "s", type: "SCRIPT", script: "{% $item * 2 %}" }, nextNode, end: !nextNode });
const def: WorkflowDefinition = {
  id: "doubles",
  startNode: "all",
  states: {
    all: { nodeDefinition: { id: "m", type: "MAP", items: [1, 2, 3, 4], itemNode: "double" }, nextNode: "done" },
    double: script("inc"),
    inc: script(),
    done: { nodeDefinition: { id: "ok", type: "SUCCESS" }, end: true },
  },
};

describe("MAP item instances", () => {
  it("parses the item indexes out of an instance name", () => {
    expect(parseInstance("double[3]")).toEqual({ base: "double", indexes: [3] });
    expect(parseInstance("times[1][12]")).toEqual({ base: "times", indexes: [1, 12] });
    expect(parseInstance("plain")).toEqual({ base: "plain", indexes: [] });
    expect(parseInstance("[3]")).toEqual({ base: "[3]", indexes: [] });
    expect(parseInstance("a[x]")).toEqual({ base: "a[x]", indexes: [] });
  });

  it("counts a running MAP's items and aggregates its branch states across items", () => {
    const timeline = [
      visit("double[0]"),
      visit("double[1]"),
      visit("inc[0]"),
      visit("double[2]", "FAILED", "SCRIPT", 1, 2, "boom"),
      visit("double[3]"),
    ];
    const states = runStatuses(def, {}, timeline, "all", "RUNNING", {});
    expect(states.all.status).toBe("RUNNING");
    expect(states.all.summary).toBe("1/4 completed, 1 failed");
    expect(states.double.status).toBe("FAILED");
    expect(states.double.visits).toBe(4);
    expect(states.double.summary).toBe("items: 3 completed, 1 failed");
    expect(states.inc.status).toBe("COMPLETED");
    expect(states.inc.summary).toBe("items: 1 completed, 0 failed");
  });

  it("takes the MAP's status from its own event and its total from its output once done", () => {
    const timeline = [visit("double[0]"), visit("inc[0]"), visit("double[1]", "FAILED", "SCRIPT", 0, 1, "no"), visit("all", "COMPLETED", "MAP", 0, 3), visit("done")];
    const context = { all: [3, { error: "no" }] };
    const states = runStatuses(def, {}, timeline, null, "COMPLETED", context);
    expect(states.all.status).toBe("COMPLETED");
    expect(states.all.summary).toBe("1/2 completed, 1 failed");
    expect([...runPath(def, {}, timeline)].sort()).toEqual(["all->done", "all->double", "double->inc"]);
    expect(itemOutput(def, {}, context, "double[1]")).toEqual({ error: "no" });
    expect(itemOutput(def, {}, context, "inc[0]")).toBe(3);
  });

  it("groups item visits under their item, nested items under theirs, in first-visit order", () => {
    const timeline = [
      visit("start"),
      visit("double[0]", "COMPLETED", "SCRIPT", 1, 2),
      visit("double[1]", "COMPLETED", "SCRIPT", 1, 3),
      visit("inc[0]", "COMPLETED", "SCRIPT", 2, 4),
      visit("times[1][0]"),
      visit("inner[1]", "COMPLETED", "MAP"),
      visit("all", "COMPLETED", "MAP"),
      visit("double[0]", "COMPLETED", "SCRIPT", 5, 6),
    ];
    const rows = groupTimeline(timeline).map((row) =>
      row.kind === "item" ? `${"  ".repeat(row.depth)}item ${row.label} ${row.visits} ${row.durationMs}` : `${"  ".repeat(row.depth)}${row.entry.instanceName}`,
    );
    expect(rows).toEqual([
      "start",
      "item double[0] 2 3000",
      "  double[0]",
      "  inc[0]",
      "item double[1] 3 3000",
      "  double[1]",
      "  item times[1][0] 1 1000",
      "    times[1][0]",
      "  inner[1]",
      "all",
      // the MAP's own event closed its items: a later MAP's item 0 is an item of its own
      "item double[0] 1 1000",
      "  double[0]",
    ]);
  });
});

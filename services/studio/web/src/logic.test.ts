import { describe, expect, it } from "vitest";
import { parseSse, queryString } from "./api";
import { canonical, diffLines } from "./diff";
import { expressionError, isExpression } from "./expr";
import { parseLoose } from "./components/SchemaForm";
import { optionOfPointer, selectedOptions, visibleOptions, type Option } from "./components/TaskForm";

describe("expressions", () => {
  it("recognises {% %} and reports syntax errors as typed", () => {
    expect(isExpression("  {% $x %} ")).toBe(true);
    expect(isExpression("plain")).toBe(false);
    expect(expressionError("{% 1 + 2 %}")).toBeNull();
    expect(expressionError("{% 1 + %}")).toMatch(/./);
    expect(expressionError("{% 1")).toMatch(/end with %}/);
    expect(expressionError("literal text")).toBeNull();
  });

  it("keeps words and expressions as strings in free-form fields", () => {
    expect(parseLoose("{% $x %}")).toBe("{% $x %}");
    expect(parseLoose("failed")).toBe("failed");
    expect(parseLoose('{"a": 1}')).toEqual({ a: 1 });
    expect(parseLoose("42")).toBe(42);
  });
});

describe("diff", () => {
  it("pairs changed lines side by side", () => {
    const rows = diffLines(["a", "b", "c"], ["a", "B", "c", "d"]);
    expect(rows.map((r) => r.change)).toEqual(["same", "changed", "same", "added"]);
    expect(rows[1]).toEqual({ left: "b", right: "B", change: "changed" });
  });

  it("compares definitions by content, not key order", () => {
    expect(canonical({ b: 1, a: { d: 2, c: 3 } })).toBe(canonical({ a: { c: 3, d: 2 }, b: 1 }));
  });
});

describe("server-sent events", () => {
  it("parses complete blocks and keeps the rest for the next chunk", () => {
    const { events, rest } = parseSse('event: ready\ndata: {}\n\n: keep-alive\n\nevent: node\ndata: {"a":1}\n\nevent: wor');
    expect(events).toEqual([
      { kind: "ready", data: {} },
      { kind: "node", data: { a: 1 } },
    ]);
    expect(rest).toBe("event: wor");
  });

  it("repeats list query parameters", () => {
    expect(queryString({ status: ["WAITING", "FAILED"], pageSize: 5, empty: "" })).toBe("?status=WAITING&status=FAILED&pageSize=5");
  });
});

describe("task forms", () => {
  const options: Option[] = [
    {
      id: "reason",
      possibleValues: [{ value: "DAMAGED" }, { value: "OTHER" }],
      possibleDependentValues: { DAMAGED: { id: "photo", possibleValues: [{ value: true }, { value: false }] } },
    },
  ];

  it("shows a dependent option only once its value is chosen", () => {
    expect(visibleOptions(options, {}).map((o) => o.id)).toEqual(["reason"]);
    expect(visibleOptions(options, { reason: "DAMAGED" }).map((o) => o.id)).toEqual(["reason", "photo"]);
    expect(visibleOptions(options, { reason: "OTHER" }).map((o) => o.id)).toEqual(["reason"]);
  });

  it("answers with each chosen value in its own JSON type, hidden options left out", () => {
    expect(selectedOptions(options, { reason: "DAMAGED", photo: "true" })).toEqual({ reason: "DAMAGED", photo: true });
    expect(selectedOptions(options, { reason: "OTHER", photo: "true" })).toEqual({ reason: "OTHER" });
  });

  it("finds the option a resume error's pointer names", () => {
    expect(optionOfPointer("/viewResponse/selectedOptions/reason", options, {})).toBe("reason");
    expect(optionOfPointer("/viewResponse", options, {})).toBeNull();
  });
});

import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { TaskForm, type View } from "./TaskForm";

const view: View = {
  layoutId: "refund",
  inputOptions: [
    {
      id: "reason",
      description: "Why return it?",
      instructions: [{ templateId: "intro", templateVariables: { order: "A-17" } }],
      possibleValues: [
        { displayValue: "Damaged", value: "DAMAGED" },
        { displayValue: "Other", value: "OTHER" },
      ],
      possibleDependentValues: { DAMAGED: { id: "photo", description: "Photo attached?", tags: { values: ["ui.radio"] }, possibleValues: [{ displayValue: "Yes", value: true }, { displayValue: "No", value: false }] } },
    },
  ],
};

describe("TaskForm", () => {
  it("renders options as choices, reveals a dependent option, and submits typed values", () => {
    const submit = vi.fn();
    render(<TaskForm workflowId="r1" view={view} errors={{}} busy={false} onSubmit={submit} />);
    expect(screen.getByText(/A-17/)).toBeTruthy();
    expect(screen.queryByText("Photo attached?")).toBeNull();
    fireEvent.change(screen.getByLabelText("Why return it?"), { target: { value: "DAMAGED" } });
    expect(screen.getByText("Photo attached?")).toBeTruthy();
    fireEvent.click(screen.getByLabelText("Yes"));
    fireEvent.click(screen.getByRole("button", { name: "Submit" }));
    expect(submit).toHaveBeenCalledWith({ reason: "DAMAGED", photo: true });
  });

  it("shows an answer's error on its field", () => {
    render(<TaskForm workflowId="r2" view={view} errors={{ reason: "not a possible value" }} busy={false} onSubmit={() => undefined} />);
    expect(screen.getByRole("alert").textContent).toBe("not a possible value");
  });
});

import { useState } from "react";
import type { Json } from "../model";

export interface PossibleValue {
  displayValue?: string | null;
  value: Json;
  metaData?: Json;
}

export interface Option {
  id: string;
  parentId?: string | null;
  description?: string | null;
  tags?: { values?: string[] } | null;
  instructions?: { templateId: string; templateVariables?: Record<string, Json> }[] | null;
  possibleValues?: PossibleValue[] | null;
  possibleDependentValues?: Record<string, Option> | null;
}

export interface View {
  layoutId?: string | null;
  inputOptions?: Option[] | Json;
}

/** The options shown now: the top ones, plus each dependent option of a value already chosen. */
export function visibleOptions(options: Option[], selected: Record<string, string>): Option[] {
  const shown: Option[] = [];
  const walk = (option: Option) => {
    shown.push(option);
    const chosen = selected[option.id];
    const dependent = chosen !== undefined ? option.possibleDependentValues?.[chosen] : undefined;
    if (dependent) walk(dependent);
  };
  options.forEach(walk);
  return shown;
}

/** The resume's selectedOptions: chosen values back in their own JSON type. */
export function selectedOptions(options: Option[], selected: Record<string, string>): Record<string, Json> {
  const result: Record<string, Json> = {};
  for (const option of visibleOptions(options, selected)) {
    const text = selected[option.id];
    if (text === undefined || text === "") continue;
    const match = option.possibleValues?.find((pv) => valueKey(pv.value) === text);
    result[option.id] = match ? match.value : text;
  }
  return result;
}

export function valueKey(value: Json): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Which option a resume error's pointer names (its last segment), if any. */
export function optionOfPointer(pointer: string, options: Option[], selected: Record<string, string>): string | null {
  const ids = new Set(visibleOptions(options, selected).map((o) => o.id));
  const parts = pointer.split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  for (let i = parts.length - 1; i >= 0; i--) if (ids.has(parts[i])) return parts[i];
  return null;
}

interface Props {
  workflowId: string;
  view: View;
  errors: Record<string, string>;
  busy: boolean;
  onSubmit: (selected: Record<string, Json>) => void;
}

export function TaskForm({ workflowId, view, errors, busy, onSubmit }: Props) {
  const options = Array.isArray(view.inputOptions) ? (view.inputOptions as unknown as Option[]) : [];
  const [selected, setSelected] = useState<Record<string, string>>({});
  const shown = visibleOptions(options, selected);
  return (
    <form
      className="task-form"
      aria-label={`task ${workflowId}`}
      onSubmit={(event) => {
        event.preventDefault();
        onSubmit(selectedOptions(options, selected));
      }}
    >
      {view.layoutId && <div className="muted">layout {view.layoutId}</div>}
      {shown.map((option) => {
        const id = `opt-${workflowId}-${option.id}`;
        const label = option.description || option.id;
        const tags = option.tags?.values ?? [];
        const error = errors[option.id];
        return (
          <div key={option.id} className={`field ${error ? "field-error" : ""}`} data-option={option.id}>
            {(option.instructions ?? []).map((instruction, index) => (
              <div key={index} className="instruction">
                <span className="muted">{instruction.templateId}</span>
                {Object.entries(instruction.templateVariables ?? {}).map(([name, value]) => (
                  <div key={name}>
                    <strong>{name}</strong>: {typeof value === "string" ? value : JSON.stringify(value)}
                  </div>
                ))}
              </div>
            ))}
            {option.possibleValues && option.possibleValues.length > 0 ? (
              tags.some((t) => t.includes("radio")) ? (
                <fieldset>
                  <legend>{label}</legend>
                  {option.possibleValues.map((pv) => (
                    <label key={valueKey(pv.value)} className="radio">
                      <input
                        type="radio"
                        name={id}
                        value={valueKey(pv.value)}
                        checked={selected[option.id] === valueKey(pv.value)}
                        onChange={() => setSelected({ ...selected, [option.id]: valueKey(pv.value) })}
                      />
                      {pv.displayValue ?? valueKey(pv.value)}
                    </label>
                  ))}
                </fieldset>
              ) : (
                <>
                  <label htmlFor={id}>{label}</label>
                  <select id={id} value={selected[option.id] ?? ""} onChange={(e) => setSelected({ ...selected, [option.id]: e.target.value })}>
                    <option value="">choose…</option>
                    {option.possibleValues.map((pv) => (
                      <option key={valueKey(pv.value)} value={valueKey(pv.value)}>
                        {pv.displayValue ?? valueKey(pv.value)}
                      </option>
                    ))}
                  </select>
                </>
              )
            ) : (
              <>
                <label htmlFor={id}>{label}</label>
                <input id={id} value={selected[option.id] ?? ""} onChange={(e) => setSelected({ ...selected, [option.id]: e.target.value })} />
              </>
            )}
            {error && (
              <div className="error-text" role="alert">
                {error}
              </div>
            )}
          </div>
        );
      })}
      {errors[""] && (
        <div className="error-text" role="alert">
          {errors[""]}
        </div>
      )}
      <button type="submit" disabled={busy}>
        Submit
      </button>
    </form>
  );
}

import { useEffect, useState } from "react";
import { expressionError, isExpression } from "../expr";
import type { Json } from "../model";
import { CodeEditor } from "./CodeEditor";

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: Json[];
  anyOf?: JsonSchema[];
  $ref?: string;
  items?: JsonSchema;
  title?: string;
  description?: string;
  default?: Json;
  minimum?: number;
  maximum?: number;
}

export interface SchemaDoc {
  types: Record<string, JsonSchema>;
  $defs: Record<string, JsonSchema>;
}

/** Follows `$ref` and drops the `null` arm of an optional field. */
export function resolve(schema: JsonSchema, defs: Record<string, JsonSchema>): { schema: JsonSchema; nullable: boolean } {
  let current = schema;
  let nullable = false;
  for (let guard = 0; guard < 10; guard++) {
    if (current.$ref) {
      current = defs[current.$ref.split("/").pop() ?? ""] ?? {};
      continue;
    }
    if (current.anyOf) {
      const arms = current.anyOf.filter((arm) => arm.type !== "null");
      nullable ||= arms.length < current.anyOf.length;
      if (arms.length === 1) {
        current = arms[0];
        continue;
      }
    }
    break;
  }
  return { schema: current, nullable };
}

/** What a free-form (any JSON) field holds when typed as text: expressions and words stay strings. */
export function parseLoose(text: string): Json {
  const trimmed = text.trim();
  if (trimmed === "") return "";
  if (/^(\{(?!%)|\[|-?\d|true$|false$|null$)/.test(trimmed)) {
    try {
      return JSON.parse(trimmed) as Json;
    } catch {
      return text;
    }
  }
  return text;
}

export function showLoose(value: Json | undefined): string {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

const HIDDEN = new Set(["id", "type", "version"]);
/** Fields every node type has: shown after the type's own fields, which matter most. */
const COMMON = ["name", "parameters", "comment", "timeoutMs", "retry"];

function ordered(names: string[], depth: number): string[] {
  if (depth > 0) return names;
  const own = names.filter((n) => !COMMON.includes(n));
  return [...own, ...COMMON.filter((n) => names.includes(n))];
}

interface FormProps {
  schema: JsonSchema;
  defs: Record<string, JsonSchema>;
  value: Record<string, Json | undefined>;
  onChange: (value: Record<string, Json | undefined>) => void;
  errors: Record<string, string>;
  prefix?: string;
  depth?: number;
}

/** A form for an object schema: one field per property, nested objects as fieldsets. */
export function SchemaForm({ schema, defs, value, onChange, errors, prefix = "", depth = 0 }: FormProps) {
  const properties = resolve(schema, defs).schema.properties ?? {};
  const required = new Set(resolve(schema, defs).schema.required ?? []);
  return (
    <div className="schema-form">
      {ordered(Object.keys(properties), depth)
        .filter((name) => depth > 0 || !HIDDEN.has(name))
        .map((name) => [name, properties[name]] as const)
        .map(([name, property]) => (
          <Field
            key={name}
            name={name}
            path={prefix ? `${prefix}/${name}` : name}
            schema={property}
            defs={defs}
            required={required.has(name)}
            value={value[name]}
            errors={errors}
            depth={depth}
            onChange={(next) => {
              const copy = { ...value };
              if (next === undefined) delete copy[name];
              else copy[name] = next;
              onChange(copy);
            }}
          />
        ))}
    </div>
  );
}

interface FieldProps {
  name: string;
  path: string;
  schema: JsonSchema;
  defs: Record<string, JsonSchema>;
  required: boolean;
  value: Json | undefined;
  errors: Record<string, string>;
  depth: number;
  onChange: (value: Json | undefined) => void;
}

function Field({ name, path, schema, defs, required, value, errors, depth, onChange }: FieldProps) {
  const { schema: resolved, nullable } = resolve(schema, defs);
  const error = errors[path];
  const type = Array.isArray(resolved.type) ? resolved.type[0] : resolved.type;
  const id = `field-${path.replace(/[^A-Za-z0-9_-]/g, "-")}`;
  const label = (
    <label htmlFor={id}>
      {name}
      {required ? " *" : ""}
    </label>
  );
  const shell = (control: React.ReactNode, note?: string | null) => (
    <div className={`field ${error ? "field-error" : ""}`} data-field={path}>
      {label}
      {control}
      {note && <div className="field-note">{note}</div>}
      {error && (
        <div className="error-text" role="alert">
          {error}
        </div>
      )}
    </div>
  );

  if (resolved.enum) {
    return shell(
      <select id={id} value={value === undefined || value === null ? "" : String(value)} onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)}>
        {(nullable || !required) && <option value="">(default)</option>}
        {resolved.enum.map((choice) => (
          <option key={String(choice)} value={String(choice)}>
            {String(choice)}
          </option>
        ))}
      </select>,
    );
  }
  if (type === "boolean") {
    return shell(<input id={id} type="checkbox" checked={value === true} onChange={(e) => onChange(e.target.checked)} />);
  }
  if (type === "integer" || type === "number") {
    return shell(
      <input
        id={id}
        type="number"
        value={typeof value === "number" ? value : ""}
        onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))}
      />,
    );
  }
  if (type === "string") {
    return shell(<ExprInput id={id} value={typeof value === "string" ? value : ""} onChange={(text) => onChange(text === "" && !required ? undefined : text)} />);
  }
  if (type === "array" && resolve(resolved.items ?? {}, defs).schema.type === "string") {
    const list = Array.isArray(value) ? value.map(String) : [];
    return shell(
      <input
        id={id}
        value={list.join(", ")}
        onChange={(e) =>
          onChange(
            e.target.value
              .split(",")
              .map((s) => s.trim())
              .filter(Boolean),
          )
        }
      />,
      "comma-separated",
    );
  }
  if (type === "object" && resolved.properties && depth < 2) {
    const object = value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, Json>) : {};
    return (
      <fieldset className={`field nested ${error ? "field-error" : ""}`} data-field={path}>
        <legend>{name}</legend>
        <SchemaForm schema={resolved} defs={defs} value={object} onChange={(next) => onChange(next as Json)} errors={errors} prefix={path} depth={depth + 1} />
        {error && <div className="error-text">{error}</div>}
      </fieldset>
    );
  }
  if (type === undefined && !resolved.anyOf && !resolved.properties) {
    // Any JSON: usually an expression; typed as text, anything that reads as JSON is JSON.
    return shell(<ExprInput id={id} value={showLoose(value)} onChange={(text) => onChange(text === "" ? undefined : parseLoose(text))} />);
  }
  return shell(<JsonField label={name} value={value} onChange={onChange} />);
}

/** A text field that highlights an expression and checks its syntax as it is typed. */
export function ExprInput({ id, value, onChange }: { id: string; value: string; onChange: (value: string) => void }) {
  const problem = expressionError(value);
  return (
    <>
      <input id={id} className={isExpression(value) ? "expr" : ""} value={value} spellCheck={false} onChange={(e) => onChange(e.target.value)} />
      {problem && <div className="expr-error">expression: {problem}</div>}
    </>
  );
}

function JsonField({ label, value, onChange }: { label: string; value: Json | undefined; onChange: (value: Json | undefined) => void }) {
  const shown = value === undefined ? "" : JSON.stringify(value, null, 2);
  const [text, setText] = useState(shown);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setText((current) => {
      try {
        if (current.trim() && JSON.stringify(JSON.parse(current)) === JSON.stringify(value)) return current;
      } catch {
        // fall through: show the new value
      }
      return shown;
    });
  }, [shown, value]);
  return (
    <>
      <CodeEditor
        label={label}
        value={text}
        minHeight="4em"
        onChange={(next) => {
          setText(next);
          if (!next.trim()) {
            setProblem(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(next) as Json);
            setProblem(null);
          } catch (error) {
            setProblem((error as Error).message);
          }
        }}
      />
      {problem && <div className="expr-error">JSON: {problem}</div>}
    </>
  );
}

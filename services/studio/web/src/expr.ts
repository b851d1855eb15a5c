// Expressions (contract 3): a string whose whole trimmed text is {% ... %} is JSONata.
import jsonata from "jsonata";

export function isExpression(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const text = value.trim();
  return text.startsWith("{%") && text.endsWith("%}") && text.length >= 4;
}

/** The syntax error of an expression string, or null when it parses (or is a plain literal). */
export function expressionError(value: unknown): string | null {
  if (typeof value !== "string") return null;
  const text = value.trim();
  if (!text.startsWith("{%")) return null;
  if (!text.endsWith("%}")) return "an expression must end with %}";
  const body = text.slice(2, -2);
  if (!body.trim()) return "the expression is empty";
  try {
    jsonata(body);
    return null;
  } catch (error) {
    const e = error as { message?: string; position?: number };
    return e.position !== undefined ? `${e.message} (at ${e.position})` : (e.message ?? "syntax error");
  }
}

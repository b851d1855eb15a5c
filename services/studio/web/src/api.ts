// Every call goes to the Studio's own origin (/api/...) with the signed-in person's key:
// the Studio holds no credentials, so what a key may see is the APIs' decision alone.

const KEY = "drift.apiKey";

export function getKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setKey(key: string): void {
  sessionStorage.setItem(KEY, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(KEY);
}

export interface ProblemError {
  pointer: string;
  message: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: ProblemError[];
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export type Api = "gateway" | "dsl";
type Query = Record<string, string | number | boolean | string[] | undefined | null>;

export function queryString(query?: Query): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => params.append(name, v));
    else params.append(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

export async function call<T>(api: Api, method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/${api}${path}${queryString(query)}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    const problem: Problem =
      parsed && typeof parsed === "object" ? (parsed as Problem) : { status: response.status, detail: String(parsed ?? "") };
    throw new ApiError(response.status, problem);
  }
  return parsed as T;
}

export const gateway = {
  get: <T>(path: string, query?: Query) => call<T>("gateway", "GET", path, undefined, query),
  post: <T>(path: string, body?: unknown, query?: Query) => call<T>("gateway", "POST", path, body ?? {}, query),
  put: <T>(path: string, body?: unknown) => call<T>("gateway", "PUT", path, body ?? {}),
  del: <T>(path: string) => call<T>("gateway", "DELETE", path),
};

export const dsl = {
  get: <T>(path: string, query?: Query) => call<T>("dsl", "GET", path, undefined, query),
  post: <T>(path: string, body?: unknown, query?: Query) => call<T>("dsl", "POST", path, body, query),
  put: <T>(path: string, body?: unknown) => call<T>("dsl", "PUT", path, body),
};

/** True when the route does not exist on this deployment (an older gateway or dsl-store). */
export function missingRoute(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 404 || error.status === 405) && !error.problem.errors;
}

export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    const p = error.problem;
    const head = `${error.status} ${p.title ?? ""}`.trim();
    return p.detail ? `${head}: ${p.detail}` : head;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface LiveEvent {
  kind: string;
  data: Record<string, unknown>;
}

/** Parses a text/event-stream body; yields one event per blank-line-terminated block. */
export function parseSse(buffer: string): { events: LiveEvent[]; rest: string } {
  const events: LiveEvent[] = [];
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let kind = "message";
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length === 0) continue;
    try {
      events.push({ kind, data: JSON.parse(data.join("\n")) as Record<string, unknown> });
    } catch {
      // A malformed block is skipped; the next refresh shows the truth anyway.
    }
  }
  return { events, rest };
}

/**
 * A run's live events. EventSource cannot send an Authorization header, and the key must never be
 * put in a URL (logs, history), so this reads the stream with fetch. Reconnects until aborted.
 */
export async function followRun(workflowId: string, onEvent: (event: LiveEvent) => void, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    try {
      const response = await fetch(`/api/runs/${encodeURIComponent(workflowId)}/events`, {
        headers: { Authorization: `Bearer ${getKey() ?? ""}`, Accept: "text/event-stream" },
        signal,
      });
      if (!response.ok || !response.body) {
        if (response.status === 401 || response.status === 404) return;
        throw new Error(`live feed answered ${response.status}`);
      }
      onEvent({ kind: "connected", data: {} });
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const parsed = parseSse(buffer);
        buffer = parsed.rest;
        parsed.events.forEach(onEvent);
      }
    } catch {
      if (signal.aborted) return;
    }
    onEvent({ kind: "disconnected", data: {} });
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** Runs this browser session started or opened, for pages whose list route may be missing. */
export interface RecentRun {
  workflowId: string;
  definitionId?: string;
  definitionVersion?: string;
}

const RECENT = "drift.recentRuns";

export function recentRuns(): RecentRun[] {
  try {
    return JSON.parse(sessionStorage.getItem(RECENT) ?? "[]") as RecentRun[];
  } catch {
    return [];
  }
}

export function rememberRun(run: RecentRun): void {
  const others = recentRuns().filter((r) => r.workflowId !== run.workflowId);
  const known = recentRuns().find((r) => r.workflowId === run.workflowId);
  sessionStorage.setItem(RECENT, JSON.stringify([{ ...known, ...run }, ...others].slice(0, 50)));
}

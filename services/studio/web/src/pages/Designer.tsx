import { useCallback, useEffect, useMemo, useState } from "react";
import { ApiError, describe, dsl, gateway, missingRoute, rememberRun, type ProblemError } from "../api";
import { CodeEditor } from "../components/CodeEditor";
import { GraphView, TYPE_ICONS } from "../components/GraphView";
import { SchemaForm, type SchemaDoc } from "../components/SchemaForm";
import { canonical, diffLines } from "../diff";
import {
  NODE_TYPES,
  addState,
  connect,
  disconnected,
  edgesOf,
  emptyNode,
  nodeStatuses,
  pathOf,
  pointerTarget,
  removeEdge,
  removeState,
  typeOf,
  unenriched,
  updateState,
  type FlowEdge,
  type Json,
  type NodeDefinition,
  type State,
  type TimelineEntry,
  type WorkflowDefinition,
} from "../model";
import { navigate } from "../router";

interface VersionInfo {
  version: string;
  publishedAt?: string;
  active?: boolean;
  weight?: number | null;
}

type Tab = "inspect" | "json" | "versions" | "test" | "run";

function strip(def: WorkflowDefinition): WorkflowDefinition {
  const copy: WorkflowDefinition = { ...def };
  delete copy.version;
  return copy;
}

export function Designer({ id }: { id: string }) {
  const [def, setDef] = useState<WorkflowDefinition>({ id, states: {} });
  const [exists, setExists] = useState(false);
  const [loaded, setLoaded] = useState(false);
  const [library, setLibrary] = useState<Record<string, NodeDefinition>>({});
  const [reusable, setReusable] = useState<{ id: string; type?: string }[]>([]);
  const [schemas, setSchemas] = useState<SchemaDoc | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [selectedEdge, setSelectedEdge] = useState<FlowEdge | null>(null);
  const [problems, setProblems] = useState<ProblemError[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>("inspect");
  const [newName, setNewName] = useState("");
  const [dirty, setDirty] = useState(false);
  const [versions, setVersions] = useState<VersionInfo[]>([]);
  const [trace, setTrace] = useState<TimelineEntry[] | null>(null);

  const edit = useCallback((change: (current: WorkflowDefinition) => WorkflowDefinition) => {
    setDef((current) => change(current));
    setDirty(true);
  }, []);

  const loadVersions = useCallback(async () => {
    try {
      setVersions(await dsl.get<VersionInfo[]>(`/workflowDefinition/${encodeURIComponent(id)}/versions`));
    } catch {
      setVersions([]);
    }
  }, [id]);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      let found: WorkflowDefinition | null = null;
      for (const candidate of ["SNAPSHOT", "LATEST"]) {
        try {
          // One call: the enriched definition carries the referenced nodes' types; `unenriched`
          // takes them out again for editing, so a save never inlines a reference.
          const path = `/workflowDefinition/${encodeURIComponent(id)}`;
          found = await dsl.get<WorkflowDefinition>(path, { version: candidate, enrichNodeDefinition: true }).catch((error) => {
            // A draft may reference a node not published yet: then it opens without those types.
            if (error instanceof ApiError && error.status === 422) return dsl.get<WorkflowDefinition>(path, { version: candidate });
            throw error;
          });
          break;
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 404)) {
            setMessage(describe(error));
            break;
          }
        }
      }
      if (cancelled) return;
      const known: Record<string, NodeDefinition> = {};
      for (const state of Object.values(found?.states ?? {})) {
        if (state.resourceId && state.nodeDefinition) known[state.resourceId] = state.nodeDefinition;
      }
      // Set together (one render, one layout): the graph is drawn once its node types are known.
      if (found) {
        setDef(unenriched(strip(found)));
        setExists(true);
        setLibrary(known);
      }
      setLoaded(true);
    })();
    dsl
      .get<SchemaDoc>("/nodeTypes")
      .then((doc) => !cancelled && setSchemas(doc))
      .catch(() => undefined);
    dsl
      .get<{ items: { id: string; type?: string }[] }>("/nodeDefinition", { pageSize: 200 })
      .then((page) => !cancelled && setReusable(page.items))
      .catch(() => undefined);
    void loadVersions();
    return () => {
      cancelled = true;
    };
  }, [id, loadVersions]);

  const edges = useMemo(() => edgesOf(def, library), [def, library]);
  const loose = useMemo(() => disconnected(def, edges), [def, edges]);
  const errorsByInstance = useMemo(() => {
    const counts: Record<string, number> = {};
    for (const problem of problems) {
      const target = pointerTarget(problem.pointer);
      if (target.instance) counts[target.instance] = (counts[target.instance] ?? 0) + 1;
    }
    return counts;
  }, [problems]);

  const fail = (error: unknown) => {
    if (error instanceof ApiError && error.problem.errors?.length) {
      setProblems(error.problem.errors);
      const first = pointerTarget(error.problem.errors[0].pointer);
      if (first.instance && first.instance in def.states) {
        setSelected(first.instance);
        setTab("inspect");
      }
    }
    setMessage(describe(error));
  };

  const save = async (): Promise<boolean> => {
    setMessage(null);
    try {
      if (exists) await dsl.put("/workflowDefinition", strip(def));
      else await dsl.post("/workflowDefinition", strip(def));
      setExists(true);
      setDirty(false);
      setProblems([]);
      setMessage("Saved the SNAPSHOT.");
      return true;
    } catch (error) {
      fail(error);
      return false;
    }
  };

  const validate = async () => {
    setMessage(null);
    try {
      const result = await dsl.post<{ valid: boolean; disconnectedStates?: string[] }>("/workflowDefinition/validate", strip(def));
      setProblems([]);
      const extra = result.disconnectedStates?.length ? ` Disconnected: ${result.disconnectedStates.join(", ")}.` : "";
      setMessage(`Valid.${extra}`);
    } catch (error) {
      if (missingRoute(error)) setMessage("This dsl-store has no validate route yet; Save and Publish run the same checks.");
      else fail(error);
    }
  };

  const publish = async () => {
    if ((dirty || !exists) && !(await save())) return;
    try {
      const published = await dsl.post<WorkflowDefinition>(`/workflowDefinition/${encodeURIComponent(id)}/publishWorkflow`);
      setProblems([]);
      setMessage(`Published version ${published.version}.`);
      await loadVersions();
    } catch (error) {
      fail(error);
    }
  };

  const activate = async (version: string) => {
    try {
      await dsl.post(`/workflowDefinition/${encodeURIComponent(id)}/activate`, undefined, { version });
      setMessage(`Version ${version} is ACTIVE.`);
      await loadVersions();
    } catch (error) {
      fail(error);
    }
  };

  const add = (type: string | null, resourceId?: string) => {
    const name = newName.trim();
    try {
      const state: State = resourceId ? { resourceId } : { nodeDefinition: emptyNode(type ?? "SCRIPT", name) };
      setDef((current) => addState(current, name, state));
      setDirty(true);
      setSelected(name);
      setTab("inspect");
      setNewName("");
      setMessage(null);
    } catch (error) {
      setMessage((error as Error).message);
    }
  };

  const state = selected ? def.states[selected] : undefined;
  const fieldErrors = useMemo(() => {
    const result: Record<string, string> = {};
    for (const problem of problems) {
      const target = pointerTarget(problem.pointer);
      if (target.instance === selected && target.field !== undefined) result[target.field] = problem.message;
      if (!target.instance && target.field) result[`/${target.field}`] = problem.message;
    }
    return result;
  }, [problems, selected]);

  if (!loaded) return <main className="page">Loading {id}…</main>;

  const others = Object.keys(def.states);
  const type = state ? typeOf(state, library) : null;
  const node = state?.nodeDefinition;

  return (
    <main className="designer">
      <section className="palette" aria-label="palette">
        <h2>Add a node</h2>
        <label htmlFor="instance-name">Instance name</label>
        <input id="instance-name" value={newName} onChange={(e) => setNewName(e.target.value)} placeholder="e.g. greet" />
        <div className="palette-types">
          {(schemas ? Object.keys(schemas.types).sort() : [...NODE_TYPES]).map((t) => (
            <button key={t} className={`palette-item type-${t}`} aria-label={`Add ${t}`} disabled={!newName.trim()} onClick={() => add(t)}>
              <span aria-hidden>{TYPE_ICONS[t]}</span> {t}
            </button>
          ))}
        </div>
        <h3>Reusable nodes</h3>
        {reusable.length === 0 && <p className="muted">None listed; reference one by id in the inspector.</p>}
        {reusable.map((item) => (
          <button key={item.id} className="palette-item" disabled={!newName.trim()} onClick={() => add(null, item.id)}>
            {item.id} {item.type ? `(${item.type})` : ""}
          </button>
        ))}
      </section>
      <section className="canvas">
        <div className="toolbar">
          <h1>{id}</h1>
          {dirty && <span className="badge">unsaved</span>}
          <button onClick={() => void save()}>Save</button>
          <button onClick={() => void validate()}>Validate</button>
          <button onClick={() => void publish()}>Publish</button>
          <button onClick={() => setTab("run")}>Run…</button>
        </div>
        {message && (
          <div className="notice" role="status">
            {message}
          </div>
        )}
        {problems.length > 0 && (
          <ul className="problems" aria-label="validation errors">
            {problems.map((problem, index) => {
              const target = pointerTarget(problem.pointer);
              return (
                <li key={index}>
                  <button className="link" onClick={() => target.instance && setSelected(target.instance)}>
                    {problem.pointer || "/"}
                  </button>
                  : {problem.message}
                </li>
              );
            })}
          </ul>
        )}
        {others.length === 0 ? (
          <div className="empty-canvas">Empty canvas: name a node and pick its type in the palette.</div>
        ) : (
          <GraphView
            definition={def}
            library={library}
            selected={selected}
            selectedEdge={selectedEdge?.id}
            errorsByInstance={errorsByInstance}
            runStates={tab === "test" && trace ? nodeStatuses(trace) : undefined}
            path={tab === "test" && trace ? pathOf(trace) : undefined}
            editable
            onSelect={(name) => {
              setSelected(name);
              if (name) setTab("inspect");
            }}
            onSelectEdge={setSelectedEdge}
            onConnect={(source, target) => edit((current) => connect(current, source, target, library))}
            onDeleteEdges={(deleted) => edit((current) => deleted.reduce((acc, e) => removeEdge(acc, e), current))}
          />
        )}
        {selectedEdge && (
          <div className="edge-bar">
            edge {selectedEdge.source} → {selectedEdge.target} {selectedEdge.label ? `(${selectedEdge.label})` : ""}
            <button
              onClick={() => {
                edit((current) => removeEdge(current, selectedEdge));
                setSelectedEdge(null);
              }}
            >
              Remove edge
            </button>
          </div>
        )}
        {loose.length > 0 && <div className="muted">Disconnected states (run on demand): {loose.join(", ")}</div>}
      </section>
      <section className="side">
        <div className="tabs" role="tablist">
          {(["inspect", "json", "versions", "test", "run"] as Tab[]).map((t) => (
            <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? "active" : ""} onClick={() => setTab(t)}>
              {{ inspect: "Inspector", json: "JSON", versions: "Versions", test: "Test", run: "Run" }[t]}
            </button>
          ))}
        </div>
        {tab === "inspect" && !state && (
          <div className="inspector">
            <h2>Workflow</h2>
            <label htmlFor="wf-comment">comment</label>
            <input id="wf-comment" value={def.comment ?? ""} onChange={(e) => edit((c) => ({ ...c, comment: e.target.value || null }))} />
            <WorkflowSelect label="startNode" value={def.startNode} options={others} error={fieldErrors["/startNode"]} onChange={(v) => edit((c) => ({ ...c, startNode: v }))} />
            <WorkflowSelect
              label="defaultFailureNode"
              value={def.defaultFailureNode}
              options={others}
              error={fieldErrors["/defaultFailureNode"]}
              onChange={(v) => edit((c) => ({ ...c, defaultFailureNode: v }))}
            />
            <p className="muted">Select a node on the canvas to edit it.</p>
          </div>
        )}
        {tab === "inspect" && state && selected && (
          <div className="inspector" aria-label={`inspector ${selected}`}>
            <h2>
              {selected} <span className="muted">{type}</span>
            </h2>
            <div className="button-row">
              <button onClick={() => edit((c) => ({ ...c, startNode: selected }))} disabled={def.startNode === selected}>
                Set as start
              </button>
              <button onClick={() => edit((c) => ({ ...c, defaultFailureNode: selected }))} disabled={def.defaultFailureNode === selected}>
                Set as default failure
              </button>
              <button
                onClick={() =>
                  edit((c) => {
                    const post = c.postWorkflowCompletionNodes ?? [];
                    return { ...c, postWorkflowCompletionNodes: post.includes(selected) ? post.filter((n) => n !== selected) : [...post, selected] };
                  })
                }
              >
                {(def.postWorkflowCompletionNodes ?? []).includes(selected) ? "Remove from post-completion" : "Run after completion"}
              </button>
              <button
                className="danger"
                onClick={() => {
                  edit((c) => removeState(c, selected));
                  setSelected(null);
                }}
              >
                Remove node
              </button>
            </div>
            <WorkflowSelect
              label="nextNode"
              value={state.nextNode}
              options={others.filter((n) => n !== selected)}
              error={fieldErrors.nextNode}
              onChange={(v) => edit((c) => updateState(c, selected, { ...c.states[selected], nextNode: v, ...(v ? { end: false } : {}) }))}
            />
            <div className="field">
              <label htmlFor="state-end">end</label>
              <input id="state-end" type="checkbox" checked={!!state.end} onChange={(e) => edit((c) => updateState(c, selected, { ...c.states[selected], end: e.target.checked }))} />
            </div>
            {!node && (
              <>
                <div className={`field ${fieldErrors.resourceId ? "field-error" : ""}`}>
                  <label htmlFor="state-resource">resourceId</label>
                  <input id="state-resource" value={state.resourceId ?? ""} onChange={(e) => edit((c) => updateState(c, selected, { ...c.states[selected], resourceId: e.target.value }))} />
                  {fieldErrors.resourceId && <div className="error-text">{fieldErrors.resourceId}</div>}
                </div>
                <div className="field">
                  <label htmlFor="state-resource-version">resourceVersion</label>
                  <input
                    id="state-resource-version"
                    value={state.resourceVersion ?? "LATEST"}
                    onChange={(e) => edit((c) => updateState(c, selected, { ...c.states[selected], resourceVersion: e.target.value }))}
                  />
                </div>
              </>
            )}
            <div className="field">
              <label>parameters (values for this instance)</label>
              <ParamsEditor value={state.parameters ?? {}} onChange={(p) => edit((c) => updateState(c, selected, { ...c.states[selected], parameters: p }))} />
              {fieldErrors.parameters && <div className="error-text">{fieldErrors.parameters}</div>}
            </div>
            {node && <h3>Node definition ({node.type})</h3>}
            {node && schemas?.types[node.type] && (
              <SchemaForm
                schema={schemas.types[node.type]}
                defs={schemas.$defs}
                value={node as Record<string, Json | undefined>}
                errors={fieldErrors}
                onChange={(next) =>
                  edit((c) => updateState(c, selected, { ...c.states[selected], nodeDefinition: { ...(next as NodeDefinition), id: node.id, type: node.type } }))
                }
              />
            )}
            {node && !schemas?.types[node.type] && (
              <CodeEditor
                label="node definition"
                value={JSON.stringify(node, null, 2)}
                onChange={(text) => {
                  try {
                    const parsed = JSON.parse(text) as NodeDefinition;
                    edit((c) => updateState(c, selected, { ...c.states[selected], nodeDefinition: { ...parsed, id: node.id, type: node.type } }));
                  } catch {
                    // keep typing: applied once it parses
                  }
                }}
              />
            )}
            {!node && library[state.resourceId ?? ""] && (
              <>
                <h3>Referenced definition</h3>
                <CodeEditor label="referenced definition" readOnly value={JSON.stringify(library[state.resourceId ?? ""], null, 2)} />
              </>
            )}
          </div>
        )}
        {tab === "json" && <RawJson def={def} onChange={(next) => edit(() => next)} />}
        {tab === "versions" && <Versions id={id} versions={versions} onActivate={activate} onChanged={loadVersions} onMessage={setMessage} />}
        {tab === "test" && <TestRun def={def} library={library} onTrace={setTrace} />}
        {tab === "run" && <StartRun definitionId={id} versions={versions} />}
      </section>
    </main>
  );
}

function WorkflowSelect(props: { label: string; value?: string | null; options: string[]; error?: string; onChange: (value: string | null) => void }) {
  const id = `select-${props.label}`;
  return (
    <div className={`field ${props.error ? "field-error" : ""}`} data-field={props.label}>
      <label htmlFor={id}>{props.label}</label>
      <select id={id} value={props.value ?? ""} onChange={(e) => props.onChange(e.target.value || null)}>
        <option value="">(none)</option>
        {props.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
      {props.error && (
        <div className="error-text" role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}

function ParamsEditor({ value, onChange }: { value: Record<string, Json>; onChange: (value: Record<string, Json>) => void }) {
  const [text, setText] = useState(JSON.stringify(value, null, 2));
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <>
      <CodeEditor
        label="parameters"
        value={text}
        minHeight="3em"
        onChange={(next) => {
          setText(next);
          try {
            const parsed = JSON.parse(next || "{}") as Record<string, Json>;
            setProblem(null);
            onChange(parsed);
          } catch (error) {
            setProblem((error as Error).message);
          }
        }}
      />
      {problem && <div className="expr-error">JSON: {problem}</div>}
    </>
  );
}

/** The definition as JSON, both ways: edits here update the graph once they parse. */
function RawJson({ def, onChange }: { def: WorkflowDefinition; onChange: (def: WorkflowDefinition) => void }) {
  const shown = JSON.stringify(def, null, 2);
  const [text, setText] = useState(shown);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    setText((current) => {
      try {
        if (JSON.stringify(JSON.parse(current)) === JSON.stringify(def)) return current;
      } catch {
        // an unparsable draft is replaced only by a change from elsewhere
      }
      return shown;
    });
  }, [def, shown]);
  return (
    <div className="raw-json">
      <CodeEditor
        label="definition JSON"
        value={text}
        minHeight="30em"
        onChange={(next) => {
          setText(next);
          try {
            const parsed = JSON.parse(next) as WorkflowDefinition;
            if (!parsed || typeof parsed !== "object" || typeof parsed.states !== "object") throw new Error("a definition needs `states`");
            setProblem(null);
            onChange(parsed);
          } catch (error) {
            setProblem((error as Error).message);
          }
        }}
      />
      {problem && <div className="expr-error">JSON: {problem}</div>}
    </div>
  );
}

function Versions(props: {
  id: string;
  versions: VersionInfo[];
  onActivate: (version: string) => void;
  onChanged: () => Promise<void>;
  onMessage: (text: string) => void;
}) {
  const { id, versions } = props;
  const choices = ["SNAPSHOT", ...versions.map((v) => v.version)];
  const [left, setLeft] = useState(versions.length ? versions[versions.length - 1].version : "SNAPSHOT");
  const [right, setRight] = useState("SNAPSHOT");
  const [rows, setRows] = useState<ReturnType<typeof diffLines> | null>(null);
  const [weights, setWeights] = useState<Record<string, string>>({});

  const compare = async () => {
    try {
      const [a, b] = await Promise.all(
        [left, right].map((version) => dsl.get<WorkflowDefinition>(`/workflowDefinition/${encodeURIComponent(id)}`, { version })),
      );
      setRows(diffLines(canonical(strip(a)).split("\n"), canonical(strip(b)).split("\n")));
    } catch (error) {
      props.onMessage(describe(error));
    }
  };

  const split = async () => {
    const entries = Object.entries(weights)
      .filter(([, w]) => w.trim() !== "" && Number(w) > 0)
      .map(([version, weight]) => ({ version, weight: Number(weight) }));
    try {
      await dsl.put(`/workflowDefinition/${encodeURIComponent(id)}/traffic`, { split: entries });
      props.onMessage("Traffic split applied.");
      await props.onChanged();
    } catch (error) {
      props.onMessage(describe(error));
    }
  };

  return (
    <div className="versions">
      <h2>Versions</h2>
      {versions.length === 0 && <p className="muted">Nothing published yet.</p>}
      {versions.length > 0 && (
        <table className="list">
          <thead>
            <tr>
              <th>version</th>
              <th>published</th>
              <th>state</th>
              <th>weight %</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={v.version}>
                <td>{v.version}</td>
                <td>{v.publishedAt ? new Date(v.publishedAt).toLocaleString() : ""}</td>
                <td>{v.active ? "ACTIVE" : ""}</td>
                <td>
                  <input
                    aria-label={`weight of version ${v.version}`}
                    className="narrow"
                    value={weights[v.version] ?? (v.weight != null ? String(v.weight) : "")}
                    onChange={(e) => setWeights({ ...weights, [v.version]: e.target.value })}
                  />
                </td>
                <td>
                  <button onClick={() => props.onActivate(v.version)} disabled={!!v.active && (v.weight == null || v.weight === 100)}>
                    Activate {v.version}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {versions.length > 1 && <button onClick={() => void split()}>Apply traffic split</button>}
      <h3>Compare</h3>
      <div className="button-row">
        <select aria-label="left version" value={left} onChange={(e) => setLeft(e.target.value)}>
          {choices.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
        <select aria-label="right version" value={right} onChange={(e) => setRight(e.target.value)}>
          {choices.map((c) => (
            <option key={c}>{c}</option>
          ))}
        </select>
        <button onClick={() => void compare()}>Diff</button>
      </div>
      {rows && (
        <table className="diff" aria-label="version diff">
          <thead>
            <tr>
              <th>{left}</th>
              <th>{right}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, index) => (
              <tr key={index} className={`diff-${row.change}`}>
                <td>
                  <pre>{row.left ?? ""}</pre>
                </td>
                <td>
                  <pre>{row.right ?? ""}</pre>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function StartRun({ definitionId, versions }: { definitionId: string; versions?: VersionInfo[] }) {
  const [params, setParams] = useState("{}");
  const [workflowId, setWorkflowId] = useState("");
  const [version, setVersion] = useState("ACTIVE");
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    setMessage(null);
    try {
      const body: Record<string, unknown> = {
        workflow: { id: definitionId, version },
        params: JSON.parse(params || "{}") as Json,
        syncTimeoutMs: 5000,
      };
      if (workflowId.trim()) body.workflowId = workflowId.trim();
      const answer = await gateway.post<{ workflowId: string; workflowStatus: string }>("/v3/workflow/start", body);
      rememberRun({ workflowId: answer.workflowId, definitionId, definitionVersion: version });
      navigate(`/runs/${encodeURIComponent(answer.workflowId)}`);
    } catch (error) {
      setMessage(error instanceof SyntaxError ? `params: ${error.message}` : describe(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="start-run">
      <h2>Start a run of {definitionId}</h2>
      <label htmlFor="run-id">Run id (optional)</label>
      <input id="run-id" value={workflowId} onChange={(e) => setWorkflowId(e.target.value)} />
      <label htmlFor="run-version">Version</label>
      <select id="run-version" value={version} onChange={(e) => setVersion(e.target.value)}>
        <option>ACTIVE</option>
        <option>LATEST</option>
        {(versions ?? []).map((v) => (
          <option key={v.version}>{v.version}</option>
        ))}
      </select>
      <label>Params (JSON)</label>
      <CodeEditor label="params" value={params} onChange={setParams} minHeight="5em" />
      <button onClick={() => void start()} disabled={busy}>
        Start run
      </button>
      {message && (
        <div className="error-text" role="alert">
          {message}
        </div>
      )}
    </div>
  );
}

interface TestResult {
  workflowStatus: string;
  disposition?: unknown;
  errorMessage?: string | null;
  context?: unknown;
  trace: { instanceName: string; nodeType: string; status: string; output?: unknown; error?: string | null }[];
}

/** Mocks to start from: every HTTP and CHILD instance answers a placeholder output. */
export function mockTemplate(def: WorkflowDefinition, library: Record<string, NodeDefinition>): Record<string, Json> {
  const mocks: Record<string, Json> = {};
  for (const [name, state] of Object.entries(def.states)) {
    const type = typeOf(state, library);
    if (type === "HTTP" || type === "CHILD") mocks[name] = { output: {} };
  }
  return mocks;
}

/** A test run of the draft on the real engine, outside world mocked (POST /v3/workflow/test). */
function TestRun(props: { def: WorkflowDefinition; library: Record<string, NodeDefinition>; onTrace: (trace: TimelineEntry[] | null) => void }) {
  const [params, setParams] = useState("{}");
  const [mocks, setMocks] = useState(() => JSON.stringify(mockTemplate(props.def, props.library), null, 2));
  const [selections, setSelections] = useState("{}");
  const [result, setResult] = useState<TestResult | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    setMessage(null);
    try {
      const answer = await gateway.post<TestResult>("/v3/workflow/test", {
        definition: strip(props.def),
        params: JSON.parse(params || "{}") as Json,
        mocks: JSON.parse(mocks || "{}") as Json,
        selections: JSON.parse(selections || "{}") as Json,
      });
      setResult(answer);
      props.onTrace(answer.trace.map((t) => ({ instanceName: t.instanceName, nodeType: t.nodeType, status: t.status, error: t.error })));
    } catch (error) {
      setResult(null);
      props.onTrace(null);
      setMessage(error instanceof SyntaxError ? `JSON: ${error.message}` : missingRoute(error) ? "This gateway has no test route yet." : describe(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="test-run">
      <h2>Test the draft</h2>
      <p className="muted">Runs on the real engine; HTTP nodes with a mock make no call, WAIT timers fire at once, INSTRUCTION steps take the selections.</p>
      <label>params</label>
      <CodeEditor label="test params" value={params} onChange={setParams} minHeight="3em" />
      <label>mocks (instance: output, response or error)</label>
      <CodeEditor label="test mocks" value={mocks} onChange={setMocks} minHeight="5em" />
      <label>selections (instance: optionId: value)</label>
      <CodeEditor label="test selections" value={selections} onChange={setSelections} minHeight="3em" />
      <button onClick={() => void run()} disabled={busy}>
        Run test
      </button>
      {message && (
        <div className="error-text" role="alert">
          {message}
        </div>
      )}
      {result && (
        <>
          <h3>
            Result: <span className={`status status-${result.workflowStatus}`}>{result.workflowStatus}</span>
          </h3>
          {result.disposition !== undefined && result.disposition !== null && <div>disposition: {JSON.stringify(result.disposition)}</div>}
          {result.errorMessage && <div className="error-text">error: {result.errorMessage}</div>}
          <table className="list" aria-label="test trace">
            <thead>
              <tr>
                <th>#</th>
                <th>instance</th>
                <th>status</th>
                <th>output or error</th>
              </tr>
            </thead>
            <tbody>
              {result.trace.map((step, index) => (
                <tr key={index}>
                  <td>{index + 1}</td>
                  <td>{step.instanceName}</td>
                  <td className={`status-${step.status}`}>{step.status}</td>
                  <td>
                    <code>{step.error ?? JSON.stringify(step.output)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </div>
  );
}

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { describe, dsl, followRun, gateway, recentRuns, rememberRun } from "../api";
import { CodeEditor } from "../components/CodeEditor";
import { GraphView } from "../components/GraphView";
import { groupTimeline, itemKey, itemOutput, parseInstance, runPath, runStatuses } from "../items";
import { type NodeDefinition, type TimelineEntry, type WorkflowDefinition } from "../model";
import { Link } from "../router";

interface Detail {
  workflowId: string;
  workflowStatus: string;
  currentNode?: string | null;
  disposition?: unknown;
  errorMessage?: string | null;
  view?: unknown;
  context?: Record<string, unknown> | null;
  definitionId?: string | null;
  definitionVersion?: string | null;
}

export function RunPage({ workflowId }: { workflowId: string }) {
  const known = recentRuns().find((r) => r.workflowId === workflowId);
  const query = new URLSearchParams(window.location.search);
  const [definitionId, setDefinitionId] = useState(query.get("definition") ?? known?.definitionId ?? "");
  const [definitionVersion, setDefinitionVersion] = useState(query.get("version") ?? known?.definitionVersion ?? "LATEST");
  const [detail, setDetail] = useState<Detail | null>(null);
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  const [def, setDef] = useState<WorkflowDefinition | null>(null);
  const [library, setLibrary] = useState<Record<string, NodeDefinition>>({});
  const [selected, setSelected] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const pending = useRef<number | null>(null);

  const refresh = useCallback(async () => {
    try {
      const [state, nodes] = await Promise.all([
        gateway.get<Detail>(`/v3/workflow/${encodeURIComponent(workflowId)}`),
        gateway.get<{ nodes: TimelineEntry[] }>(`/v3/workflow/${encodeURIComponent(workflowId)}/timeline`).catch(() => ({ nodes: [] })),
      ]);
      setDetail(state);
      setTimeline(nodes.nodes);
      // The gateway names the run's definition; the query string is only a fallback for older gateways.
      if (state.definitionId) setDefinitionId((current) => current || state.definitionId!);
      if (state.definitionVersion && !query.has("version")) setDefinitionVersion(state.definitionVersion);
    } catch (error) {
      setMessage(describe(error));
    }
  }, [workflowId]);

  useEffect(() => {
    void refresh();
    const controller = new AbortController();
    void followRun(
      workflowId,
      (event) => {
        if (event.kind === "connected") setLive(true);
        if (event.kind === "disconnected") setLive(false);
        // Events come in bursts: one reload per burst shows the same truth.
        if (pending.current === null) {
          pending.current = window.setTimeout(() => {
            pending.current = null;
            void refresh();
          }, 150);
        }
      },
      controller.signal,
    );
    return () => controller.abort();
  }, [workflowId, refresh]);

  useEffect(() => {
    if (!definitionId) return;
    let cancelled = false;
    rememberRun({ workflowId, definitionId });
    const path = `/workflowDefinition/${encodeURIComponent(definitionId)}`;
    const version = /^\d+$/.test(definitionVersion) || definitionVersion === "ACTIVE" ? definitionVersion : "LATEST";
    dsl
      .get<WorkflowDefinition>(path, { version, enrichNodeDefinition: true })
      .catch(() => dsl.get<WorkflowDefinition>(path, { version: "LATEST", enrichNodeDefinition: true }))
      .then((found) => {
        if (cancelled) return;
        const known: Record<string, NodeDefinition> = {};
        for (const state of Object.values(found.states ?? {})) if (state.resourceId && state.nodeDefinition) known[state.resourceId] = state.nodeDefinition;
        setLibrary(known);
        setDef(found);
      })
      .catch((error) => setMessage(describe(error)));
    return () => {
      cancelled = true;
    };
  }, [definitionId, definitionVersion, workflowId]);

  const statuses = useMemo(
    () => runStatuses(def, library, timeline, detail?.currentNode, detail?.workflowStatus, detail?.context),
    [def, library, timeline, detail],
  );
  const path = useMemo(() => runPath(def, library, timeline), [def, library, timeline]);

  const act = async (what: "retry" | "terminate") => {
    setMessage(null);
    try {
      if (what === "retry") await gateway.put(`/v3/workflow/retry/${encodeURIComponent(workflowId)}`, selected ? { fromNode: selected, syncTimeoutMs: 5000 } : { syncTimeoutMs: 5000 });
      else await gateway.del(`/v3/workflow/terminate/${encodeURIComponent(workflowId)}`);
      await refresh();
    } catch (error) {
      setMessage(describe(error));
    }
  };

  const status = detail?.workflowStatus;
  const selectedItem = selected ? parseInstance(selected) : null;
  // An item's visits are every visit naming its indexes (`a[3]`, `b[3]`, ...), not only its first.
  const selectedEntries = selectedItem?.indexes.length
    ? timeline.filter((t) => itemKey(parseInstance(t.instanceName).indexes) === itemKey(selectedItem.indexes))
    : timeline.filter((t) => t.instanceName === selected);
  const output = !selected
    ? undefined
    : selectedItem?.indexes.length
      ? itemOutput(def, library, detail?.context, selected)
      : detail?.context
        ? detail.context[selected]
        : undefined;
  const selectedStatus = selected ? (statuses[selected]?.status ?? selectedEntries[selectedEntries.length - 1]?.status) : undefined;

  return (
    <main className="run-page">
      <div className="toolbar">
        <h1>
          Run {workflowId} {status && <span className={`status status-${status}`}>{status}</span>}
        </h1>
        <span className={`live ${live ? "on" : ""}`}>{live ? "live" : "not live"}</span>
        <button onClick={() => void act("retry")} disabled={status !== "FAILED" && status !== "TERMINATED"}>
          Retry{selected ? ` from ${selected}` : ""}
        </button>
        <button className="danger" onClick={() => void act("terminate")} disabled={!status || ["COMPLETED", "FAILED", "TERMINATED"].includes(status)}>
          Terminate
        </button>
        {status === "WAITING" && <Link to="/tasks">Answer in Tasks</Link>}
      </div>
      {message && (
        <div className="notice" role="status">
          {message}
        </div>
      )}
      {detail && (
        <div className="run-summary">
          <span>current node: {detail.currentNode ?? "—"}</span>
          {detail.disposition !== undefined && detail.disposition !== null && <span>disposition: {JSON.stringify(detail.disposition)}</span>}
          {detail.errorMessage && <span className="error-text">error: {detail.errorMessage}</span>}
        </div>
      )}
      <div className="run-body">
        <section className="canvas">
          {def ? (
            <GraphView definition={def} library={library} runStates={statuses} path={path} selected={selected} onSelect={setSelected} />
          ) : (
            <form
              className="toolbar"
              onSubmit={(e) => {
                e.preventDefault();
                const value = (e.currentTarget.elements.namedItem("definition") as HTMLInputElement).value.trim();
                setDefinitionId(value);
              }}
            >
              <label htmlFor="definition">Definition id (to draw the graph)</label>
              <input id="definition" name="definition" defaultValue={definitionId} />
              <button type="submit">Draw</button>
            </form>
          )}
        </section>
        <section className="side">
          {selected ? (
            <>
              <h2>
                {selected} <span className="muted">{selectedStatus ?? "not visited"}</span>
              </h2>
              {statuses[selected]?.summary && <p className="item-summary">{statuses[selected]?.summary}</p>}
              <h3>Output</h3>
              <CodeEditor label={`output of ${selected}`} readOnly value={output === undefined ? "(none)" : JSON.stringify(output, null, 2)} />
              <h3>Attempts</h3>
              <ul>
                {selectedEntries.map((entry, index) => (
                  <li key={index}>
                    {selectedItem?.indexes.length ? `${entry.instanceName} · ` : ""}
                    {entry.status} · attempt {entry.attempt ?? 1} · {entry.durationMs ?? "?"} ms{entry.error ? ` · ${entry.error}` : ""}
                  </li>
                ))}
              </ul>
            </>
          ) : (
            <>
              <h2>Context</h2>
              <CodeEditor label="context" readOnly value={JSON.stringify(detail?.context ?? {}, null, 2)} minHeight="20em" />
            </>
          )}
        </section>
      </div>
      <section className="timeline" aria-label="timeline">
        <h2>Timeline</h2>
        <Timeline entries={timeline} onSelect={setSelected} />
      </section>
    </main>
  );
}

function Timeline({ entries, onSelect }: { entries: TimelineEntry[]; onSelect: (name: string) => void }) {
  const rows = useMemo(() => groupTimeline(entries), [entries]);
  const starts = entries.map((e) => (e.startedAt ? Date.parse(e.startedAt) : NaN)).filter((t) => !Number.isNaN(t));
  const ends = entries.map((e) => (e.finishedAt ? Date.parse(e.finishedAt) : NaN)).filter((t) => !Number.isNaN(t));
  const t0 = starts.length ? Math.min(...starts) : 0;
  const span = Math.max(1, (ends.length ? Math.max(...ends) : t0) - t0);
  if (entries.length === 0) return <p className="muted">No node has finished yet.</p>;
  return (
    <table className="list timeline-table">
      <thead>
        <tr>
          <th>#</th>
          <th>instance</th>
          <th>type</th>
          <th>status</th>
          <th>attempt</th>
          <th>duration</th>
          <th className="bar-col">when</th>
          <th>error</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row, index) => {
          const indent = { paddingLeft: `${0.4 + row.depth * 1.2}em` };
          if (row.kind === "item") {
            return (
              <tr key={`item-${index}`} className="timeline-item" data-item={row.label} onClick={() => onSelect(row.label)}>
                <td />
                <td style={indent}>▸ {row.label}</td>
                <td>item</td>
                <td className={`status-${row.status}`}>{row.status}</td>
                <td>{row.visits} visit{row.visits > 1 ? "s" : ""}</td>
                <td>{row.durationMs ?? "?"} ms</td>
                <td className="bar-col" />
                <td />
              </tr>
            );
          }
          const entry = row.entry;
          const start = entry.startedAt ? Date.parse(entry.startedAt) - t0 : 0;
          const width = Math.max(0.5, ((entry.durationMs ?? 0) / span) * 100);
          return (
            <tr key={`visit-${row.position}`} onClick={() => onSelect(entry.instanceName)}>
              <td>{row.position + 1}</td>
              <td style={indent}>{entry.instanceName}</td>
              <td>{entry.nodeType}</td>
              <td className={`status-${entry.status}`}>{entry.status}</td>
              <td>{entry.attempt ?? 1}</td>
              <td>{entry.durationMs ?? "?"} ms</td>
              <td className="bar-col">
                <div className="bar" style={{ marginLeft: `${(start / span) * 100}%`, width: `${width}%` }} />
              </td>
              <td className="error-text">{entry.error ?? ""}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

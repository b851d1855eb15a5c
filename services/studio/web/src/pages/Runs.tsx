import { useEffect, useState } from "react";
import { describe, gateway, missingRoute, recentRuns } from "../api";
import { Link, navigate } from "../router";

export const STATUSES = ["CREATED", "RUNNING", "WAITING", "SCHEDULER_WAITING", "COMPLETED", "FAILED", "TERMINATED"];

export interface RunSummary {
  workflowId: string;
  workflowStatus: string;
  definitionId?: string | null;
  definitionVersion?: string | null;
  currentNode?: string | null;
  startedAt?: string | null;
  closedAt?: string | null;
}

export function runLink(run: { workflowId: string; definitionId?: string | null; definitionVersion?: string | null }): string {
  const query = new URLSearchParams();
  if (run.definitionId) query.set("definition", run.definitionId);
  if (run.definitionVersion) query.set("version", run.definitionVersion);
  const text = query.toString();
  return `/runs/${encodeURIComponent(run.workflowId)}${text ? `?${text}` : ""}`;
}

export function Runs() {
  const [statuses, setStatuses] = useState<string[]>([]);
  const [definitionId, setDefinitionId] = useState("");
  const [definitionVersion, setDefinitionVersion] = useState("");
  const [startedAfter, setStartedAfter] = useState("");
  const [startedBefore, setStartedBefore] = useState("");
  const [runs, setRuns] = useState<RunSummary[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [open, setOpen] = useState("");

  const load = async (token?: string) => {
    try {
      const page = await gateway.get<{ runs: RunSummary[]; nextPageToken?: string | null }>("/v3/workflows", {
        status: statuses,
        definitionId,
        definitionVersion,
        startedAfter: startedAfter ? new Date(startedAfter).toISOString() : undefined,
        startedBefore: startedBefore ? new Date(startedBefore).toISOString() : undefined,
        pageSize: 50,
        pageToken: token,
      });
      setRuns((current) => (token && current ? [...current, ...page.runs] : page.runs));
      setNext(page.nextPageToken ?? null);
      setNotice(null);
    } catch (error) {
      setRuns(recentRuns().map((r) => ({ workflowId: r.workflowId, workflowStatus: "", definitionId: r.definitionId })));
      setNotice(missingRoute(error) ? "This gateway does not list runs yet: showing the runs opened in this tab." : describe(error));
    }
  };
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [statuses, definitionId, definitionVersion, startedAfter, startedBefore]);

  return (
    <main className="page">
      <h1>Runs</h1>
      <div className="filters" aria-label="filters">
        <fieldset>
          <legend>status</legend>
          {STATUSES.map((s) => (
            <label key={s} className="check">
              <input type="checkbox" checked={statuses.includes(s)} onChange={(e) => setStatuses(e.target.checked ? [...statuses, s] : statuses.filter((x) => x !== s))} />
              {s}
            </label>
          ))}
        </fieldset>
        <label htmlFor="f-def">definition</label>
        <input id="f-def" value={definitionId} onChange={(e) => setDefinitionId(e.target.value)} />
        <label htmlFor="f-ver">version</label>
        <input id="f-ver" className="narrow" value={definitionVersion} onChange={(e) => setDefinitionVersion(e.target.value)} />
        <label htmlFor="f-after">started after</label>
        <input id="f-after" type="datetime-local" value={startedAfter} onChange={(e) => setStartedAfter(e.target.value)} />
        <label htmlFor="f-before">started before</label>
        <input id="f-before" type="datetime-local" value={startedBefore} onChange={(e) => setStartedBefore(e.target.value)} />
        <button onClick={() => void load()}>Refresh</button>
      </div>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          if (open.trim()) navigate(`/runs/${encodeURIComponent(open.trim())}`);
        }}
      >
        <label htmlFor="open-run">Open run by id</label>
        <input id="open-run" value={open} onChange={(e) => setOpen(e.target.value)} />
        <button type="submit">Open</button>
      </form>
      {notice && <div className="notice">{notice}</div>}
      {runs && runs.length === 0 && <p className="muted">No runs match.</p>}
      {runs && runs.length > 0 && (
        <table className="list">
          <thead>
            <tr>
              <th>run</th>
              <th>status</th>
              <th>definition</th>
              <th>version</th>
              <th>current node</th>
              <th>started</th>
              <th>closed</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((run) => (
              <tr key={run.workflowId}>
                <td>
                  <Link to={runLink(run)}>{run.workflowId}</Link>
                </td>
                <td className={`status-${run.workflowStatus}`}>{run.workflowStatus}</td>
                <td>{run.definitionId ?? ""}</td>
                <td>{run.definitionVersion ?? ""}</td>
                <td>{run.currentNode ?? ""}</td>
                <td>{run.startedAt ? new Date(run.startedAt).toLocaleString() : ""}</td>
                <td>{run.closedAt ? new Date(run.closedAt).toLocaleString() : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {next && <button onClick={() => void load(next)}>More</button>}
    </main>
  );
}

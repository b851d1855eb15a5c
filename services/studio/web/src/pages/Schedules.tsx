import { useEffect, useState } from "react";
import { describe, gateway, missingRoute } from "../api";

interface Schedule {
  scheduleId: string;
  workflow: { id: string; version?: string | null };
  cron?: string | null;
  intervalSeconds?: number | null;
  paused?: boolean;
  overlap?: string;
  nextRunTimes?: string[];
  recentRuns?: { workflowId: string; startedAt: string }[];
}

export function Schedules() {
  const [schedules, setSchedules] = useState<Schedule[] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [form, setForm] = useState({ scheduleId: "", workflow: "", cron: "", intervalSeconds: "" });

  const load = async () => {
    try {
      setSchedules((await gateway.get<{ schedules: Schedule[] }>("/v3/schedules")).schedules);
      setNotice(null);
    } catch (error) {
      setSchedules([]);
      setNotice(missingRoute(error) ? "This gateway has no schedules routes yet." : describe(error));
    }
  };
  useEffect(() => {
    void load();
  }, []);

  const act = async (id: string, action: "pause" | "unpause" | "trigger" | "delete") => {
    try {
      if (action === "delete") await gateway.del(`/v3/schedules/${encodeURIComponent(id)}`);
      else await gateway.post(`/v3/schedules/${encodeURIComponent(id)}/${action}`);
      await load();
    } catch (error) {
      setNotice(describe(error));
    }
  };

  const create = async () => {
    try {
      await gateway.post("/v3/schedules", {
        scheduleId: form.scheduleId,
        workflow: { id: form.workflow },
        ...(form.cron ? { cron: form.cron } : { intervalSeconds: Number(form.intervalSeconds) }),
      });
      setForm({ scheduleId: "", workflow: "", cron: "", intervalSeconds: "" });
      await load();
    } catch (error) {
      setNotice(describe(error));
    }
  };

  return (
    <main className="page">
      <h1>Schedules</h1>
      {notice && <div className="notice">{notice}</div>}
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          void create();
        }}
      >
        <label htmlFor="s-id">Schedule id</label>
        <input id="s-id" value={form.scheduleId} onChange={(e) => setForm({ ...form, scheduleId: e.target.value })} />
        <label htmlFor="s-wf">Workflow</label>
        <input id="s-wf" value={form.workflow} onChange={(e) => setForm({ ...form, workflow: e.target.value })} />
        <label htmlFor="s-cron">Cron (UTC)</label>
        <input id="s-cron" value={form.cron} placeholder="*/5 * * * *" onChange={(e) => setForm({ ...form, cron: e.target.value })} />
        <label htmlFor="s-int">or every (s)</label>
        <input id="s-int" className="narrow" value={form.intervalSeconds} onChange={(e) => setForm({ ...form, intervalSeconds: e.target.value })} />
        <button type="submit" disabled={!form.scheduleId || !form.workflow || (!form.cron && !form.intervalSeconds)}>
          Create schedule
        </button>
      </form>
      {schedules && schedules.length === 0 && !notice && <p className="muted">No schedules.</p>}
      {schedules && schedules.length > 0 && (
        <table className="list">
          <thead>
            <tr>
              <th>schedule</th>
              <th>workflow</th>
              <th>when</th>
              <th>state</th>
              <th>next runs</th>
              <th>recent runs</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.scheduleId}>
                <td>{s.scheduleId}</td>
                <td>
                  {s.workflow.id} {s.workflow.version ?? "ACTIVE"}
                </td>
                <td>{s.cron ?? `every ${s.intervalSeconds} s`}</td>
                <td>{s.paused ? "PAUSED" : "ACTIVE"}</td>
                <td>{(s.nextRunTimes ?? []).slice(0, 3).join(", ")}</td>
                <td>{(s.recentRuns ?? []).map((r) => r.workflowId).join(", ")}</td>
                <td className="button-row">
                  {s.paused ? <button onClick={() => void act(s.scheduleId, "unpause")}>Unpause</button> : <button onClick={() => void act(s.scheduleId, "pause")}>Pause</button>}
                  <button onClick={() => void act(s.scheduleId, "trigger")}>Trigger</button>
                  <button className="danger" onClick={() => void act(s.scheduleId, "delete")}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}

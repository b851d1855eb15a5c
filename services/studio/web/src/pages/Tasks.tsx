import { useCallback, useEffect, useState } from "react";
import { ApiError, describe, gateway, missingRoute, recentRuns } from "../api";
import { TaskForm, optionOfPointer, type Option, type View } from "../components/TaskForm";
import type { Json } from "../model";
import { Link } from "../router";
import { runLink, type RunSummary } from "./Runs";

interface Task {
  workflowId: string;
  definitionId?: string | null;
  currentNode?: string | null;
  view: View;
}

interface Detail {
  workflowId: string;
  workflowStatus: string;
  currentNode?: string | null;
  view?: View | null;
}

export function Tasks() {
  const [tasks, setTasks] = useState<Task[] | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [done, setDone] = useState<Record<string, string>>({});

  const load = useCallback(async () => {
    let candidates: RunSummary[];
    try {
      const page = await gateway.get<{ runs: RunSummary[] }>("/v3/workflows", { status: "WAITING", pageSize: 100 });
      candidates = page.runs;
      setNotice(null);
    } catch (error) {
      candidates = recentRuns().map((r) => ({ workflowId: r.workflowId, workflowStatus: "", definitionId: r.definitionId }));
      setNotice(missingRoute(error) ? "This gateway does not list runs yet: showing the runs opened in this tab." : describe(error));
    }
    const details = await Promise.all(
      candidates.map((run) =>
        gateway
          .get<Detail>(`/v3/workflow/${encodeURIComponent(run.workflowId)}`)
          .then((detail) => ({ run, detail }))
          .catch(() => null),
      ),
    );
    setTasks(
      details
        .filter((d): d is { run: RunSummary; detail: Detail } => !!d && d.detail.workflowStatus === "WAITING" && !!d.detail.view)
        .map(({ run, detail }) => ({ workflowId: detail.workflowId, definitionId: run.definitionId, currentNode: detail.currentNode, view: detail.view as View })),
    );
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <main className="page">
      <h1>Tasks</h1>
      <p className="muted">Runs WAITING on a person. Answering a task resumes its run.</p>
      <button onClick={() => void load()}>Refresh</button>
      {notice && <div className="notice">{notice}</div>}
      {tasks && tasks.length === 0 && <p className="muted">No run is waiting on a person.</p>}
      {Object.entries(done).map(([id, status]) => (
        <div key={id} className="notice" role="status">
          {id}: {status}
        </div>
      ))}
      <div className="tasks">
        {tasks?.map((task) => (
          <TaskCard
            key={task.workflowId}
            task={task}
            onDone={(status) => {
              setDone((d) => ({ ...d, [task.workflowId]: status }));
              void load();
            }}
          />
        ))}
      </div>
    </main>
  );
}

function TaskCard({ task, onDone }: { task: Task; onDone: (status: string) => void }) {
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const options = Array.isArray(task.view.inputOptions) ? (task.view.inputOptions as unknown as Option[]) : [];
  const submit = async (selected: Record<string, Json>) => {
    setBusy(true);
    setErrors({});
    try {
      const answer = await gateway.put<{ workflowStatus: string }>(`/v3/workflow/resume/${encodeURIComponent(task.workflowId)}`, {
        viewResponse: { selectedOptions: selected },
        syncTimeoutMs: 5000,
      });
      onDone(answer.workflowStatus);
    } catch (error) {
      const found: Record<string, string> = {};
      if (error instanceof ApiError && error.problem.errors?.length) {
        for (const problem of error.problem.errors) {
          const option = optionOfPointer(problem.pointer, options, Object.fromEntries(Object.entries(selected).map(([k, v]) => [k, String(v)])));
          found[option ?? ""] = problem.message;
        }
      } else {
        found[""] = describe(error);
      }
      setErrors(found);
    } finally {
      setBusy(false);
    }
  };
  return (
    <article className="task" aria-label={`task of ${task.workflowId}`}>
      <h2>
        <Link to={runLink(task)}>{task.workflowId}</Link> <span className="status status-WAITING">WAITING</span>
      </h2>
      <div className="muted">
        {task.definitionId ? `${task.definitionId} · ` : ""}at {task.currentNode}
      </div>
      <TaskForm workflowId={task.workflowId} view={task.view} errors={errors} busy={busy} onSubmit={(s) => void submit(s)} />
    </article>
  );
}

import { useState, type FormEvent } from "react";
import { ApiError, clearKey, getKey, setKey } from "./api";
import { Link, match, useLocation } from "./router";
import { Definitions } from "./pages/Definitions";
import { Designer } from "./pages/Designer";
import { Runs } from "./pages/Runs";
import { RunPage } from "./pages/Run";
import { Tasks } from "./pages/Tasks";
import { Schedules } from "./pages/Schedules";

function SignIn({ onSignedIn }: { onSignedIn: (tenant: string) => void }) {
  const [key, setValue] = useState("");
  const [error, setError] = useState<string | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setKey(key.trim());
    try {
      const response = await fetch("/api/session", { headers: { Authorization: `Bearer ${key.trim()}` } });
      if (!response.ok) throw new ApiError(response.status, { title: "Unauthorized" });
      const session = (await response.json()) as { tenant: string };
      onSignedIn(session.tenant);
    } catch {
      clearKey();
      setError("That API key is not valid.");
    }
  };
  return (
    <main className="signin">
      <h1>Drift Studio</h1>
      <form onSubmit={submit}>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onChange={(e) => setValue(e.target.value)} />
        <button type="submit" disabled={!key.trim()}>
          Sign in
        </button>
        {error && (
          <div className="error-text" role="alert">
            {error}
          </div>
        )}
        <p className="muted">The key stays in this tab only (session storage). `drift dev` prints the dev key.</p>
      </form>
    </main>
  );
}

export function App() {
  const [tenant, setTenant] = useState<string | null>(() => (getKey() ? sessionStorage.getItem("drift.tenant") : null));
  const { path } = useLocation();
  if (!getKey() || !tenant) {
    return (
      <SignIn
        onSignedIn={(name) => {
          sessionStorage.setItem("drift.tenant", name);
          setTenant(name);
        }}
      />
    );
  }
  let page = <Definitions />;
  let params: Record<string, string> | null;
  if ((params = match("/workflows/:id", path))) page = <Designer key={params.id} id={params.id} />;
  else if (match("/runs", path)) page = <Runs />;
  else if ((params = match("/runs/:id", path))) page = <RunPage key={params.id} workflowId={params.id} />;
  else if (match("/tasks", path)) page = <Tasks />;
  else if (match("/schedules", path)) page = <Schedules />;
  const tab = (to: string, label: string) => (
    <Link to={to} className={(to === "/" ? path === "/" || path.startsWith("/workflows") : path.startsWith(to)) ? "active" : ""}>
      {label}
    </Link>
  );
  return (
    <div className="shell">
      <header className="top">
        <span className="brand">Drift Studio</span>
        <nav>
          {tab("/", "Workflows")}
          {tab("/runs", "Runs")}
          {tab("/tasks", "Tasks")}
          {tab("/schedules", "Schedules")}
        </nav>
        <span className="tenant">tenant {tenant}</span>
        <button
          className="link"
          onClick={() => {
            clearKey();
            sessionStorage.removeItem("drift.tenant");
            setTenant(null);
          }}
        >
          Sign out
        </button>
      </header>
      {page}
    </div>
  );
}

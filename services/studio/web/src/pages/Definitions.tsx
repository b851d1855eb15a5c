import { useEffect, useState } from "react";
import { describe, dsl, missingRoute } from "../api";
import { Link, navigate } from "../router";
import { INSTANCE_NAME } from "../model";

interface Item {
  id: string;
  comment?: string | null;
  latestVersion?: string | null;
  activeVersion?: string | null;
  hasSnapshot?: boolean;
  updatedAt?: string | null;
}

export function Definitions() {
  const [items, setItems] = useState<Item[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [prefix, setPrefix] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const [newId, setNewId] = useState("");

  const load = async (token?: string) => {
    try {
      const page = await dsl.get<{ items: Item[]; nextPageToken?: string | null }>("/workflowDefinition", { prefix, pageSize: 100, pageToken: token });
      setItems((current) => (token && current ? [...current, ...page.items] : page.items));
      setNext(page.nextPageToken ?? null);
      setNotice(null);
    } catch (error) {
      setItems([]);
      setNotice(missingRoute(error) ? "This dsl-store does not list definitions yet: open one by its id below." : describe(error));
    }
  };
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [prefix]);

  return (
    <main className="page">
      <h1>Workflow definitions</h1>
      <div className="toolbar">
        <label htmlFor="prefix">Filter by id prefix</label>
        <input id="prefix" value={prefix} onChange={(e) => setPrefix(e.target.value)} />
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (INSTANCE_NAME.test(newId)) navigate(`/workflows/${encodeURIComponent(newId)}`);
          }}
        >
          <label htmlFor="new-id">Workflow id</label>
          <input id="new-id" value={newId} onChange={(e) => setNewId(e.target.value)} placeholder="e.g. order_refund" />
          <button type="submit" disabled={!INSTANCE_NAME.test(newId)}>
            Open or create
          </button>
        </form>
      </div>
      {notice && <div className="notice">{notice}</div>}
      {items && items.length > 0 && (
        <table className="list">
          <thead>
            <tr>
              <th>id</th>
              <th>active version</th>
              <th>latest version</th>
              <th>draft</th>
              <th>updated</th>
              <th>comment</th>
            </tr>
          </thead>
          <tbody>
            {items.map((item) => (
              <tr key={item.id}>
                <td>
                  <Link to={`/workflows/${encodeURIComponent(item.id)}`}>{item.id}</Link>
                </td>
                <td>{item.activeVersion ?? "—"}</td>
                <td>{item.latestVersion ?? "—"}</td>
                <td>{item.hasSnapshot ? "SNAPSHOT" : ""}</td>
                <td>{item.updatedAt ? new Date(item.updatedAt).toLocaleString() : ""}</td>
                <td className="muted">{item.comment ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {items && items.length === 0 && !notice && <p className="muted">No workflow definitions yet.</p>}
      {next && <button onClick={() => void load(next)}>More</button>}
    </main>
  );
}

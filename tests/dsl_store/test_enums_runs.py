"""The enum store (`/enums`) and the run-context store (`/runs`) over HTTP."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from dsl_store.helpers import ACME, GLOBEX, SERVICE_TOKEN, RecordingChanges

Client = AsyncTestClient[Any]
SERVICE_AS_ACME = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Drift-Tenant": "acme"}
SERVICE_AS_GLOBEX = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Drift-Tenant": "globex"}


def _context(seq: int, status: str = "WAITING", run_id: str = "run-1", **extra: Any) -> dict[str, Any]:
    return {
        "workflowId": "order-1",
        "workflowStatus": status,
        "currentNode": f"node{seq}",
        "disposition": None,
        "errorMessage": None,
        "view": {"layoutId": "L"},
        "context": {"params": {"n": seq}},
        "seq": seq,
        "runId": run_id,
        "updatedAt": f"2026-11-25T10:00:{seq:02d}.250Z",
        **extra,
    }


async def test_enum_values_round_trip_and_list_as_one_object(client: Client) -> None:
    """PUT stores any JSON value under a key; GET reads it back; GET /enums answers every key in one object."""
    assert (await client.get("/enums", headers=ACME)).json() == {}
    for key, value in (("colours", ["red", "green"]), ("limits", {"max": 3, "name": "ü"}), ("flag", True)):
        response = await client.put(f"/enums/{key}", json=value, headers=ACME)
        assert response.status_code == 200
        assert response.json() == value
    assert (await client.get("/enums/limits", headers=ACME)).json() == {"max": 3, "name": "ü"}
    assert (await client.put("/enums/flag", content=b"null", headers=ACME)).status_code == 200
    everything = await client.get("/enums", headers=SERVICE_AS_ACME)
    assert everything.headers["content-type"].startswith("application/json")
    assert everything.json() == {"colours": ["red", "green"], "flag": None, "limits": {"max": 3, "name": "ü"}}


async def test_enum_delete_and_missing_keys(client: Client) -> None:
    """DELETE removes a key (204); missing keys answer 404; bad keys and bodies answer 422."""
    await client.put("/enums/colours", json=["red"], headers=ACME)
    assert (await client.delete("/enums/colours", headers=ACME)).status_code == 204
    assert (await client.get("/enums/colours", headers=ACME)).status_code == 404
    assert (await client.delete("/enums/colours", headers=ACME)).status_code == 404
    bad_key = await client.put("/enums/a.b", json=1, headers=ACME)
    assert bad_key.status_code == 422
    assert bad_key.headers["content-type"] == "application/problem+json"
    bad_body = await client.put("/enums/ok", content=b"{nope", headers=ACME)
    assert bad_body.status_code == 422
    assert bad_body.json()["errors"][0]["pointer"] == ""


async def test_enums_are_per_tenant_and_announced(client: Client, changes: RecordingChanges) -> None:
    """Another tenant sees none of the keys; puts and deletes announce `enums` changes for the tenant."""
    await client.put("/enums/colours", json=["red"], headers=ACME)
    assert (await client.get("/enums/colours", headers=GLOBEX)).status_code == 404
    assert (await client.get("/enums", headers=GLOBEX)).json() == {}
    assert (await client.delete("/enums/colours", headers=GLOBEX)).status_code == 404
    await client.delete("/enums/colours", headers=ACME)
    seen = [(e.tenant, e.kind, e.id, e.version, str(e.change)) for e, _ in changes.events]
    assert seen == [("acme", "enums", "colours", None, "updated"), ("acme", "enums", "colours", None, "deleted")]


async def test_run_context_keeps_the_highest_seq(client: Client) -> None:
    """PUT /runs stores a run's state; an older seq arriving late never replaces a newer one."""
    stored = await client.put("/runs/order-1", json=_context(2), headers=SERVICE_AS_ACME)
    assert stored.status_code == 200
    assert stored.json() == {"workflowId": "order-1", "runId": "run-1", "seq": 2}
    late = await client.put("/runs/order-1", json=_context(1), headers=SERVICE_AS_ACME)
    assert late.json()["seq"] == 2
    read = await client.get("/runs/order-1", headers=ACME)
    assert read.status_code == 200
    assert read.json()["seq"] == 2 and read.json()["currentNode"] == "node2"
    assert read.json()["updatedAt"].startswith("2026-11-25T10:00:02.25")
    await client.put("/runs/order-1", json=_context(3, "COMPLETED", disposition="OK"), headers=SERVICE_AS_ACME)
    final = (await client.get("/runs/order-1", headers=SERVICE_AS_ACME)).json()
    assert (final["workflowStatus"], final["disposition"], final["seq"]) == ("COMPLETED", "OK", 3)


async def test_run_context_answers_the_newest_run_of_a_workflow_id(client: Client) -> None:
    """A later run of the same workflowId (another runId, lower seq) is what GET answers."""
    await client.put("/runs/order-1", json=_context(9, "COMPLETED"), headers=SERVICE_AS_ACME)
    second = _context(1, run_id="run-2")
    second["updatedAt"] = "2026-11-25T11:00:00Z"
    assert (await client.put("/runs/order-1", json=second, headers=SERVICE_AS_ACME)).json()["seq"] == 1
    read = (await client.get("/runs/order-1", headers=ACME)).json()
    assert (read["runId"], read["seq"], read["workflowStatus"]) == ("run-2", 1, "WAITING")


async def test_run_context_is_written_by_services_only_and_read_per_tenant(client: Client) -> None:
    """A tenant key may not write run contexts (403); another tenant reads 404 like a missing run."""
    refused = await client.put("/runs/order-1", json=_context(1), headers=ACME)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert (await client.put("/runs/order-1", json=_context(1), headers={})).status_code == 401
    await client.put("/runs/order-1", json=_context(1), headers=SERVICE_AS_ACME)
    foreign = await client.get("/runs/order-1", headers=GLOBEX)
    missing = await client.get("/runs/nothing", headers=ACME)
    assert foreign.status_code == missing.status_code == 404
    assert (await client.get("/runs/order-1", headers=SERVICE_AS_GLOBEX)).status_code == 404


async def test_run_context_bodies_are_checked(client: Client) -> None:
    """A body that is not a run context, or names another workflowId, answers 422 with a pointer."""
    response = await client.put("/runs/order-1", json={**_context(1), "seq": -1}, headers=SERVICE_AS_ACME)
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/seq"
    other = await client.put("/runs/order-2", json=_context(1), headers=SERVICE_AS_ACME)
    assert other.status_code == 422
    assert other.json()["errors"][0]["pointer"] == "/workflowId"
    unknown = await client.put("/runs/order-1", json=_context(1, surprise=1), headers=SERVICE_AS_ACME)
    assert unknown.json()["errors"][0]["pointer"] == "/surprise"

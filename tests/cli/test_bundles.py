"""Bundle loading (drift_cli.bundles) against an in-memory dsl-store speaking the contract's routes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from drift_cli.bundles import Bundle, BundleError, find_bundles, load_bundles, read_bundle, read_try_requests
from drift_schema import codec
from drift_schema.api import ResumeRequest, StartRequest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TOKEN = "k-default"


class FakeDslStore:
    """Just enough of CONTRACT.md 4.3 to load bundles: snapshots, publish, activate.

    A workflow whose state has a CHILD `childWorkflowId` cannot be published before that
    workflow has a published version (422), to exercise the loader's retry.
    """

    def __init__(self) -> None:
        self.snapshots: dict[tuple[str, str], dict[str, Any]] = {}
        self.published: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.active: dict[str, str] = {}
        self.calls: list[str] = []
        self.reject: set[str] = set()

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        parts = request.url.path.strip("/").split("/")
        kind = parts[0]
        version = request.url.params.get("version")
        self.calls.append(f"{request.method} {request.url.path}" + (f"?version={version}" if version else ""))
        if request.method in ("POST", "PUT") and len(parts) == 1:
            body = json.loads(request.content)
            if body["id"] in self.reject:
                problem = {"title": "Invalid", "status": 422, "detail": "bad definition"}
                problem["errors"] = [{"pointer": "/type", "message": "unknown type"}]
                return httpx.Response(422, json=problem)
            key = (kind, body["id"])
            if request.method == "POST" and key in self.snapshots:
                return httpx.Response(409, json={"title": "Conflict", "status": 409})
            if request.method == "PUT" and key not in self.snapshots:
                return httpx.Response(404, json={"title": "Not Found", "status": 404})
            self.snapshots[key] = {**body, "version": "SNAPSHOT"}
            return httpx.Response(201 if request.method == "POST" else 200, json=self.snapshots[key])
        key = (kind, parts[1])
        if request.method == "GET":
            versions = self.published.get(key) or []
            found: dict[str, Any] | None = None
            if version == "SNAPSHOT":
                found = self.snapshots.get(key)
            elif version == "ACTIVE":
                found = next((v for v in versions if v["version"] == self.active.get(parts[1])), None)
            elif versions:
                found = versions[-1]
            if found is None:
                return httpx.Response(404, json={"title": "Not Found", "status": 404})
            return httpx.Response(200, json=found)
        action = parts[2]
        if action in ("publishNode", "publishWorkflow"):
            definition = copy.deepcopy(self.snapshots[key])
            for state in definition.get("states", {}).values():
                child = (state.get("nodeDefinition") or {}).get("childWorkflowId")
                if child and not self.published.get((kind, child)):
                    return httpx.Response(422, json={"title": "Invalid", "status": 422, "detail": f"no {child}"})
            definition["version"] = str(len(self.published.get(key, [])) + 1)
            self.published.setdefault(key, []).append(definition)
            return httpx.Response(200, json=definition)
        if action == "activate":
            assert version is not None
            self.active[parts[1]] = version
            return httpx.Response(200, json={"id": parts[1], "version": version})
        return httpx.Response(404)


def _client(store: FakeDslStore) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url="http://dsl-store.test",
        headers={"Authorization": f"Bearer {TOKEN}"},
        transport=store.transport(),
    )


NODE = {"id": "greet", "name": "Greet", "type": "SCRIPT", "output": "{% 'hi' %}", "version": "7"}
WORKFLOW = {
    "id": "hello",
    "startNode": "g",
    "states": {"g": {"resourceId": "greet", "end": True}},
}
PARENT = {
    "id": "parent",
    "startNode": "c",
    "states": {"c": {"nodeDefinition": {"id": "c", "type": "CHILD", "childWorkflowId": "hello"}, "end": True}},
}


async def test_load_bundles_creates_publishes_then_activates() -> None:
    """Nodes are created and published first; each workflow is created, published, then activated."""
    store = FakeDslStore()
    async with _client(store) as client:
        report = await load_bundles(client, [Bundle([NODE], [WORKFLOW])])
    report.raise_for_errors()
    assert report.nodes == {"greet": "1"}
    assert report.workflows == {"hello": "1"}
    assert store.active == {"hello": "1"}
    assert store.calls == [
        "GET /nodeDefinition/greet?version=SNAPSHOT",
        "POST /nodeDefinition",
        "GET /nodeDefinition/greet?version=LATEST",
        "POST /nodeDefinition/greet/publishNode",
        "GET /workflowDefinition/hello?version=SNAPSHOT",
        "POST /workflowDefinition",
        "GET /workflowDefinition/hello?version=LATEST",
        "POST /workflowDefinition/hello/publishWorkflow",
        "GET /workflowDefinition/hello?version=ACTIVE",
        "POST /workflowDefinition/hello/activate?version=1",
    ]
    # The bundle's own "version" is not sent: the server assigns versions.
    assert store.snapshots[("nodeDefinition", "greet")]["version"] == "SNAPSHOT"


async def test_reloading_replaces_snapshots_and_publishes_only_changes() -> None:
    """Loading again writes nothing for an unchanged definition, PUTs over a changed SNAPSHOT, and
    publishes and activates only what changed."""
    store = FakeDslStore()
    async with _client(store) as client:
        await load_bundles(client, [Bundle([NODE], [WORKFLOW])])
        store.calls.clear()
        again = await load_bundles(client, [Bundle([NODE], [WORKFLOW])])
        assert again.unchanged == {"nodeDefinition/greet", "workflowDefinition/hello"}
        assert again.workflows == {"hello": "1"}
        assert not [c for c in store.calls if not c.startswith("GET ")]

        changed = {**WORKFLOW, "comment": "now with a comment"}
        store.calls.clear()
        report = await load_bundles(client, [Bundle([NODE], [changed])])
    assert "PUT /workflowDefinition" in store.calls
    assert report.workflows == {"hello": "2"}
    assert store.active == {"hello": "2"}
    assert report.nodes == {"greet": "1"}


async def test_a_workflow_needing_another_is_loaded_after_it() -> None:
    """A workflow whose publish fails because it needs a later one is retried and succeeds."""
    store = FakeDslStore()
    async with _client(store) as client:
        report = await load_bundles(client, [Bundle([NODE], [PARENT]), Bundle([], [WORKFLOW])])
    report.raise_for_errors()
    assert report.workflows == {"parent": "1", "hello": "1"}


async def test_load_errors_are_collected_with_the_problem_details() -> None:
    """A rejected definition becomes a report error naming it and the server's pointers."""
    store = FakeDslStore()
    store.reject.add("greet")
    async with _client(store) as client:
        report = await load_bundles(client, [Bundle([NODE], [])])
    assert report.nodes == {}
    assert len(report.errors) == 1
    assert "nodeDefinition greet" in report.errors[0]
    assert "422" in report.errors[0]
    assert "/type: unknown type" in report.errors[0]
    with pytest.raises(BundleError):
        report.raise_for_errors()


def test_find_bundles_skips_json_that_is_not_a_bundle(tmp_path: Path) -> None:
    """find_bundles lists bundle files recursively and ignores other or broken JSON."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text(json.dumps({"nodeDefinitions": [NODE]}))
    (tmp_path / "sub" / "b.json").write_text(json.dumps({"workflowDefinitions": [WORKFLOW]}))
    (tmp_path / "request.json").write_text(json.dumps({"workflow": {"id": "hello"}}))
    (tmp_path / "broken.json").write_text("{")
    assert find_bundles(tmp_path) == [tmp_path / "a.json", tmp_path / "sub" / "b.json"]


def test_read_bundle_rejects_a_malformed_bundle(tmp_path: Path) -> None:
    """read_bundle raises BundleError for definitions without a string id."""
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"nodeDefinitions": [{"name": "no id"}]}))
    with pytest.raises(BundleError, match="string 'id'"):
        read_bundle(path)


def test_example_sample_requests_are_valid_requests_for_example_workflows() -> None:
    """Every examples/requests/<id>.json names an example workflow, and its start and resume decode
    as the contract's StartRequest and ResumeRequest."""
    bundles = find_bundles(EXAMPLES)
    workflow_ids = {wf["id"] for path in bundles for wf in read_bundle(path).workflow_definitions}
    sample_files = sorted((EXAMPLES / "requests").glob("*.json"))
    assert sample_files, "no sample requests under examples/requests"
    assert {p.stem for p in sample_files} <= workflow_ids
    samples = read_try_requests(bundles, workflow_ids)
    assert set(samples) == {p.stem for p in sample_files}
    for sample in samples.values():
        codec.decode(json.dumps(sample.start).encode(), StartRequest)
        if sample.resume is not None:
            assert sample.run_id
            codec.decode(json.dumps(sample.resume).encode(), ResumeRequest)


def test_sample_requests_must_start_their_own_workflow(tmp_path: Path) -> None:
    """A sample is looked up beside the bundle; one starting another workflow, or resuming without a
    workflowId, is refused; a workflow without a sample has none."""
    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps({"workflowDefinitions": [WORKFLOW]}))
    (tmp_path / "requests").mkdir()
    sample = tmp_path / "requests" / f"{WORKFLOW['id']}.json"
    sample.write_text(json.dumps({"start": {"workflow": {"id": "other"}}}))
    with pytest.raises(BundleError, match="must be"):
        read_try_requests([bundle], [WORKFLOW["id"]])
    sample.write_text(json.dumps({"start": {"workflow": {"id": WORKFLOW["id"]}}, "resume": {"viewResponse": {}}}))
    with pytest.raises(BundleError, match="workflowId"):
        read_try_requests([bundle], [WORKFLOW["id"]])
    sample.write_text(json.dumps({"start": {"workflow": {"id": WORKFLOW["id"]}, "workflowId": "r-1"}}))
    [found] = read_try_requests([bundle], [WORKFLOW["id"], "no-sample"]).values()
    assert found.run_id == "r-1" and found.resume is None

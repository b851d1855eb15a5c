"""Load bundles (`{"nodeDefinitions": [...], "workflowDefinitions": [...]}`) into the dsl-store.

Every node definition is created (or its SNAPSHOT replaced) and published; every workflow is
created or replaced, published and activated. A definition whose latest published version
already equals the bundle's is not published again, so loading the same bundles on every
`drift dev` does not pile up identical versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "Bundle",
    "BundleError",
    "LoadReport",
    "dsl_store_client",
    "find_bundles",
    "load_bundle_files",
    "load_bundles",
    "read_bundle",
]

NODES = "nodeDefinitions"
WORKFLOWS = "workflowDefinitions"


class BundleError(Exception):
    """A bundle cannot be read, or some of its definitions could not be loaded."""


@dataclass
class Bundle:
    """The definitions of one bundle file."""

    node_definitions: list[dict[str, Any]] = field(default_factory=list)
    workflow_definitions: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None

    @classmethod
    def from_json(cls, data: object, path: Path | None = None) -> Bundle:
        """Check the shape of a decoded bundle; raises BundleError."""
        where = str(path) if path else "bundle"
        if not isinstance(data, dict) or not (NODES in data or WORKFLOWS in data):
            raise BundleError(f"{where}: not a bundle (needs {NODES!r} and/or {WORKFLOWS!r})")
        lists: dict[str, list[dict[str, Any]]] = {}
        for key in (NODES, WORKFLOWS):
            items = data.get(key, [])
            if not isinstance(items, list) or not all(
                isinstance(i, dict) and isinstance(i.get("id"), str) for i in items
            ):
                raise BundleError(f"{where}: {key!r} must be a list of objects with a string 'id'")
            lists[key] = items
        return cls(lists[NODES], lists[WORKFLOWS], path)


def read_bundle(path: Path) -> Bundle:
    """Read and check one bundle file; raises BundleError."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path}: {exc}") from None
    return Bundle.from_json(data, Path(path))


def find_bundles(directory: Path) -> list[Path]:
    """Every `*.json` under `directory` (recursively, sorted) that is a bundle.

    Other JSON files (sample request bodies and the like) are skipped.
    """
    found = []
    for path in sorted(Path(directory).rglob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and (NODES in data or WORKFLOWS in data):
            found.append(path)
    return found


@dataclass
class LoadReport:
    """What a load did: id -> version for each node published and each workflow activated."""

    nodes: dict[str, str] = field(default_factory=dict)
    workflows: dict[str, str] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)
    """`nodeDefinition/<id>` or `workflowDefinition/<id>` whose latest version was reused."""
    errors: list[str] = field(default_factory=list)

    def raise_for_errors(self) -> None:
        """Raise BundleError listing every error, if there was one."""
        if self.errors:
            raise BundleError("; ".join(self.errors))


class _HttpError(Exception):
    pass


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    text = str(body.get("detail") or body.get("title") or body)
    pointers = [f"{e.get('pointer')}: {e.get('message')}" for e in body.get("errors") or [] if isinstance(e, dict)]
    return f"{text} ({'; '.join(pointers)})" if pointers else text


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    request = response.request
    raise _HttpError(f"{request.method} {request.url.path} -> {response.status_code}: {_problem(response)}")


def _version(response: httpx.Response) -> str:
    body = response.json()
    if not isinstance(body, dict) or body.get("version") is None:
        raise _HttpError(f"{response.request.url.path} answered no 'version'")
    return str(body["version"])


async def _upsert_and_publish(
    client: httpx.AsyncClient, kind: str, action: str, definition: dict[str, Any]
) -> tuple[str, bool]:
    """Create or replace the SNAPSHOT, then publish unless the latest version is the same.

    Answers (version, unchanged).
    """
    # The server assigns versions; a bundle's own "version" field would only confuse it.
    body = {k: v for k, v in definition.items() if k != "version"}
    def_id = body["id"]
    response = await client.post(f"/{kind}", json=body)
    if response.status_code == 409:
        response = await client.put(f"/{kind}", json=body)
    _check(response)

    latest = await client.get(f"/{kind}/{def_id}", params={"version": "LATEST"})
    if latest.is_success:
        published = latest.json()
        # Only our own fields are compared: the server may add fields (version, timestamps).
        if isinstance(published, dict) and all(published.get(k) == v for k, v in body.items()):
            return _version(latest), True
    return _version(_check(await client.post(f"/{kind}/{def_id}/{action}"))), False


async def load_bundles(client: httpx.AsyncClient, bundles: Iterable[Bundle]) -> LoadReport:
    """Load `bundles` through `client` (base URL = dsl-store, bearer token set; see dsl_store_client).

    All node definitions go first, then the workflows. A workflow that fails is retried after
    the others succeeded, since a workflow may need another one (a CHILD node) to exist first.
    Errors are collected in the report, not raised: call `raise_for_errors()` to make them fatal.
    """
    report = LoadReport()
    bundles = list(bundles)
    for bundle in bundles:
        for node in bundle.node_definitions:
            try:
                version, same = await _upsert_and_publish(client, "nodeDefinition", "publishNode", node)
            except (_HttpError, httpx.HTTPError, ValueError) as exc:
                report.errors.append(f"nodeDefinition {node['id']}: {exc}")
                continue
            report.nodes[node["id"]] = version
            if same:
                report.unchanged.add(f"nodeDefinition/{node['id']}")

    pending = [wf for bundle in bundles for wf in bundle.workflow_definitions]
    while pending:
        failed: list[tuple[dict[str, Any], str]] = []
        for workflow in pending:
            wf_id = workflow["id"]
            try:
                version, same = await _upsert_and_publish(client, "workflowDefinition", "publishWorkflow", workflow)
                _check(await client.post(f"/workflowDefinition/{wf_id}/activate", params={"version": version}))
            except (_HttpError, httpx.HTTPError, ValueError) as exc:
                failed.append((workflow, f"workflowDefinition {wf_id}: {exc}"))
                continue
            report.workflows[wf_id] = version
            if same:
                report.unchanged.add(f"workflowDefinition/{wf_id}")
        if len(failed) == len(pending):
            report.errors.extend(message for _, message in failed)
            break
        pending = [workflow for workflow, _ in failed]
    return report


def dsl_store_client(dsl_store_url: str, token: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """An httpx client for the dsl-store routes, authenticated with `token`."""
    return httpx.AsyncClient(
        base_url=dsl_store_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
        trust_env=False,  # the dsl-store is local; an environment proxy must not intercept it
    )


async def load_bundle_files(dsl_store_url: str, token: str, paths: Sequence[Path]) -> LoadReport:
    """Read the bundle files at `paths` and load them; unreadable files become report errors."""
    report_errors: list[str] = []
    bundles: list[Bundle] = []
    for path in paths:
        try:
            bundles.append(read_bundle(path))
        except BundleError as exc:
            report_errors.append(str(exc))
    async with dsl_store_client(dsl_store_url, token) as client:
        report = await load_bundles(client, bundles)
    report.errors[:0] = report_errors
    return report

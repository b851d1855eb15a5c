"""Load bundles (`{"nodeDefinitions": [...], "workflowDefinitions": [...]}`) into the dsl-store.

Every definition's SNAPSHOT is created or replaced, then (as `drift dev` and `drift apply
--publish --activate` ask) published and, for workflows, activated. Loading is idempotent: an
equal SNAPSHOT is not rewritten, a SNAPSHOT equal to the latest published version is not
published again, and an ACTIVE version is not re-activated, so loading the same bundles on
every `drift dev` changes nothing and does not pile up identical versions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from drift_client.store import store_http
from drift_schema import codec
from drift_schema.nodes import NodeDefinition
from drift_schema.workflow import WorkflowDefinition

__all__ = [
    "Applied",
    "Bundle",
    "BundleError",
    "LoadReport",
    "TryRequests",
    "dsl_store_client",
    "find_bundles",
    "load_bundle_files",
    "load_bundles",
    "problem_text",
    "read_bundle",
    "read_try_requests",
]

NODES = "nodeDefinitions"
WORKFLOWS = "workflowDefinitions"
REQUESTS_DIR = "requests"
"""Folder next to the bundles holding `<workflow id>.json` sample requests (see TryRequests)."""


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
    applied: list[Applied] = field(default_factory=list)
    """Every definition loaded, in order, with what was done to it."""

    def add(self, applied: Applied) -> None:
        """Record one loaded definition (nodes by published version, workflows by ACTIVE version)."""
        self.applied.append(applied)
        name = applied.kind.removesuffix("Definition")
        target = self.nodes if name == "node" else self.workflows
        version = applied.version if name == "node" else applied.active
        if version is not None:
            target[applied.id] = version
        if applied.version is not None and not applied.published:
            self.unchanged.add(f"{applied.kind}/{applied.id}")

    def raise_for_errors(self) -> None:
        """Raise BundleError listing every error, if there was one."""
        if self.errors:
            raise BundleError("; ".join(self.errors))


class _HttpError(Exception):
    pass


def problem_text(response: httpx.Response) -> str:
    """A dsl-store problem answer as readable text: its detail, then one `pointer: message` line per fault."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if not isinstance(body, dict):
        return str(body)[:500]
    text = str(body.get("detail") or body.get("title") or body)
    pointers = [
        f"{e.get('pointer') or '/'}: {e.get('message')}" for e in body.get("errors") or [] if isinstance(e, dict)
    ]
    return "\n".join([text, *(f"    {line}" for line in pointers)])


def _check(response: httpx.Response) -> httpx.Response:
    if response.is_success:
        return response
    request = response.request
    raise _HttpError(f"{request.method} {request.url.path} -> {response.status_code}: {problem_text(response)}")


def _version(response: httpx.Response) -> str:
    body = response.json()
    if not isinstance(body, dict) or body.get("version") is None:
        raise _HttpError(f"{response.request.url.path} answered no 'version'")
    return str(body["version"])


_SHAPES: dict[str, Any] = {"nodeDefinition": NodeDefinition, "workflowDefinition": WorkflowDefinition}


def _same(kind: str, stored: object, definition: dict[str, Any]) -> bool:
    """Whether a stored definition equals the bundle's, `version` aside.

    Both are decoded into the schema's shapes, so defaults the server leaves out or fills in
    do not count as a difference. A bundle definition that does not decode is "different":
    sending it makes the server answer its 422 with pointers.
    """
    try:
        ours = codec.convert(definition, _SHAPES[kind])
        theirs = codec.convert(stored, _SHAPES[kind])
    except (codec.DecodeError, msgspec.ValidationError):
        return False
    return bool(msgspec.structs.replace(ours, version=None) == msgspec.structs.replace(theirs, version=None))


async def _get(client: httpx.AsyncClient, kind: str, def_id: str, version: str) -> httpx.Response | None:
    """The definition at `version`, or None when it has no such version (404)."""
    response = await client.get(f"/{kind}/{def_id}", params={"version": version})
    return None if response.status_code == 404 else _check(response)


@dataclass
class Applied:
    """What loading did to one definition."""

    kind: str
    """`nodeDefinition` or `workflowDefinition`."""
    id: str
    snapshot: str
    """`created`, `updated` or `unchanged`."""
    version: str | None = None
    """The newest published version afterwards (None: never published)."""
    published: bool = False
    """Whether this load published `version` (a new number)."""
    activated: bool = False
    """Whether this load made `version` ACTIVE (workflows only)."""
    active: str | None = None
    """The ACTIVE version afterwards, when known (workflows only)."""

    def describe(self) -> str:
        """One line for people: what changed, and which versions are current."""
        parts = [f"SNAPSHOT {self.snapshot}"]
        if self.version is None:
            parts.append("never published")
        else:
            parts.append(f"published version {self.version}" if self.published else f"LATEST {self.version}")
        if self.active is not None:
            parts.append(f"activated {self.active}" if self.activated else f"ACTIVE {self.active}")
        return f"{self.kind} {self.id}: " + ", ".join(parts)


async def _apply(
    client: httpx.AsyncClient, kind: str, definition: dict[str, Any], *, publish: bool, activate: bool
) -> Applied:
    """Bring one definition's SNAPSHOT to the bundle's, then publish and activate as asked.

    Nothing is written that already holds: an equal SNAPSHOT is not replaced, a SNAPSHOT equal
    to LATEST is not published again, and an ACTIVE version is not activated again.
    """
    # The server assigns versions; a bundle's own "version" field would only confuse it.
    body = {k: v for k, v in definition.items() if k != "version"}
    def_id = body["id"]
    snapshot = await _get(client, kind, def_id, "SNAPSHOT")
    if snapshot is None:
        response = await client.post(f"/{kind}", json=body)
        if response.status_code == 409:  # created meanwhile by someone else
            response = await client.put(f"/{kind}", json=body)
        _check(response)
        applied = Applied(kind, def_id, "created")
    elif _same(kind, snapshot.json(), body):
        applied = Applied(kind, def_id, "unchanged")
    else:
        _check(await client.put(f"/{kind}", json=body))
        applied = Applied(kind, def_id, "updated")

    latest = await _get(client, kind, def_id, "LATEST")
    applied.version = _version(latest) if latest is not None else None
    if publish and (latest is None or not _same(kind, latest.json(), body)):
        action = "publishNode" if kind == "nodeDefinition" else "publishWorkflow"
        version = _version(_check(await client.post(f"/{kind}/{def_id}/{action}")))
        # The server, too, answers LATEST without spending a number when nothing changed.
        applied.published = version != applied.version
        applied.version = version

    if kind == "workflowDefinition":
        active = await _get(client, kind, def_id, "ACTIVE")
        applied.active = _version(active) if active is not None else None
        if activate and applied.version is None:
            raise _HttpError("nothing published to activate (use --publish)")
        if activate and applied.active != applied.version:
            _check(await client.post(f"/{kind}/{def_id}/activate", params={"version": applied.version}))
            applied.active, applied.activated = applied.version, True
    return applied


async def load_bundles(
    client: httpx.AsyncClient, bundles: Iterable[Bundle], *, publish: bool = True, activate: bool = True
) -> LoadReport:
    """Load `bundles` through `client` (base URL = dsl-store, bearer token set; see dsl_store_client).

    All node definitions go first, then the workflows. A workflow that fails is retried after
    the others succeeded, since a workflow may need another one (a CHILD node) to exist first.
    Without `publish` only SNAPSHOTs are written; without `activate` no workflow is activated
    (the server still makes a workflow's very first published version ACTIVE).
    Errors are collected in the report, not raised: call `raise_for_errors()` to make them fatal.
    """
    report = LoadReport()
    bundles = list(bundles)
    for bundle in bundles:
        for node in bundle.node_definitions:
            try:
                applied = await _apply(client, "nodeDefinition", node, publish=publish, activate=False)
            except (_HttpError, httpx.HTTPError, ValueError) as exc:
                report.errors.append(f"nodeDefinition {node['id']}: {exc}")
                continue
            report.add(applied)

    pending = [wf for bundle in bundles for wf in bundle.workflow_definitions]
    while pending:
        failed: list[tuple[dict[str, Any], str]] = []
        for workflow in pending:
            try:
                applied = await _apply(client, "workflowDefinition", workflow, publish=publish, activate=activate)
            except (_HttpError, httpx.HTTPError, ValueError) as exc:
                failed.append((workflow, f"workflowDefinition {workflow['id']}: {exc}"))
                continue
            report.add(applied)
        if len(failed) == len(pending):
            report.errors.extend(message for _, message in failed)
            break
        pending = [workflow for workflow, _ in failed]
    return report


def dsl_store_client(dsl_store_url: str, token: str, timeout: float = 30.0) -> httpx.AsyncClient:
    """An httpx client for the dsl-store routes, authenticated with `token` (drift_client's, with its retries)."""
    return store_http(dsl_store_url, token, timeout=timeout)


async def load_bundle_files(
    dsl_store_url: str, token: str, paths: Sequence[Path], *, publish: bool = True, activate: bool = True
) -> LoadReport:
    """Read the bundle files at `paths` and load them (see load_bundles); unreadable files become report errors."""
    report_errors: list[str] = []
    bundles: list[Bundle] = []
    for path in paths:
        try:
            bundles.append(read_bundle(path))
        except BundleError as exc:
            report_errors.append(str(exc))
    async with dsl_store_client(dsl_store_url, token) as client:
        report = await load_bundles(client, bundles, publish=publish, activate=activate)
    report.errors[:0] = report_errors
    return report


@dataclass(frozen=True)
class TryRequests:
    """Sample request bodies for one workflow, from `<bundle folder>/requests/<workflow id>.json`.

    The file is `{"start": <StartRequest>, "resume": <ResumeRequest>}` (`resume` optional); `drift dev`
    prints them as ready-to-paste curl lines, so a new user's first run follows the happy path.
    """

    workflow_id: str
    start: dict[str, Any]
    resume: dict[str, Any] | None = None

    @property
    def run_id(self) -> str | None:
        """The `workflowId` the start request names, if any (the resume needs it)."""
        value = self.start.get("workflowId")
        return value if isinstance(value, str) else None


def read_try_requests(bundle_paths: Iterable[Path], workflow_ids: Iterable[str]) -> dict[str, TryRequests]:
    """Sample requests for `workflow_ids`, looked up in the `requests/` folder beside each bundle.

    A missing file means no sample; an unreadable one or one whose start names another
    workflow raises BundleError, since printing it would mislead.
    """
    folders = list(dict.fromkeys(Path(p).parent / REQUESTS_DIR for p in bundle_paths))
    found: dict[str, TryRequests] = {}
    for wf_id in workflow_ids:
        for folder in folders:
            path = folder / f"{wf_id}.json"
            if not path.is_file():
                continue
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise BundleError(f"{path}: {exc}") from None
            start = data.get("start") if isinstance(data, dict) else None
            resume = data.get("resume") if isinstance(data, dict) else None
            if not isinstance(start, dict) or not (resume is None or isinstance(resume, dict)):
                raise BundleError(f"{path}: needs an object 'start' and optionally an object 'resume'")
            named = start.get("workflow", {}).get("id") if isinstance(start.get("workflow"), dict) else None
            if named != wf_id:
                raise BundleError(f"{path}: 'start.workflow.id' must be {wf_id!r}, not {named!r}")
            if resume is not None and not isinstance(start.get("workflowId"), str):
                raise BundleError(f"{path}: a 'resume' needs 'start.workflowId' to address the run")
            found[wf_id] = TryRequests(wf_id, start, resume)
            break
    return found

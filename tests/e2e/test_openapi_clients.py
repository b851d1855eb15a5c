"""The served OpenAPI documents are valid and complete enough for a generator: a generated client drives a run."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from support.starts import hello

from drift_cli.platform import Platform

pytestmark = pytest.mark.asyncio(loop_scope="session")

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
BODILESS = {
    # Writes that take no body at all: their path and query say everything.
    ("post", "/v3/schedules/{schedule_id}/pause"),
    ("post", "/v3/schedules/{schedule_id}/unpause"),
    ("post", "/v3/schedules/{schedule_id}/trigger"),
    ("post", "/nodeDefinition/{definition_id}/publishNode"),
    ("post", "/workflowDefinition/{definition_id}/publishWorkflow"),
    ("post", "/workflowDefinition/{definition_id}/activate"),
}
COMMANDS = {
    ("post", "/v3/workflow/start"): "WorkflowResponse",
    ("put", "/v3/workflow/resume/{workflow_id}"): "WorkflowResponse",
    ("post", "/v3/workflow/{workflow_id}/event/{event}"): "WorkflowResponse",
    ("put", "/v3/workflow/retry/{workflow_id}"): "WorkflowResponse",
    ("delete", "/v3/workflow/terminate/{workflow_id}"): "TerminateResponse",
}


async def _document(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        answer = await http.get("/schema/openapi.json")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield method, path, operation


def _schema_of(answer: dict[str, Any]) -> dict[str, Any]:
    [media] = answer["content"].values()
    schema: dict[str, Any] = media["schema"]
    return schema


@pytest.mark.parametrize("service", ["gateway", "dsl-store"])
async def test_documents_are_valid_and_declare_every_body_and_answer(platform: Platform, service: str) -> None:
    """Both documents pass openapi-spec-validator; every write with a body declares it, every answer its schema."""
    base_url = platform.gateway_url if service == "gateway" else platform.dsl_store_url
    document = await _document(base_url)
    validate(document)
    components = document["components"]["schemas"]
    writes = 0
    for method, path, operation in _operations(document):
        if method in {"post", "put", "patch"} and (method, path) not in BODILESS:
            writes += 1
            body = operation.get("requestBody")
            assert body is not None, f"{method.upper()} {path} declares no requestBody"
            assert _schema_of(body) is not None
        for status, answer in operation["responses"].items():
            if status.startswith("2") and status != "204":
                assert answer.get("content"), f"{method.upper()} {path} {status} has no content"
        if (method, path) in COMMANDS:
            schema = _schema_of(operation["responses"]["200"])
            assert schema == {"$ref": f"#/components/schemas/{COMMANDS[method, path]}"}, (path, schema)
            assert _schema_of(operation["responses"]["202"]) == {"$ref": "#/components/schemas/WorkflowResponse"}
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in components, ref
    assert writes == (7 if service == "gateway" else 9)  # a new write route must be added here or declare its body
    if service == "dsl-store":
        header = document["paths"]["/workflowDefinition"]["put"]["responses"]["200"]["headers"]
        assert header["X-Drift-Disconnected-States"]["schema"] == {"type": "string"}


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_a_generated_client_starts_and_resumes_a_run(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openapi-python-client's client for the gateway's document starts hello_approval (WAITING) and resumes it."""
    spec = tmp_path / "gateway.json"
    async with httpx.AsyncClient(base_url=platform.gateway_url) as http:
        spec.write_bytes((await http.get("/schema/openapi.json")).content)
    package = f"drift_gateway_client_{uuid.uuid4().hex[:8]}"
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none", "--output-path", str(tmp_path / package)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    client_module = importlib.import_module(f"{package}.client")
    start = importlib.import_module(f"{package}.api.runtime.v3_workflow_start_start")
    resume = importlib.import_module(f"{package}.api.runtime.v3_workflow_resume_workflow_id_resume")
    models = importlib.import_module(f"{package}.models")

    workflow_id = f"gen-{uuid.uuid4().hex[:12]}"
    client = client_module.AuthenticatedClient(
        base_url=platform.gateway_url, token="key-acme", timeout=httpx.Timeout(60)
    )
    async with client:
        started = await start.asyncio_detailed(
            client=client,
            body=models.StartRequest.from_dict(hello(workflow_id, "Gen")),
        )
        assert started.status_code == 200, started.content
        waiting = started.parsed
        assert isinstance(waiting, models.WorkflowResponse)
        assert waiting.workflow_id == workflow_id
        assert str(waiting.workflow_status) == "WAITING"
        assert waiting.current_node == "ask_approval"

        approve = models.ResumeRequest.from_dict({"viewResponse": {"selectedOptions": {"decision": "APPROVE"}}})
        resumed = await resume.asyncio_detailed(workflow_id, client=client, body=approve)
        assert resumed.status_code == 200, resumed.content
        done = resumed.parsed
        assert isinstance(done, models.WorkflowResponse)
        assert str(done.workflow_status) == "COMPLETED"
        assert done.disposition == "APPROVED: Hello, Gen!"

        # The same approval again: the run has ended, so it is refused.
        refused = await resume.asyncio_detailed(workflow_id, client=client, body=approve)
        assert refused.status_code >= 400
        assert isinstance(refused.parsed, models.Problem), refused.content


@pytest.mark.parametrize("service", ["gateway", "dsl-store"])
async def test_swagger_page_loads_nothing_from_outside(platform: Platform, service: str) -> None:
    """The Swagger page names only its own assets (no CDN), and each of them is served."""
    base_url = platform.gateway_url if service == "gateway" else platform.dsl_store_url
    async with httpx.AsyncClient(base_url=base_url) as http:
        page = await http.get("/schema/swagger")
        assert page.status_code == 200
        assert "https://" not in page.text and "//cdn" not in page.text, page.text
        assets = re.findall(r"""(?:src|href)=['"](/schema/assets/[^'"]+)['"]""", page.text)
        assert any(asset.endswith(".js") for asset in assets), page.text
        for asset in assets:
            assert (await http.get(asset)).status_code == 200, asset

"""`drift test FILE` and `drift retry ID` against the running platform: exit codes people's CI relies on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.cli import run_drift

from drift_cli.platform import Platform
from e2e.definitions import define, definition, failure, http, run_id, script, start, success

pytestmark = pytest.mark.asyncio(loop_scope="session")

FLOW = {
    "fetch": http("http://127.0.0.1:9/never", "greet", output="{% $response.body.name %}"),
    "greet": script("{% 'Hello ' & $global.fetch %}", "done"),
    "done": success("{% $global.greet %}"),
}


async def _drift(
    argv: list[str], platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Run the `drift` command line against the platform as acme; answers (exit code, stdout + stderr)."""
    monkeypatch.setenv("DRIFT_GATEWAY_URL", platform.gateway_url)
    monkeypatch.setenv("DRIFT_API_KEY", "key-acme")
    code, out, err = await run_drift(argv, capsys)
    return code, out + err


def _file(tmp_path: Path, body: dict[str, Any], name: str = "case") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(body))
    return str(path)


async def test_drift_test_passes_prints_the_trace_and_fails_on_unmet_expectations(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Expectations that hold exit 0 with the trace printed; a wrong disposition or context exits 1 naming it."""
    request = {
        "definition": definition(FLOW, "fetch"),
        "mocks": {"fetch": {"response": {"status": 200, "body": {"name": "Ada"}}}},
    }
    passing = {
        **request,
        "expect": {"disposition": "Hello Ada", "context": {"fetch": "Ada"}, "visits": ["fetch", "greet", "done"]},
    }
    code, out = await _drift(["test", _file(tmp_path, passing)], platform, monkeypatch, capsys)
    assert code == 0, out
    assert "fetch (HTTP)" in out and "greet (SCRIPT)" in out and "PASS" in out
    failing = {**request, "expect": {"disposition": "Hello Bob", "context": {"greet": "Hi"}, "visits": ["done"]}}
    code, out = await _drift(["test", _file(tmp_path, failing)], platform, monkeypatch, capsys)
    assert code == 1, out
    assert "UNMET disposition" in out and "UNMET context/greet" in out and "UNMET visits" in out and "FAIL" in out


async def test_drift_test_exit_codes_for_a_failed_run_and_a_refused_request(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A run that does not complete exits 1 unless FAILED is expected; a refused request exits 7 (422, pointers on
    stderr); several: the worst."""
    unmocked = {"definition": definition(FLOW, "fetch")}
    code, out = await _drift(["test", _file(tmp_path, unmocked)], platform, monkeypatch, capsys)
    assert code == 1 and "UNMET workflowStatus: expected COMPLETED, got FAILED" in out
    expected = {**unmocked, "expect": {"workflowStatus": "FAILED", "errorMessage": "has no mock"}}
    code, out = await _drift(["test", _file(tmp_path, expected)], platform, monkeypatch, capsys)
    assert code == 0, out
    refused = {**unmocked, "mocks": {"nope": {"output": 1}}}
    code, out = await _drift(["test", _file(tmp_path, refused)], platform, monkeypatch, capsys)
    assert code == 7 and "/mocks/nope" in out
    # Several files (a CI job's glob): each runs, the exit code is the worst.
    files = [_file(tmp_path, expected, "passes"), _file(tmp_path, unmocked, "fails")]
    code, out = await _drift(["test", *files], platform, monkeypatch, capsys)
    assert code == 1 and f"PASS {files[0]}" in out and f"FAIL {files[1]}" in out


async def test_drift_retry_answers_like_start(
    platform: Platform,
    gateway: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`drift retry ID --from NODE` prints the retried run's state; an unknown run exits 5 with its problem."""
    definition_id = await define(platform, {"first": script("{% 1 %}", "stop"), "stop": failure("'always'")}, "first")
    workflow_id = run_id("cli")
    assert (await start(gateway, definition_id, workflow_id))["workflowStatus"] == "FAILED"
    monkeypatch.setenv("DRIFT_GATEWAY_URL", platform.gateway_url)
    monkeypatch.setenv("DRIFT_API_KEY", "key-acme")
    # stdout alone: the in-process platform's services log to stderr meanwhile.
    code, stdout, stderr = await run_drift(["retry", workflow_id, "--from", "first"], capsys)
    assert code == 0, stdout + stderr
    assert json.loads(stdout)["workflowStatus"] == "FAILED" and json.loads(stdout)["workflowId"] == workflow_id
    code, out = await _drift(["retry", run_id("nobody")], platform, monkeypatch, capsys)
    assert code == 5 and out.startswith("drift retry: 404 ")

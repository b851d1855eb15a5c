"""The `drift` CLI's habits, as kubectl and temporal have them: --version, -o json|yaml|table, one-line
errors on stderr, exit codes per kind of refusal, shell completion, and servers found where `drift dev`
wrote them.

HTTP answers come from a loopback stub gateway (tests/support/loopback.py); `drift events` reads the
session's real NATS (`infra`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import nats
import pytest
import pytest_asyncio
import yaml
from support.cli import run_drift as drift
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer

from drift_cli import endpoints
from drift_cli.main import build_parser
from drift_cli.servers import InfraStack, free_port
from drift_runtime.messaging import ensure_streams
from drift_schema import subjects
from drift_schema.events import WorkflowEvent
from drift_schema.statuses import WorkflowStatus

KEY = "key-habits"
RUN = {"workflowId": "order-1", "workflowStatus": "WAITING", "currentNode": "approve", "context": {"a": 1}}
PAGE = {
    "runs": [
        {"workflowId": "order-1", "workflowStatus": "WAITING", "definitionId": "orders", "definitionVersion": "3"},
        {"workflowId": "order-2", "workflowStatus": "FAILED"},
    ],
    "nextPageToken": None,
}


@dataclass
class StubGateway(LoopbackServer):
    """Answers GET /v3/workflows with PAGE, GET /v3/workflow/order-1 with RUN, and `refusals[id]` for other ids."""

    refusals: dict[str, int] = field(default_factory=dict)
    seen: list[HttpRequest] = field(default_factory=list)

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        self.seen.append(request)
        if request.path == "/v3/workflows":
            return HttpAnswer(200, json.dumps(PAGE).encode())
        run_id = request.path.rsplit("/", 1)[-1]
        if run_id == "order-1":
            return HttpAnswer(200, json.dumps(RUN).encode())
        status = self.refusals.get(run_id, 404)
        problem = {
            "type": "about:blank",
            "title": f"Refused {status}",
            "status": status,
            "detail": f"run {run_id}\nrefused",
            "errors": [{"pointer": "/workflowId", "message": "bad id"}],
        }
        return HttpAnswer(status, json.dumps(problem).encode(), "application/problem+json")


@pytest_asyncio.fixture(loop_scope="session")
async def gateway() -> AsyncIterator[StubGateway]:
    """A stub gateway on a free loopback port."""
    async with StubGateway() as stub:
        yield stub


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No DRIFT_* variable from outside; a private DRIFT_HOME; the API key set. Answers DRIFT_HOME."""
    for name in list(os.environ):
        if name.startswith("DRIFT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DRIFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIFT_API_KEY", KEY)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def present(value: dict[str, object]) -> dict[str, object]:
    """The fields that have a value (the CLI prints null ones too, as the API does)."""
    return {k: v for k, v in value.items() if v is not None}


async def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`drift --version` prints `drift <version of drift-cli>` and exits 0."""
    code, out, _ = await drift(["--version"], capsys)
    assert code == 0
    assert out.strip() == "drift 0.1.0"


def test_help_documents_every_exit_code() -> None:
    """`drift --help` ends with the exit codes, one per kind of failure, each explained."""
    text = build_parser().format_help()
    codes = text.split("exit codes:", 1)[1]
    for code, words in [("3", "did not answer"), ("4", "401/403"), ("5", "404"), ("6", "409"), ("7", "422")]:
        assert any(line.split()[:1] == [code] and words in line for line in codes.splitlines()), (code, codes)
    assert "8    429" in codes and "9    5xx" in codes


@pytest.mark.parametrize("shell", ["bash", "zsh"])
async def test_completion_scripts_know_the_commands(shell: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`drift completion bash|zsh` prints a script that completes drift's commands and their options."""
    code, out, _ = await drift(["completion", shell], capsys)
    assert code == 0
    for word in ("schedule", "events", "defs", "--output", "completion"):
        assert word in out
    assert ("complete -o" in out) if shell == "bash" else out.startswith("#compdef drift")


async def test_lists_default_to_a_table_and_every_format_carries_the_same_data(
    gateway: StubGateway, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drift runs` prints an aligned table by default; `-o json` and `-o yaml` carry the same page;
    `drift get` prints JSON by default and a FIELD/VALUE table with `-o table`."""
    monkeypatch.setenv("DRIFT_GATEWAY_URL", gateway.url)
    code, out, err = await drift(["runs"], capsys)
    assert (code, err) == (0, "")
    header, first, second = out.splitlines()
    assert header.split() == ["WORKFLOW", "ID", "STATUS", "DEFINITION", "CURRENT", "NODE", "STARTED", "CLOSED"]
    assert first.split()[:3] == ["order-1", "WAITING", "orders@3"]
    assert second.index("FAILED") == first.index("WAITING") == header.index("STATUS")

    code, as_json, _ = await drift(["runs", "-o", "json"], capsys)
    code_yaml, as_yaml, _ = await drift(["runs", "--output", "yaml"], capsys)
    assert code == code_yaml == 0
    assert json.loads(as_json) == yaml.safe_load(as_yaml)
    assert [present(run) for run in json.loads(as_json)["runs"]] == PAGE["runs"]

    code, out, _ = await drift(["get", "order-1"], capsys)
    assert code == 0 and present(json.loads(out)) == RUN
    code, out, _ = await drift(["get", "order-1", "-o", "yaml"], capsys)
    assert code == 0 and present(yaml.safe_load(out)) == RUN
    code, out, _ = await drift(["get", "order-1", "-o", "table"], capsys)
    assert code == 0
    rows = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in out.splitlines()[1:]}
    assert out.split()[:2] == ["FIELD", "VALUE"]
    assert rows["workflowStatus"] == "WAITING" and rows["context"] == '{"a":1}'


@pytest.mark.parametrize(
    ("status", "code"), [(401, 4), (403, 4), (404, 5), (409, 6), (400, 7), (422, 7), (429, 8), (503, 9)]
)
async def test_refusals_are_one_stderr_line_and_an_exit_code_per_kind(
    status: int,
    code: int,
    gateway: StubGateway,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A refused call prints nothing on stdout and one stderr line (status, detail, pointers), and exits with the
    code of its kind: 4 auth, 5 not found, 6 conflict, 7 invalid, 8 throttled, 9 server."""
    monkeypatch.setenv("DRIFT_GATEWAY_URL", gateway.url)
    run_id = f"run-{status}"
    gateway.refusals[run_id] = status
    exit_code, out, err = await drift(["get", run_id], capsys)
    assert exit_code == code
    assert out == ""
    assert err == f"drift get: {status} Refused {status}: run {run_id} refused; /workflowId: bad id\n"


async def test_a_refused_connection_names_the_address_and_the_variable(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With nothing listening, each command exits 3 with one stderr line naming the address it tried, why, and
    the variable that sets it; never a traceback."""
    port = free_port()
    refusals = [
        (
            ["runs"],
            ("DRIFT_GATEWAY_PORT", str(port)),
            f"drift runs: cannot reach the gateway at http://127.0.0.1:{port} (Connection refused) "
            "[from DRIFT_GATEWAY_PORT; set DRIFT_GATEWAY_URL to point elsewhere]\n",
        ),
        (
            ["defs", "list"],
            ("DRIFT_DSL_STORE_URL", f"http://127.0.0.1:{port}"),
            f"drift defs list: cannot reach the dsl-store at http://127.0.0.1:{port} (Connection refused) "
            "[set by DRIFT_DSL_STORE_URL]\n",
        ),
        (
            ["events", "order-1"],
            ("DRIFT_NATS_URL", f"nats://127.0.0.1:{port}"),
            f"drift events: cannot reach the NATS server at nats://127.0.0.1:{port} (Connection refused) "
            "[set by DRIFT_NATS_URL]\n",
        ),
    ]
    # Each variable is set on top of the ones before it: every command still names its own.
    for argv, (variable, value), expected in refusals:
        monkeypatch.setenv(variable, value)
        code, out, err = await drift(argv, capsys)
        assert (code, out) == (3, ""), argv
        assert err == expected


async def test_a_missing_api_key_is_a_usage_error(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without DRIFT_API_KEY and with no dev key in DRIFT_HOME, a command exits 2 saying what to set."""
    monkeypatch.delenv("DRIFT_API_KEY")
    code, out, err = await drift(["get", "x"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("drift get: set DRIFT_API_KEY (no dev key at ") and err.count("\n") == 1


def test_endpoints_follow_variables_then_the_running_drift_dev_then_defaults(tmp_path: Path) -> None:
    """URL variables win over port variables, which win over endpoints.json; a file whose drift dev is gone is
    ignored; without either, the default ports."""
    home = tmp_path / "home"
    home.mkdir()
    endpoints.write_endpoints(home, {"gateway": "http://127.0.0.1:18000", "nats": "nats://127.0.0.1:14333"})
    env = {"DRIFT_HOME": str(home)}
    assert endpoints.gateway(env).url == "http://127.0.0.1:18000"
    assert endpoints.nats(env).url == "nats://127.0.0.1:14333"
    assert endpoints.dsl_store(env).url == "http://127.0.0.1:8100"
    assert endpoints.nats({**env, "DRIFT_NATS_PORT": "5222"}).url == "nats://127.0.0.1:5222"
    both = {**env, "DRIFT_NATS_PORT": "5222", "DRIFT_NATS_URL": "nats://10.0.0.1:4222"}
    assert endpoints.nats(both).url == "nats://10.0.0.1:4222"

    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    endpoints.write_endpoints(home, {"nats": "nats://127.0.0.1:14333"}, pid=dead)
    assert endpoints.nats(env).url == "nats://127.0.0.1:4222"
    endpoints.remove_endpoints(home)  # not ours: stays
    assert (home / endpoints.ENDPOINTS_FILE).exists()
    endpoints.remove_endpoints(home, pid=dead)
    assert not (home / endpoints.ENDPOINTS_FILE).exists()


async def test_events_reads_the_nats_that_drift_dev_wrote_and_says_when_there_are_none(
    infra: InfraStack, clean_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no NATS variable set, `drift events` reads the NATS named in DRIFT_HOME/endpoints.json (drift dev's,
    wherever it landed), prints the run's events as a table or JSON lines, and exits 5 with one stderr line
    when the run has no events (never a silent exit 0)."""
    workflow_id = f"habits-{uuid.uuid4().hex[:8]}"
    connection = await nats.connect(infra.nats_url)
    try:
        js = connection.jetstream()
        await ensure_streams(js)
        event = WorkflowEvent(
            workflow_id=workflow_id, workflow_status=WorkflowStatus.COMPLETED, tenant="default", seq=3
        )
        await js.publish(subjects.workflow_events("default", workflow_id), msgspec.json.encode(event))
    finally:
        await connection.close()
    endpoints.write_endpoints(clean_env, {"nats": infra.nats_url})

    code, out, err = await drift(["events", workflow_id], capsys)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split() == ["SEQ", "KIND", "STATUS", "NODE", "TIME", "DETAIL"]
    assert row.split()[:3] == ["3", "status", "COMPLETED"]
    code, out, _ = await drift(["events", workflow_id, "-o", "json"], capsys)
    assert code == 0 and json.loads(out)["workflowStatus"] == "COMPLETED"

    code, out, err = await drift(["events", "no-such-run"], capsys)
    assert code == 5
    # The service password the URL carries never reaches the terminal.
    assert err == f"drift events: no events of run 'no-such-run' (tenant 'default') on {infra.redacted_nats_url}\n"
    assert infra.nats_url not in err

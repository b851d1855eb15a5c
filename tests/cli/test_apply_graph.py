"""`drift apply` and `drift graph` against a real dsl-store (embedded SQLite, free loopback port)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.dsl_store import dsl_store_process

from drift_cli.main import main
from drift_cli.servers import free_port

KEY = "k-cli-apply"
READY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def dsl_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real dsl-store process (no NATS, no Redis) answering KEY for tenant `default`."""
    home = tmp_path_factory.mktemp("dsl-store")
    with dsl_store_process(home, json.dumps({KEY: "default"}), ready_within=READY_TIMEOUT_S) as url:
        yield url


@pytest.fixture
def store(dsl_store: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[httpx.Client]:
    """The CLI pointed at the dsl-store through its environment, and a client to look at the store."""
    monkeypatch.setenv("DRIFT_DSL_STORE_URL", dsl_store)
    monkeypatch.setenv("DRIFT_API_KEY", KEY)
    with httpx.Client(base_url=dsl_store, headers={"Authorization": f"Bearer {KEY}"}, trust_env=False) as client:
        yield client


def _bundle(tmp_path: Path, prefix: str, *, comment: str | None = None, bad: bool = False) -> Path:
    node = {"id": f"{prefix}-greet", "name": "Greet", "type": "SCRIPT", "output": "{% 'hi' %}", "version": "9"}
    state: dict[str, Any] = {"resourceId": f"{prefix}-greet", "end": True}
    if bad:
        state = {"resourceId": f"{prefix}-greet", "nextNode": "nowhere"}
    workflow: dict[str, Any] = {"id": f"{prefix}-hello", "startNode": "g", "states": {"g": state}}
    if comment is not None:
        workflow["comment"] = comment
    path = tmp_path / f"{prefix}-{comment or 'plain'}{'-bad' if bad else ''}.json"
    path.write_text(json.dumps({"nodeDefinitions": [node], "workflowDefinitions": [workflow]}))
    return path


def _versions(client: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/workflowDefinition/{workflow_id}/versions")
    assert response.status_code == 200, response.text
    versions: list[dict[str, Any]] = response.json()
    return versions


def _at(client: httpx.Client, kind: str, def_id: str, version: str) -> dict[str, Any]:
    response = client.get(f"/{kind}/{def_id}", params={"version": version})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _changes_announced(client: httpx.Client) -> float:
    """The dsl-store's own count of definition changes (every write announces one)."""
    text = client.get("/metrics").text
    return sum(float(v) for v in re.findall(r"^drift_dsl_changes_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def test_apply_twice_publishes_and_activates_once_then_changes_nothing(
    store: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drift apply --publish --activate` creates, publishes and activates; applying the same bundle again
    succeeds and writes nothing (no new version, no change announced)."""
    bundle = _bundle(tmp_path, "twice")
    assert main(["apply", "-f", str(bundle), "--publish", "--activate"]) == 0
    out = capsys.readouterr().out
    assert "nodeDefinition twice-greet: SNAPSHOT created, published version 1" in out
    assert "workflowDefinition twice-hello: SNAPSHOT created, published version 1" in out
    assert [v["version"] for v in _versions(store, "twice-hello")] == ["1"]
    assert _at(store, "workflowDefinition", "twice-hello", "ACTIVE")["version"] == "1"

    before = _changes_announced(store)
    assert before >= 4  # two creates, two publishes: the count does see writes
    assert main(["apply", "-f", str(bundle), "--publish", "--activate"]) == 0
    out = capsys.readouterr().out
    assert "workflowDefinition twice-hello: SNAPSHOT unchanged, LATEST 1, ACTIVE 1" in out
    assert "nodeDefinition twice-greet: SNAPSHOT unchanged, LATEST 1" in out
    assert _changes_announced(store) == before
    assert [v["version"] for v in _versions(store, "twice-hello")] == ["1"]


def test_apply_updates_the_snapshot_and_publishes_and_activates_only_when_asked(
    store: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A changed definition updates only the SNAPSHOT; --publish then freezes it as the next number without
    activating it; --activate makes it ACTIVE; an unchanged SNAPSHOT is never published as a new number."""
    assert main(["apply", "-f", str(_bundle(tmp_path, "steps")), "--publish", "--activate"]) == 0
    changed = _bundle(tmp_path, "steps", comment="second")

    assert main(["apply", "-f", str(changed)]) == 0
    assert "workflowDefinition steps-hello: SNAPSHOT updated, LATEST 1, ACTIVE 1" in capsys.readouterr().out
    assert _at(store, "workflowDefinition", "steps-hello", "SNAPSHOT")["comment"] == "second"
    assert "comment" not in _at(store, "workflowDefinition", "steps-hello", "LATEST")

    assert main(["apply", "-f", str(changed), "--publish"]) == 0
    out = capsys.readouterr().out
    assert "workflowDefinition steps-hello: SNAPSHOT unchanged, published version 2, ACTIVE 1" in out
    assert "nodeDefinition steps-greet: SNAPSHOT unchanged, LATEST 1" in out
    assert _at(store, "workflowDefinition", "steps-hello", "LATEST")["comment"] == "second"
    assert _at(store, "workflowDefinition", "steps-hello", "ACTIVE")["version"] == "1"

    assert main(["apply", "-f", str(changed), "--publish", "--activate"]) == 0
    assert "steps-hello: SNAPSHOT unchanged, LATEST 2, activated 2" in capsys.readouterr().out
    assert _at(store, "workflowDefinition", "steps-hello", "ACTIVE")["version"] == "2"
    assert [(v["version"], v["active"]) for v in _versions(store, "steps-hello")] == [("1", False), ("2", True)]


def test_apply_prints_the_stores_pointers_and_fails(
    store: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A definition the store rejects (422) is reported with each JSON pointer on its own line and exit code 1;
    --activate with nothing published fails too; an unreadable bundle exits 2."""
    assert main(["apply", "-f", str(_bundle(tmp_path, "bad", bad=True)), "--publish"]) == 1
    captured = capsys.readouterr()
    assert "nodeDefinition bad-greet: SNAPSHOT created, published version 1" in captured.out
    assert "drift apply: workflowDefinition bad-hello: POST /workflowDefinition -> 422" in captured.err
    assert "    /states/g/nextNode: 'nowhere' is not a state" in captured.err.splitlines()

    unpublished = _bundle(tmp_path, "unpub")
    assert main(["apply", "-f", str(unpublished), "--activate"]) == 1
    assert "nothing published to activate" in capsys.readouterr().err
    assert store.get("/nodeDefinition/unpub-greet", params={"version": "LATEST"}).status_code == 404

    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["apply", "-f", str(broken)]) == 2


def test_apply_to_an_unreachable_store_fails_readably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no dsl-store listening, `drift apply` says in one stderr line which URL it tried and where that
    came from, and exits 3 (unreachable)."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DRIFT_API_KEY", KEY)
    assert main(["apply", "-f", str(_bundle(tmp_path, "away")), "--dsl-store-url", url]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"cannot reach the dsl-store at {url} (Connection refused) [set by --dsl-store-url]" in err


def test_graph_writes_each_format_and_reports_a_missing_workflow(
    store: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drift graph ID --format png|svg|mermaid -o FILE [--version V]` writes the store's tree view bytes;
    an unknown id prints the store's problem as one stderr line and exits 5 (not found)."""
    assert main(["apply", "-f", str(_bundle(tmp_path, "draw")), "--publish", "--activate"]) == 0
    capsys.readouterr()
    png, svg, mermaid = tmp_path / "g.png", tmp_path / "g.svg", tmp_path / "g.mmd"
    assert main(["graph", "draw-hello", "--format", "png", "-o", str(png)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert main(["graph", "draw-hello", "--format", "svg", "-o", str(svg), "--version", "1"]) == 0
    assert b"<svg" in svg.read_bytes() and b"draw-greet" in svg.read_bytes()
    assert main(["graph", "draw-hello", "--format", "mermaid", "-o", str(mermaid), "--version", "ACTIVE"]) == 0
    expected = store.get("/workflowDefinition/treeView/draw-hello", params={"format": "mermaid"}).content
    assert mermaid.read_bytes() == expected and expected.startswith(b"flowchart")

    missing = tmp_path / "missing.svg"
    assert main(["graph", "no-such-workflow", "-o", str(missing)]) == 5
    assert "drift graph: no-such-workflow: 404" in capsys.readouterr().err
    assert not missing.exists()
    assert main(["graph", "draw-hello", "--version", "7", "-o", str(missing)]) == 5
    assert "has no version '7'" in capsys.readouterr().err

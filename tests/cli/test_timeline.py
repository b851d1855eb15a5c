"""`drift get --timeline`: a MAP's item visits grouped under their item, against a loopback stub gateway."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from support.loopback import HttpAnswer, HttpRequest, LoopbackServer

from drift_cli.main import main


def _visit(
    name: str, node_type: str, start: int, end: int, status: str = "COMPLETED", error: str | None = None
) -> dict[str, object]:
    return {
        "instanceName": name,
        "nodeType": node_type,
        "status": status,
        "startedAt": f"2026-01-01T00:00:0{start}+00:00",
        "finishedAt": f"2026-01-01T00:00:0{end}+00:00",
        "durationMs": (end - start) * 1000,
        "attempt": 1,
        "error": error,
    }


# Items run side by side, so their visits interleave; the MAP's own event comes after its items.
TIMELINE = {
    "workflowId": "map-1",
    "nodes": [
        _visit("start", "SCRIPT", 0, 1),
        _visit("double[0]", "SCRIPT", 1, 2),
        _visit("double[1]", "SCRIPT", 1, 2, "FAILED", "boom"),
        _visit("save[0]", "SCRIPT", 2, 4),
        _visit("all", "MAP", 1, 5),
        _visit("double[0]", "SCRIPT", 5, 6),
    ],
}


@dataclass
class TimelineGateway(LoopbackServer):
    """Answers GET /v3/workflow/map-1/timeline with TIMELINE."""

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        if request.path == "/v3/workflow/map-1/timeline":
            return HttpAnswer(200, json.dumps(TIMELINE).encode())
        return HttpAnswer(404, b'{"title": "Not Found", "status": 404}', "application/problem+json")


@pytest_asyncio.fixture(loop_scope="session")
async def gateway() -> AsyncIterator[TimelineGateway]:
    stub = TimelineGateway()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.close()


async def test_timeline_groups_map_item_visits_under_their_item(
    gateway: TimelineGateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`drift get <id> --timeline` lists each MAP item's visits indented under a row for the item
    (named by its first visit, with the item's status and span), and `-o json` keeps the raw events."""
    for name in [n for n in os.environ if n.startswith("DRIFT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DRIFT_HOME", str(tmp_path))
    monkeypatch.setenv("DRIFT_API_KEY", "key-timeline")
    monkeypatch.setenv("DRIFT_GATEWAY_URL", gateway.url)
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["get", "map-1", "--timeline"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [[cell for cell in line.split() if cell != "·"] for line in out.splitlines()]
    assert rows[0][:3] == ["NODE", "TYPE", "STATUS"]
    assert [(row[0], row[1], row[2]) for row in rows[1:]] == [
        ("start", "SCRIPT", "COMPLETED"),
        ("double[0]", "item", "COMPLETED"),
        ("double[0]", "SCRIPT", "COMPLETED"),
        ("save[0]", "SCRIPT", "COMPLETED"),
        ("double[1]", "item", "FAILED"),
        ("double[1]", "SCRIPT", "FAILED"),
        ("all", "MAP", "COMPLETED"),
        # the MAP's own event closed its items: a later MAP's item 0 is an item of its own
        ("double[0]", "item", "COMPLETED"),
        ("double[0]", "SCRIPT", "COMPLETED"),
    ]
    lines = out.splitlines()
    assert lines[3].startswith("· double[0]") and lines[4].startswith("· save[0]")
    assert lines[2].startswith("double[0]") and lines[7].startswith("all")
    item_row = rows[2]
    assert item_row[-2:] == ["3000", "-"]  # the item's span: first start (1 s) to last end (4 s)
    assert rows[5][-1] == "boom"  # the failed item's row carries its error

    code = await asyncio.to_thread(main, ["get", "map-1", "--timeline", "-o", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == TIMELINE["nodes"]

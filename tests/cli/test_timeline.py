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


# Events come as nodes finish: the PARALLEL's own event after its branches' visits, then the next node.
PARALLEL_TIMELINE = {
    "workflowId": "par-1",
    "nodes": [
        _visit("begin", "SCRIPT", 0, 1),
        _visit("right", "SCRIPT", 1, 2),
        _visit("left", "SCRIPT", 1, 3),
        _visit("both", "PARALLEL", 1, 4),
        _visit("after", "SCRIPT", 4, 5),
    ],
}
TIMELINES = {"map-1": TIMELINE, "par-1": PARALLEL_TIMELINE}


@dataclass
class TimelineGateway(LoopbackServer):
    """Answers GET /v3/workflow/<id>/timeline with TIMELINES[id]."""

    async def respond(self, request: HttpRequest) -> HttpAnswer:
        parts = request.path.split("/")
        if len(parts) == 5 and parts[4] == "timeline" and parts[3] in TIMELINES:
            return HttpAnswer(200, json.dumps(TIMELINES[parts[3]]).encode())
        return HttpAnswer(404, b'{"title": "Not Found", "status": 404}', "application/problem+json")


@pytest_asyncio.fixture(loop_scope="session")
async def gateway() -> AsyncIterator[TimelineGateway]:
    stub = TimelineGateway()
    await stub.start()
    try:
        yield stub
    finally:
        await stub.close()


@pytest.fixture
def cli(gateway: TimelineGateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI's environment: the stub gateway, an API key, a home of its own, no other DRIFT_ variable."""
    for name in [n for n in os.environ if n.startswith("DRIFT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DRIFT_HOME", str(tmp_path))
    monkeypatch.setenv("DRIFT_API_KEY", "key-timeline")
    monkeypatch.setenv("DRIFT_GATEWAY_URL", gateway.url)


async def test_timeline_groups_map_item_visits_under_their_item(cli: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`drift get <id> --timeline` lists each MAP item's visits indented under a row for the item
    (named by its first visit, with the item's status and span), and `-o json` keeps the raw events."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["get", "map-1", "--timeline"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [[cell for cell in line.split() if cell != "·"] for line in out.splitlines()]
    assert rows[0][:3] == ["NODE", "TYPE", "STATUS"]
    assert [(row[0], row[1], row[2]) for row in rows[1:]] == [
        ("start", "SCRIPT", "COMPLETED"),
        # the MAP's row where it started, before the items it ran (its event came after theirs)
        ("all", "MAP", "COMPLETED"),
        ("double[0]", "item", "COMPLETED"),
        ("double[0]", "SCRIPT", "COMPLETED"),
        ("save[0]", "SCRIPT", "COMPLETED"),
        ("double[1]", "item", "FAILED"),
        ("double[1]", "SCRIPT", "FAILED"),
        # the MAP's own event closed its items: a later MAP's item 0 is an item of its own
        ("double[0]", "item", "COMPLETED"),
        ("double[0]", "SCRIPT", "COMPLETED"),
    ]
    lines = out.splitlines()
    assert lines[4].startswith("· double[0]") and lines[5].startswith("· save[0]")
    assert lines[3].startswith("double[0]") and lines[2].startswith("all")
    item_row = rows[3]
    assert item_row[-2:] == ["3000", "-"]  # the item's span: first start (1 s) to last end (4 s)
    assert rows[6][-1] == "boom"  # the failed item's row carries its error

    code = await asyncio.to_thread(main, ["get", "map-1", "--timeline", "-o", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == TIMELINE["nodes"]


async def test_timeline_never_shows_a_node_starting_before_the_one_above_it(
    cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PARALLEL's row comes where it started, before its branches' visits: no row starts before the one above it."""
    capsys.readouterr()
    code = await asyncio.to_thread(main, ["get", "par-1", "--timeline"])
    out = capsys.readouterr().out
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [row[0] for row in rows] == ["begin", "both", "right", "left", "after"]
    started = [row[4] for row in rows]
    assert started == sorted(started), started
    # The raw events keep the order they came in.
    code = await asyncio.to_thread(main, ["get", "par-1", "--timeline", "-o", "json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == PARALLEL_TIMELINE["nodes"]

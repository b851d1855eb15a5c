"""`python -m benchmarks.studio [--smoke]`: how fast the Studio draws big graphs in headless Chromium.

Two figures, each the median of several page loads, from navigation to the last element drawn:
- the designer opening a 200-state definition (every state drawn on the laid-out graph), and
- a run's page with 1,000 node visits (graph statuses, and all 1,000 timeline rows).

The Studio runs in-process against a loopback stand-in for the gateway and the dsl-store that
answers those two shapes at once, so the figures are the browser's and the Studio's alone. The
goal is under 2 s each; the report gives each time as a ratio of that goal (below 1.0 is met).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from litestar import Litestar, get

from drift_cli.servers import free_port
from drift_runtime.auth import ApiKeys
from drift_studio.app import create_app
from drift_studio.config import Settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "studio-benchmark.md"
GOAL_S = 2.0
KEY = "bench-key"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def big_definition(states: int) -> dict[str, Any]:
    """A chain of SCRIPT states with a BRANCH every tenth state (a side exit to a FAILURE)."""
    graph: dict[str, Any] = {}
    for index in range(states - 1):
        name = f"s{index:03d}"
        following = f"s{index + 1:03d}" if index + 1 < states - 1 else "done"
        if index % 10 == 9:
            node = {
                "id": name,
                "type": "BRANCH",
                "choices": [{"rule": "{% $global.params.stop %}", "nextNode": "done"}],
                "defaultNode": following,
            }
            graph[name] = {"nodeDefinition": node}
        else:
            graph[name] = {"nodeDefinition": {"id": name, "type": "SCRIPT", "output": "{% 1 %}"}, "nextNode": following}
    graph["done"] = {"nodeDefinition": {"id": "done", "type": "SUCCESS"}, "end": True}
    return {"id": "big", "startNode": "s000", "version": "1", "states": graph}


def loop_definition() -> dict[str, Any]:
    """Twenty states in a loop: a run of it visits each many times."""
    graph: dict[str, Any] = {}
    for index in range(19):
        following = f"l{index + 1:02d}"
        graph[f"l{index:02d}"] = {"nodeDefinition": {"id": f"l{index:02d}", "type": "SCRIPT"}, "nextNode": following}
    graph["l19"] = {
        "nodeDefinition": {"id": "l19", "type": "BRANCH", "choices": [{"rule": "{% true %}", "nextNode": "l00"}]}
    }
    return {"id": "loop", "startNode": "l00", "version": "1", "states": graph}


def timeline(visits: int) -> dict[str, Any]:
    nodes = [
        {
            "instanceName": f"l{index % 20:02d}",
            "nodeType": "BRANCH" if index % 20 == 19 else "SCRIPT",
            "status": "COMPLETED",
            "startedAt": f"2026-01-01T00:{index // 600:02d}:{(index // 10) % 60:02d}.{index % 10}00Z",
            "finishedAt": f"2026-01-01T00:{index // 600:02d}:{(index // 10) % 60:02d}.{index % 10}50Z",
            "durationMs": 50,
            "attempt": 1,
        }
        for index in range(visits)
    ]
    return {"workflowId": "run-big", "nodes": nodes}


def stand_in(states: int, visits: int) -> Litestar:
    """The gateway's and the dsl-store's answers the two pages need."""
    definitions = {"big": big_definition(states), "loop": loop_definition()}
    context = {"params": {}, **{f"l{i:02d}": {"i": i} for i in range(20)}}

    @get("/workflowDefinition/{definition_id:str}")
    async def definition(definition_id: str) -> dict[str, Any]:
        return definitions[definition_id]

    @get("/workflowDefinition/{definition_id:str}/versions")
    async def versions(definition_id: str) -> list[dict[str, Any]]:
        return [{"version": "1", "publishedAt": "2026-01-01T00:00:00Z", "active": True}]

    @get("/nodeDefinition")
    async def nodes() -> dict[str, Any]:
        return {"items": [], "nextPageToken": None}

    @get("/v3/workflow/{workflow_id:str}")
    async def run(workflow_id: str) -> dict[str, Any]:
        return {"workflowId": workflow_id, "workflowStatus": "COMPLETED", "currentNode": "l19", "context": context}

    @get("/v3/workflow/{workflow_id:str}/timeline")
    async def run_timeline(workflow_id: str) -> dict[str, Any]:
        return timeline(visits)

    return Litestar([definition, versions, nodes, run, run_timeline], openapi_config=None, logging_config=None)


@contextlib.asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def measure(page: Any, url: str, ready_js: str, rounds: int) -> list[float]:
    """Seconds from navigation start to `ready_js` being true, `rounds` times (after one warm-up)."""
    times: list[float] = []
    for index in range(rounds + 1):
        await page.goto("about:blank")
        began = time.perf_counter()
        await page.goto(url)
        await page.wait_for_function(ready_js, timeout=60_000, polling="raf")
        if index:
            times.append(time.perf_counter() - began)
    return times


async def run(states: int, visits: int, rounds: int) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    async with serving(stand_in(states, visits)) as upstream:
        settings = Settings(
            port=0,
            bind_host="127.0.0.1",
            gateway_url=upstream,
            dsl_store_url=upstream,
            nats_url="nats://127.0.0.1:1",  # no live feed here: the pages are measured, not NATS
            api_keys=ApiKeys({KEY: "bench"}),
            log_format="console",
            log_level="WARNING",
        )
        async with serving(create_app(settings)) as studio, async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1440, "height": 900}, base_url=studio)
            await context.add_init_script(
                f"sessionStorage.setItem('drift.apiKey', '{KEY}'); sessionStorage.setItem('drift.tenant', 'bench');"
            )
            page = await context.new_page()
            designer = await measure(
                page,
                "/workflows/big",
                f"() => document.querySelectorAll('.react-flow__node').length === {states}"
                " && !!document.querySelector('.step[data-instance=\"done\"]')",
                rounds,
            )
            run_page = await measure(
                page,
                "/runs/run-big?definition=loop&version=1",
                f"() => document.querySelectorAll('.timeline-table tbody tr').length === {visits}"
                " && document.querySelectorAll('.step.status-COMPLETED').length === 20",
                rounds,
            )
            await browser.close()
    return {"designer": designer, "run": run_page}


def report(results: dict[str, list[float]], states: int, visits: int) -> str:
    rows = [
        ("designer opens a definition", f"{states} states", results["designer"]),
        ("run page draws a run", f"{visits} node visits", results["run"]),
    ]
    lines = [
        "# Studio page benchmark",
        "",
        "Written by `python -m benchmarks.studio`: headless Chromium (Debian's), the Studio in-process,",
        "the APIs stood in for on loopback. Time from navigation to the last element drawn, median of",
        f"the rounds after one warm-up; goal under {GOAL_S:.0f} s, ratio = time / goal (below 1.00 is met).",
        "",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} when the report was written"
        " (other work on the machine slows the browser; compare runs at similar load).",
        "",
        "| page | size | median | ratio to goal | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, size, samples in rows:
        median = statistics.median(samples)
        met = "yes" if median < GOAL_S else "no"
        lines.append(f"| {name} | {size} | {median * 1000:.0f} ms | {median / GOAL_S:.2f} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studio")
    parser.add_argument("--smoke", action="store_true", help="small sizes, one round (checks it still runs)")
    parser.add_argument("--out", type=Path, default=None, help=f"where to write the report (full runs: {DEFAULT_OUT})")
    args = parser.parse_args()
    states, visits, rounds = (20, 50, 1) if args.smoke else (200, 1000, 5)
    results = asyncio.run(run(states, visits, rounds))
    text = report(results, states, visits)
    print(text)
    out = args.out or (None if args.smoke else DEFAULT_OUT)
    if out is not None:
        out.write_text(text)
        print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

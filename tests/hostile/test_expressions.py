"""Expressions as a weapon: regexes, memory, long builtins, depth and the clock, run by `mallory`.

Each test is one of the expression defects of the hostile-tenant report, run on the suite's own
platform while the well-behaved tenant `globex` keeps completing ordinary runs within seconds. The
worker evaluates every expression in its pool of evaluator processes (drift_worker.evaluator): a
runaway is killed at its deadline, memory is capped per process, and one tenant holds at most half
of the processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from drift_cli.platform import Platform
from drift_worker.evaluator import DEFAULT_MEMORY_MIB
from hostile.support import VictimCheck, bearer, define, inline

pytestmark = pytest.mark.asyncio(loop_scope="session")

MEMORY_BOUND = DEFAULT_MEMORY_MIB * 1024 * 1024
"""The documented memory bound of each evaluator process (DRIFT_EVALUATOR_MEMORY_MIB, not set here)."""


def _script(output: Any) -> dict[str, Any]:
    return {"nodeDefinition": {"id": "inline", "type": "SCRIPT", "output": output}, "nextNode": "done"}


async def _define(store: httpx.AsyncClient, output: Any, disposition: Any = "DONE") -> str:
    """Create and publish a workflow of one SCRIPT node (then SUCCESS with `disposition`); answers its id."""
    states = {"script": _script(output), "done": inline({"type": "SUCCESS", "disposition": disposition})}
    return await define(store, states, "script", prefix="expr")


async def _run(client: httpx.AsyncClient, definition_id: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start a run synchronously; its final answer."""
    answer = await client.post(
        "/v3/workflow/start",
        json={"workflow": {"id": definition_id}, "workflowId": f"expr-{uuid.uuid4().hex[:12]}", "params": params or {}},
    )
    assert answer.status_code == 200, answer.text[:300]
    body: dict[str, Any] = answer.json()
    return body


async def _attack(client: httpx.AsyncClient, definition_id: str, runs: int) -> list[dict[str, Any]]:
    """`runs` concurrent runs of the attacker's workflow (more than its share of the evaluators)."""
    return list(await asyncio.gather(*(_run(client, definition_id) for _ in range(runs))))


# -- evaluator processes, as the host sees them -------------------------------------------------------


def _evaluators(platform: Platform) -> list[int]:
    """Pids of the platform worker's evaluator processes (its process group, this module's command)."""
    worker = next(process for process in platform.processes if process.name.startswith("worker"))
    group = worker.pid
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 5 of /proc/<pid>/stat is the process group (after the parenthesised command name).
        if b"drift_worker.evaluator" in command and int(stat.rsplit(")", 1)[1].split()[2]) == group:
            found.append(int(entry.name))
    return found


def _status_bytes(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class MemoryWatch:
    """The largest resident size any evaluator of the worker reached while watched."""

    platform: Platform
    peak: int = 0
    seen: set[int] = field(default_factory=set)

    async def watch(self, stop: asyncio.Event) -> None:
        # Sampling: a process's memory has no event to await. VmHWM is each process's own peak.
        while not stop.is_set():
            for pid in _evaluators(self.platform):
                self.seen.add(pid)
                self.peak = max(self.peak, _status_bytes(pid, "VmHWM") or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


async def _watched(platform: Platform, attack: asyncio.Future[Any]) -> MemoryWatch:
    watch = MemoryWatch(platform)
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(watch.watch(stop))
    try:
        await asyncio.wait([attack])
    finally:
        stop.set()
        await watcher
    return watch


@pytest.fixture
def evaluators(hostile_platform: Platform) -> list[int]:
    """The worker's evaluator pids (warm before the worker polls)."""
    return _evaluators(hostile_platform)


# -- 1. regexes -----------------------------------------------------------------------------------------


async def test_backtracking_regexes_answer_at_once_and_never_freeze_the_worker(
    attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """`/a*a*a*b/` on 10,000 characters and `/(.*a){12}b/` on 40 (days on a backtracking engine) answer
    at once on the linear-time engine, while the victim's runs keep completing."""
    definition_id = await _define(
        attacker_store,
        {
            "poly": "{% $contains($pad('', 10000, 'a'), /a*a*a*b/) %}",
            "fixed": "{% $contains($pad('', 40, 'a'), /(.*a){12}b/) %}",
            "nested": "{% $contains($pad('', 5000, 'a'), /(a+)+b/) %}",
        },
    )
    attack = asyncio.ensure_future(_attack(attacker, definition_id, 6))
    await victim_keeps_completing(attack)
    for run in attack.result():
        assert run["workflowStatus"] == "COMPLETED", run.get("errorMessage")


async def test_a_regex_feature_needing_backtracking_is_refused_naming_it(
    attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """A backreference (the classic way to force exponential matching) is refused when the definition is
    stored, with a pointer; smuggled through `$eval`, it fails the run with the same clear error."""
    refused = await attacker_store.post(
        "/workflowDefinition",
        json={
            "id": f"expr_{uuid.uuid4().hex[:10]}",
            "startNode": "script",
            "states": {"script": {**_script("{% $contains('aab', /^(a|a?)+\\1$/) %}"), "nextNode": None, "end": True}},
        },
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["errors"][0]
    assert error["pointer"] == "/states/script/nodeDefinition/output"
    assert "uses a backreference" in error["message"]
    definition_id = await _define(attacker_store, "{% $eval('$contains(\"aab\", /^(a|a?)+\\\\1$/)') %}")
    attack = asyncio.ensure_future(_attack(attacker, definition_id, 4))
    await victim_keeps_completing(attack)
    for run in attack.result():
        assert run["workflowStatus"] == "FAILED"
        assert "uses a backreference" in run["errorMessage"]


# -- 2. memory ------------------------------------------------------------------------------------------


async def test_memory_hungry_expressions_stay_within_the_documented_bound(
    hostile_platform: Platform,
    attacker: httpx.AsyncClient,
    attacker_store: httpx.AsyncClient,
    victim_keeps_completing: VictimCheck,
    evaluators: list[int],
) -> None:
    """Expressions building gigabytes fail their run, no evaluator ever holds more than the documented bound,
    and the victim's runs keep completing."""
    assert evaluators, "the worker runs its expressions in evaluator processes"
    for pid in evaluators:
        limits = Path(f"/proc/{pid}/limits").read_text()
        line = next(row for row in limits.splitlines() if row.startswith("Max address space"))
        assert line.split()[3] == str(MEMORY_BOUND)
    # Eight fields of 80 MB each (each within the one-second time bound), held together in one output.
    field_expression = "{% $map([1..10], function($i) { $pad('', 2000000, '😀') }) %}"
    definition_id = await _define(attacker_store, {f"f{n}": field_expression for n in range(8)})
    attack = asyncio.ensure_future(_attack(attacker, definition_id, 3))
    watch = await _watched(hostile_platform, asyncio.ensure_future(victim_keeps_completing(attack)))
    for run in attack.result():
        assert run["workflowStatus"] == "FAILED"
        message = run["errorMessage"]
        # Whichever bound stops it first: the memory bound, or (on a loaded host) the time bound.
        stopped = (f"exceeded the memory bound of {DEFAULT_MEMORY_MIB} MiB", "time limit", "Evaluation timeout")
        assert any(reason in message for reason in stopped), message
    assert watch.seen
    assert 0 < watch.peak <= MEMORY_BOUND


# -- 3. depth -------------------------------------------------------------------------------------------


async def test_map_over_thousands_of_items_building_objects_completes(
    attacker: httpx.AsyncClient, attacker_store: httpx.AsyncClient, victim_keeps_completing: VictimCheck
) -> None:
    """`$map` over 500 items building two-key objects (failed at 197 items: D1011) completes.

    (10,000 items are evaluated in tests/schema; here the host is shared with the whole suite, so the
    run stays well inside the one-second time bound.)"""
    definition_id = await _define(
        attacker_store,
        "{% $count($map($global.params.items, function($i) { {'id': $i.id, 'name': $i.name} })) %}",
    )
    items = [{"id": n, "name": f"n{n}"} for n in range(500)]
    attack = asyncio.ensure_future(_run(attacker, definition_id, {"items": items}))
    await victim_keeps_completing(attack)
    assert attack.result()["workflowStatus"] == "COMPLETED", attack.result().get("errorMessage")


# -- 4. long builtins -----------------------------------------------------------------------------------


async def test_long_builtins_are_stopped_and_never_starve_other_tenants(
    hostile_platform: Platform,
    attacker: httpx.AsyncClient,
    attacker_store: httpx.AsyncClient,
    victim_keeps_completing: VictimCheck,
) -> None:
    """Six runs of `$count($distinct([1..100000]))` fail at their deadline (their processes are killed, not
    left running) while the victim's SCRIPT runs keep completing."""
    definition_id = await _define(attacker_store, "{% $count($distinct([1..100000])) %}")
    before = set(_evaluators(hostile_platform))
    attack = asyncio.ensure_future(_attack(attacker, definition_id, 6))
    times = await victim_keeps_completing(attack)
    assert len(times) >= 3
    for run in attack.result():
        assert run["workflowStatus"] == "FAILED"
        # Killed at its deadline, or (queued behind its own tenant's share) refused after waiting its deadline.
        message = run["errorMessage"]
        assert "longer than its time limit" in message or "share of the evaluators stayed busy" in message, message
    # The processes that ran the builtins were killed and replaced: the work did not go on after the answer.
    assert before - set(_evaluators(hostile_platform))
    # ... and replaced by warm successors (start-up has no event visible from here: poll with a deadline).
    async with asyncio.timeout(30):
        while len(_evaluators(hostile_platform)) < len(before):
            await asyncio.sleep(0.1)


# -- 5. the clock ---------------------------------------------------------------------------------------


@pytest.fixture
async def spare(hostile_platform: Platform) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The gateway and the dsl-store as the spare tenant `acme` (untouched by the attacks above)."""
    headers = bearer("key-acme")
    async with (
        httpx.AsyncClient(base_url=hostile_platform.gateway_url, headers=headers, timeout=60) as gateway,
        httpx.AsyncClient(base_url=hostile_platform.dsl_store_url, headers=headers, timeout=60) as store,
    ):
        yield gateway, store


async def test_now_is_the_runs_own_time(spare: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
    """`$millis()` and `$now()` read each run's own evaluation time, however expressions are cached."""
    gateway, store = spare
    definition_id = await _define(
        store,
        {"millis": "{% $millis() %}", "now": "{% $now() %}", "other": "{% $millis() + 1 %}"},
        "{% $global.script %}",
    )
    for _ in range(5):
        began = time.time_ns() // 1_000_000
        run = await _run(gateway, definition_id)
        ended = time.time_ns() // 1_000_000
        assert run["workflowStatus"] == "COMPLETED", run.get("errorMessage")
        seen = run["disposition"]
        assert began <= seen["millis"] <= ended
        assert seen["now"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(began / 1000)))

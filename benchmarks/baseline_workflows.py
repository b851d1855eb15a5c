"""The baselines' workflows, loaded by the baseline worker process (sandbox-safe imports only).

`BaselineWorkflow` is the generic interpreter itself plus one update that answers at the
run's first stable state, so a direct Temporal client can do update-with-start and return
at the same node a sync start through the gateway returns at. `HandWrittenChain` is what a
Temporal user would write by hand for a chain of pure steps: one local activity per step;
`HandWrittenHttpChain` the same for HTTP calls (one activity per call), and `HandWrittenLoop` a
two-step loop that continues as new every `LOOP_VISITS_PER_RUN` steps.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow

# Not passed through: the sandbox loads the interpreter's module for each run here exactly as
# it does in the drift-worker process, so the baseline pays the same sandbox costs.
from drift_worker.workflow import GenericWorkflow

with workflow.unsafe.imports_passed_through():
    from drift_schema.run import WORKFLOW_NAME, RunInput, RunSnapshot

UNTIL_STABLE_UPDATE = "bench.until_stable"
CHAIN_WORKFLOW = "bench.hand_written_chain"
STEP_ACTIVITY = "bench.step"
HTTP_CHAIN_WORKFLOW = "bench.hand_written_http_chain"
HTTP_ACTIVITY = "bench.http_get"
LOOP_WORKFLOW = "bench.hand_written_loop"
AGAIN_ACTIVITY = "bench.again"
LOOP_VISITS_PER_RUN = 500
"""The hand-written loop continues as new after this many steps (a Temporal user's usual guard)."""


@workflow.defn(name=WORKFLOW_NAME)
class BaselineWorkflow(GenericWorkflow):
    """The generic workflow (same name, another task queue) with an update-with-start target."""

    @workflow.init
    def __init__(self, run: RunInput) -> None:
        super().__init__(run)

    @workflow.run
    async def run(self, run: RunInput) -> RunSnapshot:
        return await super().run(run)

    @workflow.update(name=UNTIL_STABLE_UPDATE)
    async def until_stable(self) -> RunSnapshot:
        """Answer once the run is WAITING, SCHEDULER_WAITING or final: what a sync start answers at."""
        await workflow.wait_condition(lambda: self.status.is_stable)
        return self.snapshot()


@workflow.defn(name=CHAIN_WORKFLOW)
class HandWrittenChain:
    """`steps` local activities in a row, each adding one to a counter in the context."""

    @workflow.run
    async def run(self, steps: int) -> dict[str, Any]:
        context: dict[str, Any] = {"count": 0}
        for _ in range(steps):
            context = await workflow.execute_local_activity(
                STEP_ACTIVITY, context, start_to_close_timeout=timedelta(seconds=10), result_type=dict
            )
        return context


FAN_OUT_WORKFLOW = "bench.hand_written_fan_out"


@workflow.defn(name=FAN_OUT_WORKFLOW)
class HandWrittenFanOut:
    """What a Temporal user writes for "for each item, a pure step": `items` local activities, 10 at a time,
    results kept in item order (the MAP figure's baseline)."""

    @workflow.run
    async def run(self, items: int) -> list[Any]:
        results: list[Any] = [None] * items
        pending = iter(range(items))

        async def worker() -> None:
            for index in pending:
                results[index] = await workflow.execute_local_activity(
                    STEP_ACTIVITY, {"count": index}, start_to_close_timeout=timedelta(seconds=10), result_type=dict
                )

        await asyncio.gather(*(worker() for _ in range(min(10, items))))
        return results


@workflow.defn(name=HTTP_CHAIN_WORKFLOW)
class HandWrittenHttpChain:
    """One activity per URL, in a row, each a GET whose JSON answer is kept under the step's name."""

    @workflow.run
    async def run(self, urls: list[str]) -> dict[str, Any]:
        context: dict[str, Any] = {}
        for index, url in enumerate(urls):
            context[f"h{index}"] = await workflow.execute_activity(
                HTTP_ACTIVITY, url, start_to_close_timeout=timedelta(seconds=30), result_type=dict
            )
        return context


@workflow.defn(name=LOOP_WORKFLOW)
class HandWrittenLoop:
    """The P4 loop by hand: count (+1), then ask whether to go again; continue as new every few hundred steps.

    Input and result: `{"iterations": N, "count": c}`; the result's count is N.
    """

    @workflow.run
    async def run(self, state: dict[str, int]) -> dict[str, int]:
        context: dict[str, Any] = {"count": state["count"]}
        steps = 0
        while True:
            context = await workflow.execute_local_activity(
                STEP_ACTIVITY, context, start_to_close_timeout=timedelta(seconds=10), result_type=dict
            )
            again = await workflow.execute_local_activity(
                AGAIN_ACTIVITY,
                [context["count"], state["iterations"]],
                start_to_close_timeout=timedelta(seconds=10),
                result_type=bool,
            )
            steps += 2
            if not again:
                return {"iterations": state["iterations"], "count": context["count"]}
            if steps >= LOOP_VISITS_PER_RUN:
                workflow.continue_as_new({"iterations": state["iterations"], "count": context["count"]})

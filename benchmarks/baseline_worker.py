"""The baseline worker process: the drift-worker process itself, plus the baselines' workflows.

Run as `python -m benchmarks.baseline_worker` with the drift-worker's environment and its own
DRIFT_TASK_QUEUE: same settings, same sandbox, same activities, same executor, so a baseline
run differs from a Drift run only in what the platform adds around the worker.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

import drift_worker.app
from benchmarks.baseline_workflows import (
    AGAIN_ACTIVITY,
    HTTP_ACTIVITY,
    STEP_ACTIVITY,
    BaselineWorkflow,
    HandWrittenChain,
    HandWrittenFanOut,
    HandWrittenHttpChain,
    HandWrittenLoop,
)

BASELINES_MODULE = BaselineWorkflow.__module__

# One shared client, as a Temporal user's worker (and the drift-worker) keeps one: connections are reused.
_HTTP: httpx.AsyncClient | None = None


@activity.defn(name=STEP_ACTIVITY)
async def step(context: dict[str, Any]) -> dict[str, Any]:
    """One hand-written pure step: the counter plus one."""
    return {**context, "count": context["count"] + 1}


@activity.defn(name=AGAIN_ACTIVITY)
async def again(count_and_limit: list[int]) -> bool:
    """The hand-written loop's branch: go on while the count is below the limit."""
    count, limit = count_and_limit
    return count < limit


@activity.defn(name=HTTP_ACTIVITY)
async def http_get(url: str) -> dict[str, Any]:
    """One hand-written HTTP call: GET `url`, fail on a non-2xx answer, return its JSON body."""
    global _HTTP
    if _HTTP is None:
        _HTTP = httpx.AsyncClient(timeout=30, trust_env=False)
    answer = await _HTTP.get(url)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _worker(client: Client, **options: Any) -> Worker:
    # build_worker's own Worker(...) call, with the baselines registered instead of the bare interpreter.
    options["workflows"] = [
        BaselineWorkflow,
        HandWrittenChain,
        HandWrittenFanOut,
        HandWrittenHttpChain,
        HandWrittenLoop,
    ]
    options["activities"] = [*options["activities"], step, again, http_get]
    # Passed through like the interpreter's module (drift_worker.app.sandbox_runner), not re-imported per run.
    options["workflow_runner"] = drift_worker.app.sandbox_runner(BASELINES_MODULE)
    return Worker(client, **options)


def main() -> None:
    """drift-worker's main with the baselines' workflows registered."""
    drift_worker.app.Worker = _worker  # type: ignore[misc, assignment]
    drift_worker.app.main()


if __name__ == "__main__":
    main()

"""The baseline worker process: the drift-worker process itself, plus the baselines' workflows.

Run as `python -m benchmarks.baseline_worker` with the drift-worker's environment and its own
DRIFT_TASK_QUEUE: same settings, same sandbox, same activities, same executor, so a baseline
run differs from a Drift run only in what the platform adds around the worker.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

import drift_worker.app
from benchmarks.baseline_workflows import STEP_ACTIVITY, BaselineWorkflow, HandWrittenChain, HandWrittenFanOut


@activity.defn(name=STEP_ACTIVITY)
async def step(context: dict[str, Any]) -> dict[str, Any]:
    """One hand-written pure step: the counter plus one."""
    return {**context, "count": context["count"] + 1}


def _worker(client: Client, **options: Any) -> Worker:
    # build_worker's own Worker(...) call, with the baselines registered instead of the bare interpreter.
    options["workflows"] = [BaselineWorkflow, HandWrittenChain, HandWrittenFanOut]
    options["activities"] = [*options["activities"], step]
    return Worker(client, **options)


def main() -> None:
    """drift-worker's main with the baselines' workflows registered."""
    drift_worker.app.Worker = _worker  # type: ignore[misc, assignment]
    drift_worker.app.main()


if __name__ == "__main__":
    main()

"""Names the hostile-tenant tests share: the victim's workflow, its deadline, and one ordinary run."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import httpx

VICTIM_DEADLINE_S = 5.0
"""How long one ordinary sync start of the well-behaved tenant may take while an attack runs."""

ORDINARY = {
    "nodeDefinitions": [
        {
            "id": "ordinary_sum",
            "type": "SCRIPT",
            "output": "{% {'total': $sum($global.params.values), 'n': $count($global.params.values)} %}",
        },
        {"id": "ordinary_done", "type": "SUCCESS", "disposition": "{% 'TOTAL ' & $string($global.sum.total) %}"},
    ],
    "workflowDefinitions": [
        {
            "id": "ordinary",
            "startNode": "sum",
            "states": {
                "sum": {"resourceId": "ordinary_sum", "nextNode": "done"},
                "done": {"resourceId": "ordinary_done", "end": True},
            },
        }
    ],
}
"""The victim's workflow: one SCRIPT node and a SUCCESS, stored for every tenant."""


VictimCheck = Callable[[Awaitable[object]], Awaitable[list[float]]]
"""Runs an attack while the victim keeps starting ordinary runs; answers the victim's run times."""


async def ordinary_run(victim: httpx.AsyncClient, workflow_id: str) -> float:
    """Start `ordinary` synchronously as the victim; the seconds it took to answer COMPLETED."""
    began = time.monotonic()
    answer = await victim.post(
        "/v3/workflow/start",
        json={"workflow": {"id": "ordinary"}, "workflowId": workflow_id, "params": {"values": [1, 2, 3]}},
    )
    took = time.monotonic() - began
    assert answer.status_code == 200, answer.text
    assert answer.json()["workflowStatus"] == "COMPLETED", answer.text
    return took

"""`RunStates`: which source answers a run's state, with plain objects standing in for Temporal, Redis and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from drift_client import UnavailableError, UnreachableError
from drift_gateway.errors import NotFound, Unavailable
from drift_gateway.run_state import LiveRun, RunStates, RunUnknown, SourceDown
from drift_schema.api import Problem
from drift_schema.context import RunContext
from drift_schema.events import WorkflowEvent
from drift_schema.run import RunSnapshot
from drift_schema.statuses import WorkflowStatus

RUN = "order-42"
TENANT = "acme"


@dataclass
class Live:
    """Temporal: a run it knows, or that it knows none (RunUnknown), or that it cannot answer (SourceDown)."""

    run: LiveRun | None = None
    down: bool = False

    async def live(self, tenant: str, workflow_id: str) -> LiveRun:
        if self.down:
            raise SourceDown("temporal down")
        if self.run is None:
            raise RunUnknown(workflow_id)
        return self.run


@dataclass
class Announced:
    """Redis's last states."""

    state: WorkflowEvent | None = None
    down: bool = False

    async def announced(self, tenant: str, workflow_id: str) -> WorkflowEvent | None:
        if self.down:
            raise SourceDown("redis down")
        return self.state


@dataclass
class Kept:
    """The run-context store, recording which tenant each read was for."""

    state: RunContext | None = None
    fault: Exception | None = None
    tenants: list[str | None] = field(default_factory=list)

    async def run_context(self, workflow_id: str, *, tenant: str | None = None) -> RunContext | None:
        self.tenants.append(tenant)
        if self.fault is not None:
            raise self.fault
        return self.state


def _snapshot(status: WorkflowStatus) -> RunSnapshot:
    return RunSnapshot(workflow_id=RUN, workflow_status=status, current_node="approve", context={"live": True})


def _announced(status: WorkflowStatus) -> WorkflowEvent:
    return WorkflowEvent(workflow_id=RUN, workflow_status=status, current_node="redis", tenant=TENANT, seq=3)


def _kept(status: WorkflowStatus) -> RunContext:
    return RunContext(
        workflow_id=RUN,
        workflow_status=status,
        run_id="r1",
        seq=3,
        updated_at=datetime.now(UTC),
        current_node="stored",
        context={"kept": True},
    )


async def test_a_run_temporal_knows_answers_from_temporal() -> None:
    """A live run answers its own state and its definition, whatever Redis and the store hold."""
    run = LiveRun(WorkflowExecutionStatus.RUNNING, _snapshot(WorkflowStatus.WAITING), "loan", "3")
    kept = Kept(_kept(WorkflowStatus.COMPLETED))
    detail = await RunStates(Live(run), Announced(_announced(WorkflowStatus.COMPLETED)), kept).get(TENANT, RUN)
    assert (detail.workflow_status, detail.current_node, detail.context) == (
        WorkflowStatus.WAITING,
        "approve",
        {"live": True},
    )
    assert (detail.definition_id, detail.definition_version) == ("loan", "3")
    assert kept.tenants == []


async def test_temporal_closes_override_the_runs_own_status() -> None:
    """Terminated in Temporal answers TERMINATED; timed out while WAITING answers FAILED with Temporal's reason."""
    terminated = LiveRun(WorkflowExecutionStatus.TERMINATED, _snapshot(WorkflowStatus.WAITING))
    detail = await RunStates(Live(terminated), Announced(), None).get(TENANT, RUN)
    assert detail.workflow_status == WorkflowStatus.TERMINATED
    timed_out = LiveRun(WorkflowExecutionStatus.TIMED_OUT, _snapshot(WorkflowStatus.WAITING), "loan", "3")
    detail = await RunStates(Live(timed_out), Announced(), None).get(TENANT, RUN)
    assert (detail.workflow_status, detail.error_message) == (WorkflowStatus.FAILED, "the run timed out in Temporal")
    assert detail.definition_id == "loan"


async def test_a_forgotten_run_answers_from_the_store_first_then_redis() -> None:
    """Past retention the store's state (with its context) wins over Redis's; without it Redis's state answers."""
    kept = Kept(_kept(WorkflowStatus.COMPLETED))
    states = RunStates(Live(), Announced(_announced(WorkflowStatus.WAITING)), kept)
    detail = await states.get(TENANT, RUN)
    assert (detail.current_node, detail.context) == ("stored", {"kept": True})
    assert kept.tenants == [TENANT]
    detail = await RunStates(Live(), Announced(_announced(WorkflowStatus.WAITING)), Kept()).get(TENANT, RUN)
    assert (detail.workflow_status, detail.current_node) == (WorkflowStatus.WAITING, "redis")
    detail = await RunStates(Live(), Announced(_announced(WorkflowStatus.WAITING)), None).get(TENANT, RUN)
    assert detail.current_node == "redis"


async def test_a_run_no_source_knows_is_not_found() -> None:
    """Unknown to Temporal, the store and Redis: 404; Redis down instead of empty: 503, for the run may exist."""
    with pytest.raises(NotFound):
        await RunStates(Live(), Announced(), Kept()).get(TENANT, RUN)
    with pytest.raises(Unavailable):
        await RunStates(Live(), Announced(down=True), Kept()).get(TENANT, RUN)


async def test_a_store_that_cannot_answer_is_unavailable_not_not_found() -> None:
    """A store that is unreachable or answers 5xx makes a forgotten run 503, never a 404 or Redis's guess."""
    unreachable = UnreachableError("http://store/runs/x", httpx.ConnectError("refused"))
    for fault in (unreachable, UnavailableError(Problem(title="Bad Gateway", status=502))):
        with pytest.raises(Unavailable):
            await RunStates(Live(), Announced(_announced(WorkflowStatus.WAITING)), Kept(fault=fault)).get(TENANT, RUN)


async def test_without_temporal_redis_answers_then_the_store() -> None:
    """Temporal down: Redis's last state answers; Redis down too: the store's; nothing known anywhere: 503."""
    detail = await RunStates(Live(down=True), Announced(_announced(WorkflowStatus.WAITING)), Kept()).get(TENANT, RUN)
    assert detail.current_node == "redis"
    kept = Kept(_kept(WorkflowStatus.FAILED))
    detail = await RunStates(Live(down=True), Announced(down=True), kept).get(TENANT, RUN)
    assert (detail.workflow_status, detail.current_node) == (WorkflowStatus.FAILED, "stored")
    with pytest.raises(Unavailable):
        await RunStates(Live(down=True), Announced(down=True), Kept()).get(TENANT, RUN)
    with pytest.raises(Unavailable):
        await RunStates(Live(down=True), Announced(), None).get(TENANT, RUN)

"""Schedules (contract 9): request and answer shapes, and what the gateway and dispatcher share about them.

A Drift schedule is a Temporal Schedule with id `<tenant>~<scheduleId>`. Its action is a small
`ScheduledRun` workflow (run by the dispatcher, on `<task queue>-schedules`) that starts the Drift run
exactly as a start command would, resolving `ACTIVE` at each firing, and then waits for that run to
close: so Temporal's overlap policy applies to the Drift runs themselves.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from drift_schema.api import WorkflowRef
from drift_schema.base import Message, Shape

SCHEDULE_ID_BODY = r"[A-Za-z0-9_-]{1,111}"
SCHEDULE_ID_PATTERN = rf"^(?:{SCHEDULE_ID_BODY})$(?!\n)"
"""111 characters at most: `<scheduleId>-<yyyyMMddTHHmmssZ>` must still be a 128-character workflowId."""
ScheduleId = Annotated[str, msgspec.Meta(pattern=SCHEDULE_ID_PATTERN)]

SCHEDULED_RUN_WORKFLOW = "DriftScheduledRun"
START_ACTIVITY = "drift_schedule_start"
AWAIT_ACTIVITY = "drift_schedule_await"
MAX_INTERVAL_SECONDS = 10 * 365 * 24 * 3600
MAX_NEXT_RUN_TIMES = 5
MAX_RECENT_RUNS = 10
_RUN_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_SCHEDULE_ID = re.compile(SCHEDULE_ID_PATTERN)


class Overlap(enum.StrEnum):
    """What a firing does while the previous firing's run is still going."""

    SKIP = "SKIP"
    BUFFER_ONE = "BUFFER_ONE"
    ALLOW_ALL = "ALLOW_ALL"


def schedule_task_queue(task_queue: str) -> str:
    """The task queue of the `ScheduledRun` workflows (the dispatcher's schedule worker polls it)."""
    return f"{task_queue}-schedules"


def temporal_schedule_id(tenant: str, schedule_id: str) -> str:
    """Schedule ids are scoped by tenant in Temporal, as workflow ids are."""
    return f"{tenant}~{schedule_id}"


def action_workflow_id(tenant: str, schedule_id: str) -> str:
    """The id prefix of a schedule's `ScheduledRun` workflows (Temporal appends the firing time).

    `~schedule~` cannot occur in a Drift run's Temporal id, so these never collide with runs.
    """
    return f"{tenant}~schedule~{schedule_id}"


def is_schedule_id(value: str) -> bool:
    return _SCHEDULE_ID.match(value) is not None


def scheduled_workflow_id(schedule_id: str, fired_at: datetime) -> str:
    """The workflowId of the run a firing starts: `<scheduleId>-<UTC time as yyyyMMddTHHmmssZ>`."""
    return f"{schedule_id}-{fired_at.astimezone(UTC).strftime(_RUN_TIME_FORMAT)}"


class ScheduleRequest(Shape, frozen=True):
    """`POST /v3/schedules`: exactly one of `cron` (five fields, UTC) and `intervalSeconds`."""

    schedule_id: ScheduleId
    workflow: WorkflowRef
    cron: str | None = None
    interval_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_INTERVAL_SECONDS)] | None = None
    params: Any = None
    paused: bool = False
    overlap: Overlap = Overlap.SKIP


class ScheduledWorkflow(Message, frozen=True):
    """The definition a schedule runs, `version` always written (`ACTIVE` resolves at each firing)."""

    id: str
    version: str


class RecentRun(Message, frozen=True):
    workflow_id: str
    started_at: str


class Schedule(Message, frozen=True):
    """A schedule as the API answers it."""

    schedule_id: str
    workflow: ScheduledWorkflow
    cron: str | None
    interval_seconds: int | None
    params: Any
    paused: bool
    overlap: Overlap
    next_run_times: list[str]
    recent_runs: list[RecentRun]


class ScheduleList(Message, frozen=True):
    schedules: list[Schedule]


class ScheduleSpecMemo(Message, frozen=True):
    """What the API was given, kept in the Temporal schedule's memo (Temporal rewrites cron into calendars)."""

    workflow: WorkflowRef
    cron: str | None = None
    interval_seconds: int | None = None
    params: Any = None


class ScheduledStart(Message, frozen=True):
    """The `ScheduledRun` workflow's argument: what each firing starts."""

    tenant: str
    schedule_id: str
    workflow: WorkflowRef
    params: Any = None


class StartInput(Message, frozen=True):
    """The start activity's argument: one firing's run."""

    tenant: str
    schedule_id: str
    workflow: WorkflowRef
    workflow_id: str
    command_id: str
    params: Any = None


def utc_text(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------------- cron checking

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names counted from `lowest`)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"^(?:(\*)|([0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?)(?:/([0-9]+))?$")


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if text.isdigit():
        number = int(text)
        return number if low <= number <= high else None
    upper = text.upper()
    return names.index(upper) + low if upper in names else None


def cron_problem(cron: str) -> str | None:
    """Why `cron` is not a five-field cron expression (minute hour day-of-month month day-of-week), or None."""
    fields = cron.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}"
    for text, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for item in text.split(","):
            match = _ITEM.match(item)
            if match is None:
                return f"the {name} field '{text}' is not valid"
            star, first, last, step = match.groups()
            if step is not None and int(step) == 0:
                return f"the {name} field '{text}' has a zero step"
            if star:
                continue
            start = _value(first, low, high, names)
            end = _value(last, low, high, names) if last is not None else start
            if start is None or end is None:
                return f"the {name} field '{text}' is out of range ({low}-{high})"
            if end < start:
                return f"the {name} field '{text}' has a range that runs backwards"
    return None

"""`drift runs` and `drift schedule ...`: find runs and manage schedules from the shell (contract 8.1, 9).

Same gateway and key as the other run commands (see drift_cli.runs). Lists (`drift runs`,
`drift schedule list`) print a table by default, objects JSON; `-o json|yaml|table` chooses.
Errors are one line on stderr with the exit codes of `drift --help`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from drift_cli.output import Column, add_output, builtins, emit, table
from drift_cli.runs import _json_arg, _with_client
from drift_client import DriftClient
from drift_schema.api import WorkflowRef
from drift_schema.schedules import Overlap, ScheduleRequest
from drift_schema.search import LISTABLE_STATUSES, RunPage

RUN_COLUMNS: list[Column] = [
    ("workflow id", lambda run: run.get("workflowId")),
    ("status", lambda run: run.get("workflowStatus")),
    ("definition", lambda run: f"{run.get('definitionId') or '-'}@{run.get('definitionVersion') or '-'}"),
    ("current node", lambda run: run.get("currentNode")),
    ("started", lambda run: run.get("startedAt")),
    ("closed", lambda run: run.get("closedAt")),
]
SCHEDULE_COLUMNS: list[Column] = [
    ("schedule id", lambda s: s.get("scheduleId")),
    ("workflow", lambda s: f"{(s.get('workflow') or {}).get('id')}@{(s.get('workflow') or {}).get('version')}"),
    ("spec", lambda s: s.get("cron") or (f"every {s['intervalSeconds']}s" if s.get("intervalSeconds") else None)),
    ("paused", lambda s: s.get("paused")),
    ("next run", lambda s: (s.get("nextRunTimes") or [None])[0]),
]


def runs_table(page: RunPage) -> str:
    """The page as aligned columns, with the command for the next page when there is one."""
    text = table([builtins(run) for run in page.runs], RUN_COLUMNS)
    if page.next_page_token:
        text += f"more: --page-token {page.next_page_token}\n"
    return text


async def _runs(client: DriftClient, args: argparse.Namespace) -> Any:
    statuses = [part.strip().upper() for text in args.status or [] for part in text.split(",") if part.strip()]
    page = await client.list_runs(
        statuses=statuses or None,
        definition_id=args.definition,
        definition_version=args.version,
        started_after=args.since,
        started_before=args.until,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    fmt = "json" if args.json else args.output_format or "table"
    if fmt != "table":
        return page
    sys.stdout.write(runs_table(page))
    return None


async def _create(client: DriftClient, args: argparse.Namespace) -> Any:
    request = ScheduleRequest(
        schedule_id=args.schedule_id,
        workflow=WorkflowRef(id=args.definition, version=args.version),
        cron=args.cron,
        interval_seconds=args.every,
        params=args.params,
        paused=args.paused,
        overlap=Overlap(args.overlap),
    )
    return await client.create_schedule(request)


async def _list(client: DriftClient, args: argparse.Namespace) -> Any:
    schedules = await client.list_schedules()
    if (args.output_format or "table") == "table":
        emit(schedules, "table", SCHEDULE_COLUMNS)
        return None
    return {"schedules": schedules}


async def _get(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.get_schedule(args.schedule_id)


async def _pause(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.pause_schedule(args.schedule_id)


async def _unpause(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.unpause_schedule(args.schedule_id)


async def _trigger(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.trigger_schedule(args.schedule_id)


async def _delete(client: DriftClient, args: argparse.Namespace) -> Any:
    await client.delete_schedule(args.schedule_id)
    return {"scheduleId": args.schedule_id, "deleted": True}


def add_commands(commands: Any) -> None:
    """Register `runs` and `schedule` on the `drift` subparsers."""
    statuses = ", ".join(status.value for status in LISTABLE_STATUSES)
    runs = commands.add_parser("runs", help="list the tenant's runs, newest first, filtered and paged")
    runs.add_argument("--status", action="append", metavar="S", help=f"repeatable or comma-separated: {statuses}")
    runs.add_argument("--definition", metavar="ID", help="only runs of this workflow definition")
    runs.add_argument("--version", metavar="N", help="only runs pinned to this definition version")
    runs.add_argument("--since", metavar="TIME", help="started at or after this RFC 3339 time")
    runs.add_argument("--until", metavar="TIME", help="started before this RFC 3339 time")
    runs.add_argument("--page-size", type=int, metavar="N", help="1 to 500 (default 50)")
    runs.add_argument("--page-token", metavar="TOKEN", help="the next page of an earlier listing")
    add_output(runs, None)
    runs.add_argument("--json", action="store_true", help="the same as -o json")
    runs.set_defaults(handler=_with_client(_runs))

    schedule = commands.add_parser("schedule", help="create, list and manage schedules")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a schedule (--cron or --every)")
    create.add_argument("schedule_id")
    create.add_argument("definition", help="workflow definition id")
    create.add_argument("--version", default="ACTIVE", help="ACTIVE (default: resolved at each firing) or a number")
    timing = create.add_mutually_exclusive_group(required=True)
    timing.add_argument("--cron", help="five-field cron in UTC, e.g. '0 3 * * *'")
    timing.add_argument("--every", type=int, metavar="SECONDS", help="fire every SECONDS")
    create.add_argument("--params", type=_json_arg, help="JSON (or @file) for each run's $global.params")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--overlap", default="SKIP", choices=[overlap.value for overlap in Overlap])
    add_output(create, None)
    create.set_defaults(handler=_with_client(_create))
    listing = actions.add_parser("list", help="the tenant's schedules")
    add_output(listing, None)
    listing.set_defaults(handler=_with_client(_list))
    for name, call, text in (
        ("get", _get, "one schedule, with its next run times and recent runs"),
        ("pause", _pause, "pause a schedule"),
        ("unpause", _unpause, "unpause a schedule"),
        ("trigger", _trigger, "start one run now"),
        ("delete", _delete, "delete a schedule (runs it started go on)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("schedule_id")
        add_output(action, None)
        action.set_defaults(handler=_with_client(call))

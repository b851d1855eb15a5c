"""`drift runs` and `drift schedule ...`: find runs and manage schedules from the shell (contract 8.1, 9).

Same gateway and key as the other run commands (`DRIFT_GATEWAY_URL`, `DRIFT_API_KEY`).
`drift runs` prints a table (or the page as JSON with `--json`); schedule commands print JSON.
Exit codes: 0 done, 1 the gateway refused (its problem details are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from drift_cli.runs import _gateway_url, _json_arg, _print, api_key
from drift_client import DriftClient, DriftError
from drift_schema.api import WorkflowRef
from drift_schema.schedules import Overlap, ScheduleRequest
from drift_schema.search import LISTABLE_STATUSES, RunPage

_COLUMNS = ("WORKFLOW ID", "STATUS", "DEFINITION", "CURRENT NODE", "STARTED", "CLOSED")


def _with_client(
    call: Callable[[DriftClient, argparse.Namespace], Awaitable[Any]],
) -> Callable[[argparse.Namespace], int]:
    """A command handler: `call` with a client; its answer printed as JSON unless it printed itself (None)."""

    def handler(args: argparse.Namespace) -> int:
        async def run() -> int:
            async with DriftClient(_gateway_url(), api_key()) as client:
                try:
                    answer = await call(client, args)
                except DriftError as error:
                    _print(error.problem)
                    return 1
            if answer is not None:
                _print(answer)
            return 0

        return asyncio.run(run())

    return handler


def runs_table(page: RunPage) -> str:
    """The page as aligned columns, with the command for the next page when there is one."""
    rows = [
        (
            run.workflow_id,
            run.workflow_status.value,
            f"{run.definition_id or '-'}@{run.definition_version or '-'}",
            run.current_node or "-",
            run.started_at or "-",
            run.closed_at or "-",
        )
        for run in page.runs
    ]
    widths = [max(len(row[index]) for row in [_COLUMNS, *rows]) for index in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]
    if page.next_page_token:
        lines.append(f"more: --page-token {page.next_page_token}")
    return "\n".join(lines) + "\n"


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
    if args.json:
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
    return {"schedules": await client.list_schedules()}


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
    runs.add_argument("--json", action="store_true", help="print the page as JSON")
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
    create.set_defaults(handler=_with_client(_create))
    listing = actions.add_parser("list", help="the tenant's schedules")
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
        action.set_defaults(handler=_with_client(call))

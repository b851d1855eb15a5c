"""`drift start|resume|get|terminate|events`: runs driven from the command line through the client.

Where to: `DRIFT_GATEWAY_URL`, else http://127.0.0.1:$DRIFT_GATEWAY_PORT, else the gateway a
running `drift dev` wrote to $DRIFT_HOME/endpoints.json, else port 8000 (see drift_cli.endpoints);
as whom: `DRIFT_API_KEY` (default: the dev key `drift dev` wrote to $DRIFT_HOME/dev-api-key).
Events come from NATS (`DRIFT_NATS_URL`, `DRIFT_NATS_PORT`, endpoints.json, 4222) for `--tenant`.
Answers print as JSON by default (`-o yaml|table`); lists (timelines, events) as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import nats.errors
import nats.js.errors

from drift_cli import endpoints
from drift_cli.output import (
    EXIT_NOT_FOUND,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    Column,
    add_output,
    builtins,
    emit,
    failure_reason,
    one_line,
)
from drift_client import DriftClient, follow_events
from drift_client.events import LiveOnly
from drift_client.stream import redact_url
from drift_schema.api import TimelineEntry
from drift_schema.events import NodeEvent, WorkflowEvent

TIMELINE_COLUMNS: list[Column] = [
    ("node", lambda row: row.get("instanceName")),
    ("type", lambda row: row.get("nodeType")),
    ("status", lambda row: row.get("status")),
    ("attempt", lambda row: row.get("attempt")),
    ("started", lambda row: row.get("startedAt")),
    ("ms", lambda row: row.get("durationMs")),
    ("error", lambda row: row.get("error")),
]


_ITEM = re.compile(r"^(?P<base>.+?)(?P<indexes>(?:\[\d+\])+)$")
INDENT = "· "
"""One level of item nesting in a timeline table (table cells collapse leading spaces)."""


def item_indexes(instance: str) -> tuple[int, ...]:
    """The MAP item indexes an instance name carries (`double[3]` -> (3,), `times[1][2]` -> (1, 2))."""
    match = _ITEM.match(instance)
    if match is None:
        return ()
    return tuple(int(index) for index in re.findall(r"\[(\d+)\]", match["indexes"]))


def _seconds(stamp: str | None) -> float | None:
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


@dataclass
class _Item:
    indexes: tuple[int, ...]
    label: str
    children: list[_Item | TimelineEntry] = field(default_factory=list)


CONTAINERS = frozenset({"MAP", "PARALLEL"})
"""Node types whose own event (when they finish) comes after the visits they ran."""


def _started(node: _Item | TimelineEntry) -> float | None:
    if isinstance(node, TimelineEntry):
        return _seconds(node.started_at)
    starts = [t for t in (_started(child) for child in node.children) if t is not None]
    return min(starts) if starts else None


def _containers_first(nodes: list[_Item | TimelineEntry]) -> list[_Item | TimelineEntry]:
    """`nodes` with each MAP or PARALLEL entry moved up before the run of rows that started after it."""
    ordered: list[_Item | TimelineEntry] = []
    for node in nodes:
        at = len(ordered)
        start = _started(node) if isinstance(node, TimelineEntry) and node.node_type in CONTAINERS else None
        if start is not None:
            while at > 0 and (earlier := _started(ordered[at - 1])) is not None and earlier >= start:
                at -= 1
        ordered.insert(at, node)
    return ordered


def timeline_rows(entries: Sequence[TimelineEntry]) -> list[dict[str, Any]]:
    """The timeline as table rows, each MAP item's visits indented under a row for the item.

    The item's row is named by its first visit (`double[3]`), stands where that visit came, and
    spans its visits (status of the last one, milliseconds from the first start to the last end).
    A visit at a shallower depth on an item's path (its MAP's own event) closes the item, so a
    later MAP's items with the same indexes get rows of their own.

    Events come in the order nodes finished, so a MAP or PARALLEL node's own event follows the
    visits it ran: its row is moved up to where it started, before them (else it reads as a node
    that started before the one above it finished).
    """
    top: list[_Item | TimelineEntry] = []
    open_items: dict[tuple[int, ...], _Item] = {}
    for entry in entries:
        indexes = item_indexes(entry.instance_name)
        for key in [k for k in open_items if len(k) > len(indexes) and k[: len(indexes)] == indexes]:
            del open_items[key]
        into = top
        for depth in range(1, len(indexes) + 1):
            key = indexes[:depth]
            item = open_items.get(key)
            if item is None:
                base = _ITEM.match(entry.instance_name)
                # An outer item first seen through a nested visit is named by that visit's state.
                label = f"{base['base'] if base else ''}" + "".join(f"[{i}]" for i in key)
                item = open_items[key] = _Item(key, label)
                into.append(item)
            into = item.children
        into.append(entry)
    top = _containers_first(top)
    rows: list[dict[str, Any]] = []

    def visits(item: _Item) -> list[TimelineEntry]:
        found: list[TimelineEntry] = []
        for child in item.children:
            found += visits(child) if isinstance(child, _Item) else [child]
        return found

    def walk(nodes: list[_Item | TimelineEntry], depth: int) -> None:
        for node in nodes:
            if isinstance(node, TimelineEntry):
                row = builtins(node)
                row["instanceName"] = INDENT * depth + node.instance_name
                rows.append(row)
                continue
            inside = visits(node)
            starts = [t for t in (_seconds(e.started_at) for e in inside) if t is not None]
            ends = [t for t in (_seconds(e.finished_at) for e in inside) if t is not None]
            rows.append(
                {
                    "instanceName": INDENT * depth + node.label,
                    "nodeType": "item",
                    "status": inside[-1].status,
                    "attempt": None,
                    "startedAt": inside[0].started_at,
                    "durationMs": round((max(ends) - min(starts)) * 1000) if starts and ends else None,
                    "error": next((e.error for e in reversed(inside) if e.error), None),
                }
            )
            walk(_containers_first(node.children), depth + 1)

    walk(top, 0)
    return rows


def _gateway_url() -> str:
    return endpoints.gateway().url


def _nats_url() -> str:
    return endpoints.nats().url


def api_key() -> str:
    """The API key from `DRIFT_API_KEY`, else the dev key in $DRIFT_HOME; a CliError when there is none."""
    key = os.environ.get("DRIFT_API_KEY")
    if key:
        return key
    path = endpoints.home() / "dev-api-key"
    try:
        return path.read_text().strip()
    except OSError:
        raise CliError(f"set DRIFT_API_KEY (no dev key at {path}; `drift dev` writes one)", EXIT_USAGE) from None


def _json_arg(text: str) -> Any:
    """A JSON value, or @file holding one."""
    try:
        raw = Path(text[1:]).read_text() if text.startswith("@") else text
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {error.strerror}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None


def _with_client(
    call: Callable[[DriftClient, argparse.Namespace], Awaitable[Any]],
    *,
    columns: Sequence[Column] | None = None,
) -> Callable[[argparse.Namespace], int]:
    """A command handler: `call` with a gateway client, its answer printed in the format asked for.

    A DriftError (an answer outside 2xx) or a transport error goes up to `drift_cli.main`, which
    prints it as one line and picks the exit code.
    """

    def handler(args: argparse.Namespace) -> int:
        async def run() -> Any:
            async with DriftClient(_gateway_url(), api_key()) as client:
                return await call(client, args)

        answer = asyncio.run(run())
        if answer is not None:
            emit(answer, getattr(args, "output_format", None) or "json", columns)
        return 0

    return handler


async def _start(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.start(
        args.definition,
        version=args.version,
        workflow_id=args.id,
        params=args.params,
        callback_url=args.callback_url,
        sync_timeout_ms=args.timeout_ms,
    )


async def _resume(client: DriftClient, args: argparse.Namespace) -> Any:
    selections = dict(args.select or [])
    return await client.resume(args.workflow_id, selections, sync_timeout_ms=args.timeout_ms)


async def _get(client: DriftClient, args: argparse.Namespace) -> Any:
    if args.timeline:
        timeline = await client.timeline(args.workflow_id)
        if (args.output_format or "table") != "table":
            return timeline
        emit(timeline_rows(timeline.nodes), "table", TIMELINE_COLUMNS)
        return None
    return await client.get(args.workflow_id)


async def _terminate(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.terminate(args.workflow_id, args.reason)


EVENT_COLUMNS: list[Column] = [
    ("seq", lambda row: row.get("seq")),
    ("kind", lambda row: "status" if "workflowStatus" in row else "node"),
    ("status", lambda row: row.get("workflowStatus") or row.get("status")),
    ("node", lambda row: row.get("currentNode") or row.get("instanceName")),
    ("time", lambda row: row.get("finishedAt") or row.get("updatedAt") or row.get("startedAt")),
    ("detail", lambda row: row.get("errorMessage") or row.get("error") or row.get("disposition")),
]
_EVENT_WIDTHS = (5, 7, 12, 24, 25)


def _event_row(event: WorkflowEvent | NodeEvent) -> str:
    """One event as a table row of fixed widths (events stream in: later rows cannot realign earlier ones)."""
    plain = builtins(event)
    values = [one_line(str(read(plain))) if read(plain) is not None else "-" for _, read in EVENT_COLUMNS]
    head = "  ".join(value.ljust(width) for value, width in zip(values, _EVENT_WIDTHS, strict=False))
    return (head + "  " + values[-1]).rstrip()


def _check_reachable(endpoint: endpoints.Endpoint) -> None:
    """A one-line CliError now, rather than nats-py's retries and tracebacks, when nothing listens there."""
    parts = urlsplit(endpoint.url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=3):
            pass
    except OSError as error:
        raise CliError(endpoint.unreachable(failure_reason(error)), EXIT_UNREACHABLE) from None


def _events(args: argparse.Namespace) -> int:
    endpoint = endpoints.nats()
    _check_reachable(endpoint)
    fmt = args.output_format or "table"

    async def run() -> int:
        count = 0
        async for event in follow_events(endpoint.url, args.tenant, args.workflow_id, follow=args.follow):
            count += 1
            if fmt == "table" and count == 1:  # the header once there is something under it
                headers = [header.upper() for header, _ in EVENT_COLUMNS]
                sys.stdout.write("  ".join(h.ljust(w) for h, w in zip(headers, _EVENT_WIDTHS, strict=False)))
                sys.stdout.write("  DETAIL\n")
            if fmt == "json":
                sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            elif fmt == "yaml":
                emit([event], "yaml")
            else:
                sys.stdout.write(_event_row(event) + "\n")
            sys.stdout.flush()
        if count == 0:
            raise CliError(
                f"no events of run {args.workflow_id!r} (tenant {args.tenant!r}) on {redact_url(endpoint.url)}",
                EXIT_NOT_FOUND,
            )
        return 0

    try:
        return asyncio.run(run())
    except LiveOnly as error:
        raise CliError(f"{error} (add --follow)", EXIT_USAGE) from None
    except nats.js.errors.NotFoundError:
        raise CliError(
            f"no Drift event stream on the NATS server at {redact_url(endpoint.url)}: is it Drift's?"
            f" (set {endpoint.variable})",
            EXIT_UNREACHABLE,
        ) from None
    except (nats.errors.Error, OSError) as error:
        raise CliError(endpoint.unreachable(failure_reason(error)), EXIT_UNREACHABLE) from None


def _selection(text: str) -> tuple[str, Any]:
    option, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("use OPTION=VALUE")
    try:
        return option, json.loads(value)
    except json.JSONDecodeError:
        return option, value


def add_commands(commands: Any) -> None:
    """Register the run commands on the `drift` subparsers."""
    start = commands.add_parser("start", help="start a run (sync: answers at its next stable state)")
    start.add_argument("definition", help="workflow definition id")
    start.add_argument("--version", default="ACTIVE", help="ACTIVE (default), LATEST or a number")
    start.add_argument("--id", help="workflowId (generated when absent)")
    start.add_argument("--params", type=_json_arg, help="JSON (or @file) for $global.params")
    start.add_argument("--callback-url", help="async mode: stable states are POSTed here")
    start.add_argument("--timeout-ms", type=int, help="syncTimeoutMs")
    add_output(start, None)
    start.set_defaults(handler=_with_client(_start))

    resume = commands.add_parser("resume", help="resume a WAITING run with selections")
    resume.add_argument("workflow_id")
    resume.add_argument("--select", type=_selection, action="append", metavar="OPTION=VALUE", help="repeatable")
    resume.add_argument("--timeout-ms", type=int, help="syncTimeoutMs")
    add_output(resume, None)
    resume.set_defaults(handler=_with_client(_resume))

    get = commands.add_parser("get", help="a run's state and context")
    get.add_argument("workflow_id")
    get.add_argument("--timeline", action="store_true", help="the node events in order, with timings")
    add_output(get, None)
    get.set_defaults(handler=_with_client(_get))

    terminate = commands.add_parser("terminate", help="terminate a run")
    terminate.add_argument("workflow_id")
    terminate.add_argument("--reason")
    add_output(terminate, None)
    terminate.set_defaults(handler=_with_client(_terminate))

    events = commands.add_parser(
        "events",
        help="a run's status and node events, from NATS",
        description="Print a run's events from the NATS event stream: a table by default, one JSON object a "
        "line with -o json. Exit code 5 when the run has none.",
    )
    events.add_argument("workflow_id")
    events.add_argument("--tenant", default=os.environ.get("DRIFT_TENANT", "default"))
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    add_output(events, None)
    events.set_defaults(handler=_events)

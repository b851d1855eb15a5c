"""`drift start|resume|get|terminate|events`: runs driven from the command line through the client.

Where to: `DRIFT_GATEWAY_URL` (default http://127.0.0.1:$DRIFT_GATEWAY_PORT), as whom:
`DRIFT_API_KEY` (default: the dev key `drift dev` wrote to $DRIFT_HOME/dev-api-key).
Events come from NATS (`DRIFT_NATS_URL`, default nats://127.0.0.1:$DRIFT_NATS_PORT) for `--tenant`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from drift_client import DriftClient, DriftError, follow_events


def _gateway_url() -> str:
    return os.environ.get("DRIFT_GATEWAY_URL") or f"http://127.0.0.1:{os.environ.get('DRIFT_GATEWAY_PORT', '8000')}"


def _nats_url() -> str:
    return os.environ.get("DRIFT_NATS_URL") or f"nats://127.0.0.1:{os.environ.get('DRIFT_NATS_PORT', '4222')}"


def api_key() -> str:
    """The API key from `DRIFT_API_KEY`, else the dev key in $DRIFT_HOME; exits when there is none."""
    key = os.environ.get("DRIFT_API_KEY")
    if key:
        return key
    path = Path(os.environ.get("DRIFT_HOME") or ".drift") / "dev-api-key"
    try:
        return path.read_text().strip()
    except OSError:
        raise SystemExit(f"drift: set DRIFT_API_KEY (no dev key at {path})") from None


def _json_arg(text: str) -> Any:
    """A JSON value, or @file holding one."""
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON: {error}") from None


def _print(value: Any) -> None:
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(value), indent=2).decode() + "\n")


def _with_client(
    call: Callable[[DriftClient, argparse.Namespace], Awaitable[Any]],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        async def run() -> int:
            async with DriftClient(_gateway_url(), api_key()) as client:
                try:
                    _print(await call(client, args))
                except DriftError as error:
                    _print(error.problem)
                    return 1
            return 0

        return asyncio.run(run())

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
        return await client.timeline(args.workflow_id)
    return await client.get(args.workflow_id)


async def _terminate(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.terminate(args.workflow_id, args.reason)


def _events(args: argparse.Namespace) -> int:
    async def run() -> int:
        async for event in follow_events(_nats_url(), args.tenant, args.workflow_id, follow=args.follow):
            sys.stdout.write(msgspec.json.encode(event).decode() + "\n")
            sys.stdout.flush()
        return 0

    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 0


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
    start.set_defaults(handler=_with_client(_start))

    resume = commands.add_parser("resume", help="resume a WAITING run with selections")
    resume.add_argument("workflow_id")
    resume.add_argument("--select", type=_selection, action="append", metavar="OPTION=VALUE", help="repeatable")
    resume.add_argument("--timeout-ms", type=int, help="syncTimeoutMs")
    resume.set_defaults(handler=_with_client(_resume))

    get = commands.add_parser("get", help="a run's state and context")
    get.add_argument("workflow_id")
    get.add_argument("--timeline", action="store_true", help="the node events in order, with timings")
    get.set_defaults(handler=_with_client(_get))

    terminate = commands.add_parser("terminate", help="terminate a run")
    terminate.add_argument("workflow_id")
    terminate.add_argument("--reason")
    terminate.set_defaults(handler=_with_client(_terminate))

    events = commands.add_parser("events", help="a run's status and node events, from NATS")
    events.add_argument("workflow_id")
    events.add_argument("--tenant", default=os.environ.get("DRIFT_TENANT", "default"))
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C")
    events.set_defaults(handler=_events)

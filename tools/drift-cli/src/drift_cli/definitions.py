"""`drift apply|graph`: definitions managed in a running dsl-store from the command line.

Where to: `--dsl-store-url`, else `DRIFT_DSL_STORE_URL`, else http://127.0.0.1:$DRIFT_DSL_STORE_PORT,
else the dsl-store a running `drift dev` wrote to $DRIFT_HOME/endpoints.json (8100 by default);
as whom: `DRIFT_API_KEY` (default: the dev key `drift dev` wrote to
$DRIFT_HOME/dev-api-key), exactly as `drift start` and friends find the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx

from drift_cli import endpoints
from drift_cli.bundles import BundleError, dsl_store_client, load_bundles, problem_text, read_bundle
from drift_cli.output import EXIT_UNREACHABLE, EXIT_USAGE, CliError, exit_code_for_status, failure_reason, one_line
from drift_cli.runs import api_key

__all__ = ["add_commands", "dsl_store_url"]

GRAPH_FORMATS = ("svg", "png", "mermaid")


def dsl_store_url() -> str:
    """The dsl-store's base URL (see drift_cli.endpoints)."""
    return endpoints.dsl_store().url


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _cmd_apply(args: argparse.Namespace) -> int:
    try:
        bundle = read_bundle(args.file)
    except BundleError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    url = args.dsl_store_url or dsl_store_url()

    async def run() -> int:
        async with dsl_store_client(url, api_key()) as client:
            try:
                await client.get("/health/ready")
            except httpx.TransportError as error:
                raise CliError(
                    endpoints.unreachable(
                        url, failure_reason(error), flag="--dsl-store-url" if args.dsl_store_url else None
                    ),
                    EXIT_UNREACHABLE,
                ) from None
            report = await load_bundles(client, [bundle], publish=args.publish, activate=args.activate)
        for applied in report.applied:
            sys.stdout.write(applied.describe() + "\n")
        sys.stdout.flush()
        for message in report.errors:
            _err(f"drift apply: {message}")
        return 1 if report.errors else 0

    return asyncio.run(run())


def _cmd_graph(args: argparse.Namespace) -> int:
    url = args.dsl_store_url or dsl_store_url()
    params: dict[str, Any] = {"format": args.format}
    if args.version:
        params["version"] = args.version

    async def fetch() -> httpx.Response:
        async with dsl_store_client(url, api_key()) as client:
            return await client.get(f"/workflowDefinition/treeView/{args.workflow_id}", params=params)

    try:
        response = asyncio.run(fetch())
    except httpx.TransportError as error:
        raise CliError(
            endpoints.unreachable(url, failure_reason(error), flag="--dsl-store-url" if args.dsl_store_url else None),
            EXIT_UNREACHABLE,
        ) from None
    if not response.is_success:
        raise CliError(
            one_line(f"{args.workflow_id}: {response.status_code} " + problem_text(response).replace("\n    ", "; ")),
            exit_code_for_status(response.status_code),
        )
    if args.output == "-":
        sys.stdout.buffer.write(response.content)
        sys.stdout.flush()
    else:
        Path(args.output).write_bytes(response.content)
    return 0


def add_commands(commands: Any) -> None:
    """Register `apply` and `graph` on the `drift` subparsers."""
    apply = commands.add_parser(
        "apply",
        help="load a bundle into the dsl-store (idempotent)",
        description="Create or update the SNAPSHOT of every definition in a bundle "
        '({"nodeDefinitions": [...], "workflowDefinitions": [...]}). Applying the same bundle again '
        "changes nothing. Exit code 1 when the store rejected a definition (its pointers are printed).",
    )
    apply.add_argument("-f", "--file", type=Path, required=True, metavar="BUNDLE.json", help="the bundle file")
    apply.add_argument(
        "--publish",
        action="store_true",
        help="publish each definition whose SNAPSHOT differs from its latest published version",
    )
    apply.add_argument(
        "--activate",
        action="store_true",
        help="make each workflow's latest published version ACTIVE",
    )
    apply.add_argument("--dsl-store-url", metavar="URL", help=endpoints.DSL_STORE_URL_HELP)
    apply.set_defaults(handler=_cmd_apply)

    graph = commands.add_parser(
        "graph",
        help="draw a workflow definition (svg, png or mermaid)",
        description="Fetch the dsl-store's tree view of a workflow definition and write it to a file.",
    )
    graph.add_argument("workflow_id", metavar="ID", help="workflow definition id")
    graph.add_argument("--format", choices=GRAPH_FORMATS, default="svg", help="default svg")
    graph.add_argument("-o", "--output", default="-", metavar="FILE", help="where to write it (default: stdout)")
    graph.add_argument("--version", help="SNAPSHOT, LATEST (default), ACTIVE or a number")
    graph.add_argument("--dsl-store-url", metavar="URL", help=endpoints.DSL_STORE_URL_HELP)
    graph.set_defaults(handler=_cmd_graph)

"""`drift export|import|defs`: bundles and definition management through the dsl-store's routes.

`drift export ID... [-o FILE] [--version V]` writes a bundle holding the workflows and everything
they refer to; `drift import FILE [--publish] [--activate]` loads one all or nothing (the server
checks every definition first and stores nothing when one is invalid); `drift defs list|delete|
validate` list, delete and check definitions. Where to and as whom: as `drift apply` (see
drift_cli.definitions). `drift defs list` prints a table (`-o json|yaml` for data); a refused
request or an unreachable store is one line on stderr with the exit codes of `drift --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from drift_cli.definitions import dsl_store_url
from drift_cli.endpoints import DSL_STORE_URL_HELP
from drift_cli.output import EXIT_USAGE, CliError, Column, add_output, emit
from drift_cli.runs import api_key
from drift_client import StoreClient

__all__ = ["add_commands"]

T = TypeVar("T")

_WORKFLOW_COLUMNS: list[Column] = [
    ("id", lambda row: row["id"]),
    ("latest", lambda row: row["latest"]),
    ("active", lambda row: row["active"]),
    ("comment", lambda row: row["comment"]),
]
_NODE_COLUMNS: list[Column] = [
    ("id", lambda row: row["id"]),
    ("type", lambda row: row["type"]),
    ("latest", lambda row: row["latest"]),
    ("comment", lambda row: row["comment"]),
]


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _call(command: str, args: argparse.Namespace, work: Callable[[StoreClient], Awaitable[T]]) -> T:
    """Run `work` against the dsl-store; its DriftError (UnreachableError: no answer) goes up to `drift_cli.main`."""
    url = args.dsl_store_url or dsl_store_url()

    async def run() -> T:
        async with StoreClient(url, api_key()) as client:
            return await work(client)

    return asyncio.run(run())


def _cmd_export(args: argparse.Namespace) -> int:
    raw = _call("export", args, lambda client: client.export_raw(args.ids, version=args.version))
    text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(args.output).write_text(text)
        bundle = json.loads(raw)
        _err(
            f"drift export: {len(bundle.get('workflowDefinitions', []))} workflow(s) and "
            f"{len(bundle.get('nodeDefinitions', []))} node(s) written to {args.output}"
        )
    return 0


def _read_json(command: str, path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", EXIT_USAGE) from None
    except json.JSONDecodeError as error:
        raise CliError(f"{path} is not JSON: {error}", EXIT_USAGE) from None


def _cmd_import(args: argparse.Namespace) -> int:
    bundle = _read_json("import", args.file)
    result = _call(
        "import",
        args,
        lambda client: client.import_bundle(bundle, publish=args.publish, activate=args.activate),
    )
    if args.output_format:
        emit(result, args.output_format)
        return 0
    for label, ids in (("created", result.created), ("updated", result.updated), ("unchanged", result.unchanged)):
        _out(f"{label}: {', '.join(ids) if ids else '-'}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    async def collect(client: StoreClient) -> list[dict[str, Any]]:
        if args.nodes:
            return [
                {"id": n.id, "type": n.type, "latest": n.latest_version, "comment": n.comment}
                async for n in client.all_nodes(prefix=args.prefix, node_type=args.type)
            ]
        return [
            {"id": w.id, "latest": w.latest_version, "active": w.active_version, "comment": w.comment}
            async for w in client.all_workflows(prefix=args.prefix)
        ]

    rows = _call("defs list", args, collect)
    emit(rows, "json" if args.json else args.output_format, _NODE_COLUMNS if args.nodes else _WORKFLOW_COLUMNS)
    if not rows and not args.json and args.output_format == "table":
        _err("drift defs list: none")
    return 0


def _cmd_delete(args: argparse.Namespace) -> int:
    async def remove(client: StoreClient) -> bool:
        await (client.delete_node(args.id) if args.node else client.delete_workflow(args.id))
        return True

    _call("defs delete", args, remove)
    _out(f"deleted {'node' if args.node else 'workflow'} definition {args.id}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    workflow = _read_json("defs validate", args.file)
    result = _call("defs validate", args, lambda client: client.validate(workflow))
    if args.output_format:
        emit(result, args.output_format)
        return 0
    detached = ", ".join(result.disconnected_states) or "none"
    _out(f"valid (disconnected states: {detached})")
    return 0


def add_commands(commands: Any) -> None:
    """Register `export`, `import` and `defs` on the `drift` subparsers."""
    export = commands.add_parser(
        "export",
        help="write a bundle of workflows and everything they refer to",
        description="Export workflow definitions with every node and CHILD workflow they refer to, transitively, "
        "as one bundle file (what `drift import` and `drift apply` read).",
    )
    export.add_argument("ids", nargs="+", metavar="ID", help="workflow definition id(s)")
    export.add_argument("-o", "--output", default="-", metavar="FILE", help="bundle file to write (default stdout)")
    export.add_argument("--version", help="version of the named workflows: LATEST (default), ACTIVE, SNAPSHOT or N")
    export.add_argument("--dsl-store-url", metavar="URL", help=DSL_STORE_URL_HELP)
    export.set_defaults(handler=_cmd_export)

    load = commands.add_parser(
        "import",
        help="import a bundle, all or nothing",
        description="Import a bundle into the dsl-store in one go: every definition is checked first, and a bundle "
        "with any invalid definition stores nothing (its pointers are printed, exit code 1). Importing the same "
        "bundle again changes nothing.",
    )
    load.add_argument("file", type=Path, metavar="FILE", help="the bundle file")
    load.add_argument("--publish", action="store_true", help="publish each definition that differs from its LATEST")
    load.add_argument("--activate", action="store_true", help="make each workflow's latest version ACTIVE")
    load.add_argument("--dsl-store-url", metavar="URL", help=DSL_STORE_URL_HELP)
    add_output(load, None)
    load.set_defaults(handler=_cmd_import)

    defs = commands.add_parser("defs", help="list, delete or validate definitions")
    actions = defs.add_subparsers(dest="defs_action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list workflow (default) or node definitions")
    listing.add_argument("--nodes", action="store_true", help="list node definitions instead of workflows")
    listing.add_argument("--prefix", default="", help="only ids starting with this")
    listing.add_argument("--type", help="only nodes of this type (with --nodes)")
    add_output(listing, "table")
    listing.add_argument("--json", action="store_true", help="the same as -o json")
    listing.add_argument("--dsl-store-url", metavar="URL", help=DSL_STORE_URL_HELP)
    listing.set_defaults(handler=_cmd_list)
    remove = actions.add_parser("delete", help="delete a workflow (or, with --node, a node) definition")
    remove.add_argument("id", metavar="ID")
    remove.add_argument("--node", action="store_true", help="ID names a node definition")
    remove.add_argument("--dsl-store-url", metavar="URL", help=DSL_STORE_URL_HELP)
    remove.set_defaults(handler=_cmd_delete)
    check = actions.add_parser("validate", help="check a workflow definition file without storing it")
    check.add_argument("file", type=Path, metavar="FILE", help="a workflow definition (JSON)")
    check.add_argument("--dsl-store-url", metavar="URL", help=DSL_STORE_URL_HELP)
    add_output(check, None)
    check.set_defaults(handler=_cmd_validate)

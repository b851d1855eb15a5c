"""`drift retry ID [--from NODE]` and `drift test FILE...`: repair a run, test a definition before it ships.

A test file holds the request of `POST /v3/workflow/test` plus, optionally, what must hold:

    {"workflow": {"id": "hello_approval"}, "params": {...}, "mocks": {...}, "selections": {...},
     "expect": {"workflowStatus": "COMPLETED", "disposition": "APPROVED",
                "errorMessage": "text it contains", "context": {"greet": {"text": "Hello"}},
                "visits": ["greet", "ask", "route", "done"]}}

`expect.context` is a subset: every key it names must be there with that value (objects compared
the same way, recursively); `expect.visits` is the exact order of instances the trace visited.
Without `expect.workflowStatus` the run must be `COMPLETED`.
Exit codes: 0 every expectation holds, 1 one does not, 2 the file cannot be used, and for a request
the gateway refused the code of its status (7 invalid, 5 not found, ...: see `drift --help`); with
several files, the highest of theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from drift_cli.output import EXIT_USAGE, add_output, emit, exit_code_for_status, problem_line
from drift_cli.runs import _gateway_url, _with_client, api_key
from drift_client import DriftClient, DriftError
from drift_schema.testrun import TestResponse

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_REFUSED = EXIT_USAGE
EXPECTATIONS = frozenset({"workflowStatus", "disposition", "errorMessage", "context", "visits"})


async def _retry(client: DriftClient, args: argparse.Namespace) -> Any:
    return await client.retry(
        args.workflow_id, from_node=args.from_node, callback_url=args.callback_url, sync_timeout_ms=args.timeout_ms
    )


def subset_mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` does not hold `expected` (objects: every expected key, recursively; else equality)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '/'}: expected an object, got {json.dumps(actual)}"]
        found = []
        for key, value in expected.items():
            where = f"{path}/{key}"
            if key not in actual:
                found.append(f"{where}: missing")
            else:
                found += subset_mismatches(value, actual[key], where)
        return found
    if expected != actual or isinstance(expected, bool) != isinstance(actual, bool):
        return [f"{path or '/'}: expected {json.dumps(expected)}, got {json.dumps(actual)}"]
    return []


def unmet(expect: dict[str, Any], result: TestResponse) -> list[str]:
    """Every stated expectation (and the implied COMPLETED) that the test run did not meet."""
    faults = []
    status = expect.get("workflowStatus", "COMPLETED")
    if result.workflow_status.value != status:
        faults.append(f"workflowStatus: expected {status}, got {result.workflow_status.value}")
    if "disposition" in expect and expect["disposition"] != result.disposition:
        faults.append(
            f"disposition: expected {json.dumps(expect['disposition'])}, got {json.dumps(result.disposition)}"
        )
    if "errorMessage" in expect and str(expect["errorMessage"]) not in (result.error_message or ""):
        faults.append(f"errorMessage: expected it to contain {expect['errorMessage']!r}, got {result.error_message!r}")
    if "context" in expect:
        faults += [f"context{fault}" for fault in subset_mismatches(expect["context"], result.context)]
    visits = [entry.instance_name for entry in result.trace]
    if "visits" in expect and expect["visits"] != visits:
        faults.append(f"visits: expected {json.dumps(expect['visits'])}, got {json.dumps(visits)}")
    return faults


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def render(result: TestResponse, out: Any) -> None:
    """The trace, one visit a line, then the run's outcome."""
    out.write(f"test run {result.workflow_id}\n")
    for number, entry in enumerate(result.trace, 1):
        detail = entry.error if entry.error is not None else _short(entry.output)
        out.write(f"{number:>4}  {entry.status:<9}  {entry.instance_name} ({entry.node_type})  {detail}\n")
    out.write(f"status: {result.workflow_status.value}")
    if result.disposition is not None:
        out.write(f"  disposition: {_short(result.disposition)}")
    if result.error_message:
        out.write(f"  error: {result.error_message}")
    out.write("\n")


def _load(path: Path) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """(request, expect) from a test file, or why it cannot be used."""
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        return f"cannot read {path}: {error}"
    if not isinstance(document, dict):
        return f"{path} must hold a JSON object"
    expect = document.pop("expect", None) or {}
    if not isinstance(expect, dict) or not set(expect) <= EXPECTATIONS:
        return f"{path}: expect may hold {', '.join(sorted(EXPECTATIONS))}"
    return document, expect


async def _test_one(client: DriftClient, path: Path, fmt: str) -> int:
    loaded = _load(path)
    if isinstance(loaded, str):
        sys.stderr.write(f"drift test: {loaded}\n")
        return EXIT_REFUSED
    request, expect = loaded
    try:
        result = await client.test(request)
    except DriftError as error:
        sys.stderr.write(f"drift test: {path}: refused: {problem_line(error.problem)}\n")
        sys.stdout.write(f"REFUSED {path}\n")
        return exit_code_for_status(error.status)
    if fmt == "table":
        render(result, sys.stdout)
    else:
        emit(result, fmt)
    faults = unmet(expect, result)
    for fault in faults:
        sys.stdout.write(f"UNMET {fault}\n")
    sys.stdout.write(f"{'FAIL' if faults else 'PASS'} {path}\n")
    return EXIT_FAILED if faults else EXIT_PASSED


def _test(args: argparse.Namespace) -> int:
    """Every file in turn; the exit code is the worst of theirs (refused over failed over passed)."""

    async def run() -> int:
        async with DriftClient(_gateway_url(), api_key()) as client:
            fmt = "json" if args.json else args.output_format
            codes = [await _test_one(client, path, fmt) for path in args.files]
        return max(codes)

    return asyncio.run(run())


def add_commands(commands: Any) -> None:
    """Register `retry` and `test` on the `drift` subparsers."""
    retry = commands.add_parser("retry", help="run a FAILED or TERMINATED run again from a node")
    retry.add_argument("workflow_id")
    retry.add_argument("--from", dest="from_node", metavar="NODE", help="default: where it failed or stopped")
    retry.add_argument("--callback-url", help="async mode: stable states are POSTed here")
    retry.add_argument("--timeout-ms", type=int, help="syncTimeoutMs")
    add_output(retry, None)
    retry.set_defaults(handler=_with_client(_retry))

    test = commands.add_parser(
        "test",
        help="test a definition with mocks; exit 1 when its status or an expectation does not hold",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument(
        "files", type=Path, nargs="+", metavar="FILE", help="a JSON file: the test request, plus optional 'expect'"
    )
    add_output(test, "table")
    test.add_argument("--json", action="store_true", help="the same as -o json")
    test.set_defaults(handler=_test)


__all__ = ["add_commands"]

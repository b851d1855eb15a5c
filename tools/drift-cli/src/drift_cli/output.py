"""How every `drift` command answers: `-o json|yaml|table`, one-line errors on stderr, exit codes.

The conventions follow kubectl and the temporal CLI: data on stdout in the format asked for
(a table by default for lists), every error as one line on stderr (`drift <command>: <what>`),
and an exit code that tells the kind of failure apart, so scripts can branch on it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

import msgspec
import yaml

from drift_schema.api import Problem

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_CONFLICT",
    "EXIT_DENIED",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_THROTTLED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "FORMATS",
    "CliError",
    "Column",
    "add_output",
    "emit",
    "exit_code_for_status",
    "failure_reason",
    "one_line",
    "problem_line",
    "render",
    "table",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""The command ran but the outcome is a failure (a test's expectation unmet, a bundle partly refused)."""
EXIT_USAGE = 2
"""Bad arguments, or a local file or setting the CLI cannot use (argparse exits 2 as well)."""
EXIT_UNREACHABLE = 3
"""A server did not answer (connection refused, timeout, name not resolved)."""
EXIT_DENIED = 4
"""401 or 403: the API key is missing, wrong or not allowed."""
EXIT_NOT_FOUND = 5
"""404: no such run, definition or schedule (for this tenant)."""
EXIT_CONFLICT = 6
"""409: the state does not allow it (a run not WAITING, a definition still referenced, an id taken)."""
EXIT_INVALID = 7
"""400, 413, 422, 431 and other 4xx: the server refused the request's content (pointers are printed)."""
EXIT_THROTTLED = 8
"""429: a tenant limit was reached; try again later."""
EXIT_SERVER = 9
"""5xx: the server failed or is unavailable."""
EXIT_INTERRUPTED = 130
"""Ctrl-C."""

EXIT_CODES_HELP = """\
exit codes:
  0    done
  1    ran, but the outcome is a failure (drift test: an expectation unmet; apply: a definition refused)
  2    bad arguments, or a local file or setting that cannot be used
  3    a server did not answer (the message names the address and the variable that sets it)
  4    401/403: the API key is missing, wrong or not allowed (DRIFT_API_KEY)
  5    404: no such run, definition or schedule
  6    409: the current state does not allow it
  7    400/413/422/431: the request was refused as invalid (pointers are printed)
  8    429: a tenant limit was reached
  9    5xx: the server failed or is unavailable
  130  interrupted (Ctrl-C)
errors are one line on stderr: "drift <command>: <what went wrong>"."""

FORMATS = ("json", "yaml", "table")


class CliError(Exception):
    """A failure to report as one line on stderr, with the exit code it deserves."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def exit_code_for_status(status: int) -> int:
    """The exit code of an HTTP answer outside 2xx (see EXIT_CODES_HELP)."""
    if status in (401, 403):
        return EXIT_DENIED
    if status == 404:
        return EXIT_NOT_FOUND
    if status == 409:
        return EXIT_CONFLICT
    if status == 429:
        return EXIT_THROTTLED
    if status >= 500:
        return EXIT_SERVER
    return EXIT_INVALID


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def failure_reason(error: BaseException) -> str:
    """Why a connection failed, in a few words: the OS error deepest in the chain (`Connection refused`)."""
    reason = one_line(str(error)) or type(error).__name__
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and (current.errno or current.strerror):
            # asyncio's strerror is "Connect call failed (...)"; the errno says what happened.
            reason = os.strerror(current.errno) if current.errno else str(current.strerror)
        current = current.__cause__ or current.__context__
    return reason


def problem_line(problem: Problem) -> str:
    """Problem details as one line: `404 Not Found: <detail>; /pointer: message; ...`."""
    head = f"{problem.status} {problem.title}"
    if problem.detail and problem.detail != problem.title:
        head += f": {problem.detail}"
    errors = [e for e in problem.errors or [] if e.pointer not in (None, "", "/") or e.message != problem.detail]
    parts = [head] + [f"{error.pointer or '/'}: {error.message}" for error in errors]
    return one_line("; ".join(parts))


def add_output(
    parser: argparse.ArgumentParser, default: str | None, *, flags: Sequence[str] = ("-o", "--output")
) -> None:
    """Add `-o/--output json|yaml|table` (stored as `args.output_format`).

    `default` None leaves the choice to the command (json for objects, table for lists).
    """
    parser.add_argument(
        *flags,
        dest="output_format",
        choices=FORMATS,
        default=default,
        help=f"output format (default {default or 'json; table for lists'})",
    )


def builtins(value: Any) -> Any:
    """msgspec Structs (camelCase names as on the wire), dataclass-free values, as plain JSON values."""
    return msgspec.to_builtins(value)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return one_line(str(value))


Column = tuple[str, Callable[[Any], Any]]
"""A table column: its header and how to read its cell from a row."""


def table(rows: Iterable[Any], columns: Sequence[Column]) -> str:
    """Aligned columns under upper-case headers, `-` for what is missing (as `kubectl get`)."""
    cells = [[header.upper() for header, _ in columns]]
    cells += [[_cell(read(row)) for _, read in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = ["   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells]
    return "\n".join(lines) + "\n"


def _key_value_table(value: dict[str, Any]) -> str:
    return table(value.items(), [("field", lambda item: item[0]), ("value", lambda item: item[1])])


def _getter(key: str) -> Callable[[Any], Any]:
    return lambda row: row.get(key) if isinstance(row, dict) else None


def render(value: Any, fmt: str, columns: Sequence[Column] | None = None) -> str:
    """`value` as `fmt`: JSON (indented), YAML, or a table (`columns` for lists; fields for objects)."""
    plain = builtins(value)
    if fmt == "json":
        return json.dumps(plain, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=True, default_flow_style=False))
    if isinstance(plain, list):
        if columns is None:
            keys = list(dict.fromkeys(key for row in plain if isinstance(row, dict) for key in row))
            columns = [(key, _getter(key)) for key in keys]
        return table(plain, columns)
    if isinstance(plain, dict):
        return _key_value_table(plain)
    return _cell(plain) + "\n"


def emit(value: Any, fmt: str, columns: Sequence[Column] | None = None, out: TextIO | None = None) -> None:
    """Write `value` as `fmt` to stdout (see render)."""
    stream = out or sys.stdout
    stream.write(render(value, fmt, columns))
    stream.flush()

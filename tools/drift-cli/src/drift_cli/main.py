"""The `drift` command line. `drift dev` runs the whole platform in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

import httpx

from drift_cli import endpoints
from drift_cli.bundles import (
    BundleError,
    LoadReport,
    TryRequests,
    find_bundles,
    load_bundle_files,
    read_try_requests,
)
from drift_cli.completion import add_commands as add_completion_commands
from drift_cli.config import ConfigError, DevConfig, ensure_dev_secrets, find_examples_dir
from drift_cli.definition_admin import add_commands as add_definition_admin_commands
from drift_cli.definitions import add_commands as add_definition_commands
from drift_cli.logs import LogFollower
from drift_cli.operations import add_commands as add_operation_commands
from drift_cli.output import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_UNREACHABLE,
    CliError,
    exit_code_for_status,
    failure_reason,
    one_line,
    problem_line,
)
from drift_cli.platform import Platform
from drift_cli.repair import add_commands as add_repair_commands
from drift_cli.runs import add_commands
from drift_cli.servers import ServerStartError
from drift_client import DriftError, UnreachableError

__all__ = ["READY_LINE", "build_parser", "main", "run_dev", "try_commands"]

log = logging.getLogger("drift_cli")

READY_LINE = "drift dev: ready (Ctrl-C to stop)"
"""Printed (and flushed) on stdout once everything is up and the bundles are loaded."""


def _out(text: str = "") -> None:
    print(text, flush=True)


def _bundle_paths(explicit: Sequence[Path], load_examples: bool) -> list[Path]:
    paths: list[Path] = []
    if load_examples:
        examples = find_examples_dir()
        if examples is not None:
            paths.extend(find_bundles(examples))
    for path in explicit:
        # A folder given with --bundle means every bundle inside it.
        paths.extend(find_bundles(path) if path.is_dir() else [path])
    unique: dict[Path, None] = {p.resolve(): None for p in paths}
    return list(unique)


async def _start(platform: Platform, bundle_paths: list[Path]) -> LoadReport:
    await platform.start()
    if not bundle_paths:
        return LoadReport()
    log.info("loading %d bundle file(s) into the dsl-store", len(bundle_paths))
    return await load_bundle_files(platform.dsl_store_url, platform.dev_api_key, bundle_paths)


def _curl(method: str, url: str, key: str, body: dict[str, object] | None = None) -> list[str]:
    """One curl command as shell lines (continued with backslashes), safe to paste."""
    first = "  curl -s" + ("" if method == "GET" else f" -X {method}") + f" {shlex.quote(url)}"
    auth = f"-H {shlex.quote('Authorization: Bearer ' + key)}"
    if body is None:
        return [f"{first} {auth}"]
    return [
        f"{first} \\",
        f"    {auth} -H 'Content-Type: application/json' \\",
        f"    -d {shlex.quote(json.dumps(body))}",
    ]


def try_commands(gateway_url: str, key: str, samples: dict[str, TryRequests], fallback_id: str | None) -> list[str]:
    """The "Try:" lines of the summary: each sample's start, resume and state curl commands.

    Without samples, one start of `fallback_id` with empty params (it may need some).
    """
    lines: list[str] = []
    for wf_id, sample in sorted(samples.items()):
        lines.append(f"  # {wf_id}: start (answers at its first stable state)")
        lines += _curl("POST", f"{gateway_url}/v3/workflow/start", key, sample.start)
        if sample.run_id is not None:
            if sample.resume is not None:
                lines.append("  # resume it")
                lines += _curl("PUT", f"{gateway_url}/v3/workflow/resume/{sample.run_id}", key, sample.resume)
            lines.append("  # its state and context")
            lines += _curl("GET", f"{gateway_url}/v3/workflow/{sample.run_id}", key)
    if not lines:
        body: dict[str, object] = {"workflow": {"id": fallback_id or "<workflow id>"}, "params": {}}
        lines.append("  # params as the workflow expects")
        lines += _curl("POST", f"{gateway_url}/v3/workflow/start", key, body)
    return lines


def _addresses(platform: Platform) -> dict[str, str]:
    """Where this platform's servers listen, for other `drift` commands (DRIFT_HOME/endpoints.json)."""
    addresses = {
        "gateway": platform.gateway_url,
        "dslStore": platform.dsl_store_url,
        "studio": platform.studio_url,
        "nats": platform.infra.nats_url,
        "temporal": platform.infra.temporal_address,
        "redis": platform.infra.redis_url,
    }
    if platform.infra.temporal_ui_url:
        addresses["temporalUi"] = platform.infra.temporal_ui_url
    return addresses


def _print_summary(
    platform: Platform, report: LoadReport, bundle_paths: list[Path], samples: dict[str, TryRequests]
) -> None:
    home = platform.config.home
    infra = platform.infra
    key = platform.dev_api_key
    tenant = platform.api_keys[key]
    lines = [
        "",
        "Drift dev platform is up",
        f"  gateway     {platform.gateway_url}   (OpenAPI UI {platform.gateway_url}/schema/swagger)",
        f"  dsl-store   {platform.dsl_store_url}   (OpenAPI UI {platform.dsl_store_url}/schema/swagger)",
        f"  Studio      {platform.studio_url}   (sign in with the API key below)",
        f"  Temporal    {infra.temporal_address}"
        + (f"   (web UI {infra.temporal_ui_url})" if infra.temporal_ui_url else ""),
        f"  NATS        {infra.redacted_nats_url}",
        f"  Redis       {infra.redis_url}",
        f"  workers     {platform.workers}",
        f"  DRIFT_HOME  {home}   (logs in {home / 'logs'})",
        f"  API key     {key}   (tenant {tenant!r})",
        f"  bundles     {len(bundle_paths)} file(s): {len(report.nodes)} node(s) published, "
        f"{len(report.workflows)} workflow(s) active"
        + (f" ({len(report.unchanged)} definition(s) unchanged, not re-published)" if report.unchanged else ""),
    ]
    for wf_id, version in sorted(report.workflows.items()):
        lines.append(f"                {wf_id} (ACTIVE = version {version})")
    lines.extend(f"  ! {error}" for error in report.errors)
    lines += ["", "Try:", *try_commands(platform.gateway_url, key, samples, min(report.workflows, default=None))]
    lines += ["", READY_LINE]
    _out("\n".join(lines))


async def run_dev(
    config: DevConfig,
    *,
    bundles: Sequence[Path] = (),
    load_examples: bool = True,
    workers: int = 1,
    follow_logs: bool = True,
) -> int:
    """Run the platform until SIGINT/SIGTERM/SIGHUP or a child's death; answer the exit code.

    With `follow_logs`, the services' log lines written after start-up are copied to stderr,
    each prefixed with the service's name. Whatever happens (signal during start-up, failed
    start-up, crash), every process started is stopped before this returns.
    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for sig in signals:
        loop.add_signal_handler(sig, stopping.set)

    secrets = ensure_dev_secrets(config)
    bundle_paths = _bundle_paths(bundles, load_examples)
    platform = Platform(config, secrets, workers=workers)
    stop_requested = asyncio.create_task(stopping.wait())
    tasks: list[asyncio.Task[object]] = [stop_requested]
    follower: LogFollower | None = None
    try:
        log.info("starting in %s", config.home)
        starting = asyncio.create_task(_start(platform, bundle_paths))
        tasks.append(starting)
        await asyncio.wait({starting, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("stop requested during start-up")
            return 0
        report = starting.result()
        # Only samples of workflows that are active now: anything else would fail when pasted.
        try:
            samples = read_try_requests(bundle_paths, report.workflows)
        except BundleError as exc:  # a broken sample must not take the platform down
            log.warning("sample requests skipped: %s", exc)
            samples = {}
        if follow_logs:
            follower = LogFollower({s.name: s.process.log_path for s in platform.services}, sys.stderr)
            follower.seek_to_end()
        endpoints.write_endpoints(config.home, _addresses(platform))
        _print_summary(platform, report, bundle_paths, samples)
        if follower is not None:
            tasks.append(asyncio.create_task(follower.run()))

        exited = asyncio.create_task(platform.wait_for_exit())
        tasks.append(exited)
        await asyncio.wait({exited, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            log.error("%s", exited.result().exit_error())
            return 1
        return 0
    except (ServerStartError, BundleError) as exc:
        log.error("start-up failed: %s", exc)
        return 1
    finally:
        for task in tasks:
            task.cancel()
        # A task cancelled mid-start stops what it started; let it finish doing so.
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopping")
        endpoints.remove_endpoints(config.home)
        platform.stop()
        if follower is not None:
            follower.drain(final=True)  # what the services logged while stopping
        for sig in signals:
            loop.remove_signal_handler(sig)
        log.info("stopped")


def _cmd_dev(args: argparse.Namespace) -> int:
    try:
        config = DevConfig.from_env()
        return asyncio.run(
            run_dev(
                config,
                bundles=args.bundle,
                load_examples=not args.no_examples,
                workers=args.workers,
                follow_logs=not args.no_logs,
            )
        )
    except ConfigError as exc:  # also raised for a malformed secret file in DRIFT_HOME
        log.error("%s", exc)
        return 2


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _version() -> str:
    try:
        return metadata.version("drift-cli")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _command_name(args: argparse.Namespace) -> str:
    """`drift defs list`, `drift schedule get`, ...: how error lines name the command."""
    words = [getattr(args, name, None) for name in ("command", "defs_action", "schedule_command")]
    return " ".join(["drift", *(word for word in words if word)])


DSL_STORE_COMMANDS = frozenset({"apply", "graph", "export", "import", "defs"})
"""Commands that talk to the dsl-store rather than the gateway."""


def _flag(args: argparse.Namespace) -> str | None:
    return "--dsl-store-url" if getattr(args, "dsl_store_url", None) else None


def _unreachable(args: argparse.Namespace, url: str, error: BaseException) -> str:
    """The line for a server that did not answer: which one, why, and what set its address."""
    return endpoints.unreachable(
        url, failure_reason(error), flag=_flag(args), dsl_store_first=args.command in DSL_STORE_COMMANDS
    )


def run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; every failure becomes one line on stderr and its exit code (see EXIT_CODES_HELP)."""
    name = _command_name(args)
    try:
        return handler(args)
    except CliError as error:
        message, code = error.message, error.code
    except UnreachableError as error:  # before DriftError: a client's typed "nothing answered"
        message, code = _unreachable(args, error.url, error.__cause__ or error), EXIT_UNREACHABLE
    except DriftError as error:
        message, code = problem_line(error.problem), exit_code_for_status(error.status)
    except httpx.TransportError as error:
        try:
            url = str(error.request.url)
        except RuntimeError:  # no request attached
            url = "the server"
        message, code = _unreachable(args, url, error), EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # never a traceback for a person; -v shows it
        log.debug("unexpected error", exc_info=True)
        message, code = f"unexpected {type(error).__name__}: {error} (drift -v {args.command} ... shows more)", 1
    sys.stderr.write(f"{name}: {one_line(message)}\n")
    sys.stderr.flush()
    return code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subparser per command, each setting `handler`."""
    parser = argparse.ArgumentParser(
        prog="drift",
        description="Drift workflow platform command line. Servers are found through DRIFT_GATEWAY_URL, "
        "DRIFT_DSL_STORE_URL and DRIFT_NATS_URL (or their _PORT variables), else where a running `drift dev` "
        "wrote them ($DRIFT_HOME/endpoints.json); the API key is DRIFT_API_KEY or $DRIFT_HOME/dev-api-key.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output")
    parser.add_argument("--version", action="version", version=f"drift {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    dev = commands.add_parser(
        "dev",
        help="run the whole platform in the foreground",
        description="Run embedded Temporal, NATS and Redis (unless DRIFT_*_URL/ADDRESS are set) and "
        "all Drift services; load the example bundles; stop everything on Ctrl-C or SIGTERM.",
    )
    dev.add_argument(
        "--bundle",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="also load this bundle file (or every bundle in this folder); repeatable",
    )
    dev.add_argument("--no-examples", action="store_true", help="do not load the bundles under examples/")
    dev.add_argument(
        "--no-logs",
        action="store_true",
        help="do not copy the services' log lines to this terminal (see DRIFT_HOME/logs)",
    )
    dev.add_argument("--workers", type=_positive, default=1, metavar="N", help="worker processes (default 1)")
    dev.set_defaults(handler=_cmd_dev)
    add_commands(commands)
    add_definition_commands(commands)
    add_definition_admin_commands(commands)
    add_repair_commands(commands)
    add_operation_commands(commands)
    add_completion_commands(commands, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `drift` console script; answers the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="drift: %(message)s",
        stream=sys.stderr,
    )
    # One INFO line per readiness probe is noise.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return run_handler(handler, args)


if __name__ == "__main__":
    sys.exit(main())

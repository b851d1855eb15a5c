"""`python -m drills [--smoke] [--only NAME ...] [--keep]`: run the drills, print and record the figures.

A full run records into drills/results/full.json and docs/reliability.md; a smoke run
into .drift/drills/ (not tracked: CI runs it on every submission).

Exits 1 when any invariant failed (a lost, duplicated or stuck run, or any other
failed check), 2 when the stack could not be started.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import structlog

from drift_cli.servers import ServerStartError
from drills.checks import EventLog, Result
from drills.loopback import Downstream, WebhookReceiver
from drills.report import REPO, record, render_table, write_doc
from drills.scenarios import DRILLS, FULL, SMOKE, Context
from drills.stack import DrillStack


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./run drill", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="the trimmed set for CI (small loads, short outages)")
    parser.add_argument(
        "--only", nargs="+", choices=[d.name for d in DRILLS], help="run only these drills (figures not recorded)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the stack's home (logs, data) after the run")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace, home: Path) -> list[Result]:
    sizes = SMOKE if args.smoke else FULL
    chosen = [d for d in DRILLS if not args.only or d.name in args.only]
    results: list[Result] = []
    started = time.monotonic()
    async with DrillStack(home) as stack:
        print(f"stack up in {time.monotonic() - started:.0f}s (home {home})", flush=True)
        downstream = Downstream()
        receiver = WebhookReceiver(stack.webhook_secret)
        await downstream.start()
        await receiver.start()
        log = EventLog(stack)
        await log.start()
        ctx = Context(stack, log, downstream, receiver, sizes)
        try:
            for drill in chosen:
                result = Result(drill.name, drill.title)
                began = time.monotonic()
                print(f"-- {drill.name}: {drill.title}", flush=True)
                try:
                    await drill.body(ctx, result)
                except Exception as error:
                    result.problem(f"the drill crashed: {type(error).__name__}: {error}")
                    traceback.print_exc()
                result.seconds = round(time.monotonic() - began, 1)
                results.append(result)
                verdict = "ok" if result.ok else "FAILED"
                print(
                    f"   {verdict}: acked {result.acked}, lost {result.lost}, duplicated {result.duplicated}, "
                    f"stuck {result.stuck}, webhook duplicates {result.webhook_duplicates} "
                    f"(re-deliveries {result.redelivered}), 5xx/timeouts ran once {result.unclear_ran_once} / "
                    f"never {result.unclear_never_ran} ({result.seconds:.0f}s) {result.figures}",
                    flush=True,
                )
                for problem in result.problems[:10]:
                    print(f"   ! {problem}", flush=True)
                try:
                    await ctx.recover()
                except Exception as error:  # the next drill would measure this one's leftovers
                    result.problem(f"the stack did not recover: {error}")
                    print(f"   ! the stack did not recover: {error}", flush=True)
                    break
        finally:
            await log.close()
            await downstream.close()
            await receiver.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # The drills' own log lines (the proxy's) stay quiet; the services log to their files.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    home = Path(tempfile.mkdtemp(prefix="drift-drills-"))
    began = time.monotonic()
    try:
        results = asyncio.run(_run(args, home))
    except ServerStartError as error:
        print(f"the stack did not start: {error}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"kept {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    total = round(time.monotonic() - began, 1)
    print()
    print(render_table(results))
    print(f"\ntotal {total:.0f}s")
    if not args.only:
        mode = "smoke" if args.smoke else "full"
        command = "./run drill --smoke" if args.smoke else "./run drill"
        kept = record(mode, results, total, command)
        report = write_doc(mode)
        print(f"figures written to {kept.relative_to(REPO)} and {report.relative_to(REPO)}")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""`python -m benchmarks [--smoke] [--only P1,HTTP] [--out PATH]`: measure the figures in one run, write the report.

Full mode (no --smoke, no --only/--skip/--rounds/--loop-iterations) writes docs/benchmarks.md and exits 1
when any goal is missed; any other run writes .drift/benchmarks-smoke.md unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import chains, map_fanout
from benchmarks import figures as fig
from benchmarks.chains import GOAL_ITERATIONS
from benchmarks.report import Figure, Row, count, machine, median, missed_goals, ms, percentile, ratio, render, x
from benchmarks.stack import BenchPlatform, Clients
from drift_cli.servers import InfraStack
from drift_schema.workflow import WorkflowDefinition

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
SMOKE_OUT = REPO / ".drift" / "benchmarks-smoke.md"
IDLE_GOAL_MIB = 120.0


@dataclass(frozen=True)
class Sizes:
    """How much each figure measures."""

    rounds: int
    latency_samples: int
    warmup: int
    burst_starts: int
    burst_concurrency: int
    chain_nodes: int
    chain_runs: int
    loop_iterations: int
    baseline_loop_iterations: int
    tracing_samples: int
    http_nodes: int
    map_items: int
    map_large: int
    idle_settle_s: float
    """How long P6 waits, with no work, for a worker's evaluator processes to exit (they do after 60 s idle)."""


FULL = Sizes(
    rounds=5,
    latency_samples=60,
    warmup=5,
    burst_starts=80,
    burst_concurrency=16,
    chain_nodes=50,
    chain_runs=2,
    loop_iterations=GOAL_ITERATIONS,
    baseline_loop_iterations=2_000,
    tracing_samples=20,
    http_nodes=10,
    map_items=1_000,
    map_large=10_000,
    idle_settle_s=90.0,
)
SMOKE = Sizes(
    rounds=2,
    latency_samples=3,
    warmup=1,
    burst_starts=6,
    burst_concurrency=3,
    chain_nodes=5,
    chain_runs=1,
    loop_iterations=300,
    baseline_loop_iterations=300,
    tracing_samples=3,
    http_nodes=10,
    map_items=50,
    map_large=600,
    idle_settle_s=0.0,
)
FIGURES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "HTTP", "GROWTH")
TRUE_P99_SAMPLES = 200
P50_GOAL = 1.0
P99_GOAL = 1.3
P3_SPEED_GOAL = 4.0
P3_EVENTS_GOAL = 0.05


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- figures


def p1_rows(label: str, base: fig.Latencies, drift: fig.Latencies) -> list[Row]:
    """p50 and p99 of every sample of all rounds (pooled, so the p99 is a true one when samples suffice)."""
    rows = []
    for name, fraction, goal in (("p50", 0.5, P50_GOAL), ("p99", 0.99, P99_GOAL)):
        b, d = percentile(base.all, fraction), percentile(drift.all, fraction)
        rows.append(Row(f"{label}, {name}", ms(b), ms(d), x(ratio(d, b)), f"<= {goal}x", ratio(d, b) <= goal))
    return rows


def p1_figure(lat: dict[str, fig.SyncLatencies], sizes: Sizes) -> Figure:
    base, drift = lat["baseline"], lat["drift"]
    samples = len(drift.answer.all)
    rank = max(1, math.ceil(0.99 * samples))
    notes = [
        f"{samples} samples per side; each p99 is sample number {rank} of {samples} in ascending order (nearest rank).",
        f"per-round p50 of the answer: baseline {', '.join(ms(v) for v in base.answer.per_round(0.5))}; "
        f"Drift {', '.join(ms(v) for v in drift.answer.per_round(0.5))}",
        f"per-round p50 of WAITING recorded: baseline {', '.join(ms(v) for v in base.recorded.per_round(0.5))}; "
        f"Drift {', '.join(ms(v) for v in drift.recorded.per_round(0.5))}",
    ]
    if samples < TRUE_P99_SAMPLES:
        notes.insert(
            0,
            f"Only {samples} samples per side (smoke sizes or `--rounds`): this p99 is not a true p99 "
            f"(at least {TRUE_P99_SAMPLES} are needed); the full run takes {FULL.latency_samples * FULL.rounds}.",
        )
    return Figure(
        "P1",
        "sync start latency, four-node flow ending WAITING",
        f"`POST /v3/workflow/start` (sync) of `bench_four` (three SCRIPT nodes, then an INSTRUCTION) through the "
        f"gateway, against update-with-start straight to Temporal of the same interpreter (the drift-worker "
        f"process's code, plus one update that answers at the first stable state) on a second worker process with "
        f"the same settings. Two clocks per call. **Answer**: from sending the call until the client holds the "
        f"WAITING answer (Drift answers from the WAITING event its worker publishes; update-with-start answers "
        f"after the workflow task has completed). **WAITING recorded**: from sending the call until Temporal's "
        f"history holds the run's `DriftStatus=WAITING` search-attribute upsert (its event time, read back from "
        f"the history after the answer; the server and this process share the machine's clock), the same point on "
        f"both sides. Calls alternate one by one; {sizes.latency_samples} per side per round, "
        f"{count(sizes.rounds, 'round')} after {count(sizes.warmup, 'warm-up call')}; percentiles over all samples of "
        f"all rounds. Each round's runs are "
        f"terminated after it.",
        [*p1_rows("answer", base.answer, drift.answer), *p1_rows("WAITING recorded", base.recorded, drift.recorded)],
        notes,
    )


def p2_figure(bursts: dict[str, list[fig.Burst]], sizes: Sizes) -> Figure:
    base = median(b.rate for b in bursts["baseline"])
    drift = median(b.rate for b in bursts["drift"])
    accepted_b = median((b.starts + b.lost) / b.accepted_s for b in bursts["baseline"])
    accepted_d = median((b.starts + b.lost) / b.accepted_s for b in bursts["drift"])
    notes = [
        f"{side}: {sum(b.lost for b in runs)} runs never reached WAITING within the burst timeout"
        for side, runs in bursts.items()
        if any(b.lost for b in runs)
    ]
    return Figure(
        "P2",
        "sustained async starts per second",
        f"Bursts of {sizes.burst_starts} starts of `bench_four` from {sizes.burst_concurrency} concurrent callers: "
        f"`POST /v3/workflow/start` with a `callbackUrl` (202) through the gateway, against `start_workflow` "
        f"straight to Temporal on the baseline worker. A burst is timed until every one of its runs announced "
        f"WAITING (seen on NATS), so the rate is sustained end to end, not just accepted. Sides alternate; "
        f"{count(sizes.rounds, 'burst')} per side; median.",
        [
            Row(
                "runs WAITING / s",
                f"{base:.1f}",
                f"{drift:.1f}",
                x(ratio(drift, base)),
                ">= 0.9x",
                ratio(drift, base) >= 0.9,
            ),
            Row(
                "starts accepted / s",
                f"{accepted_b:.1f}",
                f"{accepted_d:.1f}",
                x(ratio(accepted_d, accepted_b)),
                "(info)",
            ),
        ],
        notes,
    )


def p3_figure(times: dict[str, list[float]], events: dict[str, int], nodes: int, sizes: Sizes) -> Figure:
    base, drift = median(times["baseline"]), median(times["drift"])
    speed = ratio(base, drift)
    per_node = (events["drift"] - events["drift_one"]) / max(1, nodes - 1)
    per_step = (events["baseline"] - events["baseline_one"]) / max(1, nodes - 1)
    return Figure(
        "P3",
        f"interpreter on a {nodes}-node pure chain",
        f"A chain of {nodes} SCRIPT nodes (each adds one to the previous output) started straight on the "
        f"drift-worker's task queue, against a hand-written workflow of the same shape ({nodes} local activities "
        f"in a row, each adding one) on the baseline worker. {count(sizes.chain_runs, 'run')} per side per "
        f"round, {count(sizes.rounds, 'round')}, alternating; median wall time from start to result. Events per node "
        f"are "
        f"marginal, counted in the runs' histories: (events of the {nodes}-node run - events of a 1-node run) / "
        f"{nodes - 1}.",
        [
            Row("wall time per run", ms(base), ms(drift), "", ""),
            Row(
                "speed (baseline time / Drift time)",
                "1.00x",
                x(speed),
                x(speed),
                f">= {P3_SPEED_GOAL:.0f}x",
                speed >= P3_SPEED_GOAL,
            ),
            Row(
                "history events per pure node",
                f"{per_step:.2f}",
                f"{per_node:.2f}",
                "",
                f"<= {P3_EVENTS_GOAL}",
                per_node <= P3_EVENTS_GOAL,
            ),
            Row(f"history events, {nodes}-node run", str(events["baseline"]), str(events["drift"]), "", ""),
            Row("history events, 1-node run", str(events["baseline_one"]), str(events["drift_one"]), "", ""),
        ],
    )


def p5_figure(off: fig.Latencies, on: fig.Latencies, spans: int, sizes: Sizes) -> Figure:
    p50_off, p50_on = median(off.per_round(0.5)), median(on.per_round(0.5))
    p99_off, p99_on = median(off.per_round(0.99)), median(on.per_round(0.99))
    return Figure(
        "P5",
        "tracing on against off",
        f"The P1 sync start through the gateway on two identical stacks side by side (embedded servers and the "
        f"five services each, same settings): one without an OTLP endpoint, one exporting every span over "
        f"OTLP/HTTP (the SDK's default batching) to an in-process receiver (`tests/e2e/otlp.py`). Two stacks, "
        f"not one server, so that calls can alternate one by one under this machine's shifting load. "
        f"{count(sizes.tracing_samples, 'call')} per side per round, {count(sizes.rounds, 'round')}; median of "
        f"per-round percentiles.",
        [
            Row("p50", ms(p50_off), ms(p50_on), x(ratio(p50_on, p50_off)), "<= 1.1x", ratio(p50_on, p50_off) <= 1.1),
            Row("p99", ms(p99_off), ms(p99_on), x(ratio(p99_on, p99_off)), "(info)"),
        ],
        [f"spans received while tracing was on: {spans}"],
    )


def p6_figure(idle: dict[str, float], loaded: dict[str, float]) -> Figure:
    rows = []
    for name in idle:
        if name == "baseline-worker":
            continue
        rows.append(
            Row(
                f"{name} RSS",
                f"{idle.get('baseline-worker', 0):.0f} MiB" if name.startswith("worker") else "",
                f"{idle[name]:.0f} MiB idle, {loaded.get(name, 0):.0f} MiB under P2",
                "",
                f"<= {IDLE_GOAL_MIB:.0f} MiB idle",
                idle[name] <= IDLE_GOAL_MIB,
            )
        )
    return Figure(
        "P6",
        "resident memory of each service",
        "VmRSS from /proc of each service's process (and any children), idle: after start-up and warm-up, once "
        "each worker's expression evaluator processes have exited for lack of work (60 s without any), and "
        "the peak sampled every 250 ms during P2's Drift bursts. The baseline column of the worker is the "
        "baseline worker process (same code, same settings) idle.",
        rows,
    )


# ---------------------------------------------------------------------- the run


async def measure(sizes: Sizes, home: Path, skip: frozenset[str] = frozenset()) -> tuple[list[Figure], dict[str, str]]:
    from e2e.otlp import OtlpReceiver
    from e2e.receiver import Receiver

    pinned = fig.flow_definition()
    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_at_start = os.getloadavg()[0]
    found: dict[str, Figure] = {}
    traced_run = "P5" not in skip
    infra = InfraStack(home / "infra")
    # P5 compares two identical stacks side by side, so that calls can alternate one by one.
    infra_traced = InfraStack(home / "infra-traced") if traced_run else None
    receiver = await Receiver().start()
    otlp = await OtlpReceiver().start()
    clients: Clients | None = None
    try:
        log("starting embedded servers")
        await asyncio.gather(*(stack.start() for stack in (infra, infra_traced) if stack is not None))
        clients = await Clients.connect(infra)
        log("starting the services and the baseline worker")
        bench = BenchPlatform(infra, home / "plain")
        traced = (
            BenchPlatform(infra_traced, home / "traced", otlp_endpoint=otlp.endpoint, baseline=False)
            if infra_traced is not None
            else None
        )
        try:
            await asyncio.gather(*(p.start() for p in (bench, traced) if p is not None))
            sides = {
                "baseline": lambda: fig.baseline_sync_call(clients, pinned),
                "drift": lambda: fig.drift_sync_call(bench),
            }
            # Warm both paths (imports, caches, connections) before anything is measured.
            for _ in range(sizes.warmup):
                for call in sides.values():
                    await call()
            if traced is not None:
                log("P5")
                tracing = {"off": lambda: fig.drift_sync_start(bench), "on": lambda: fig.drift_sync_start(traced)}
                await fig.interleaved({"on": tracing["on"]}, 0, 0, sizes.warmup)
                lat = await fig.interleaved(tracing, sizes.tracing_samples, sizes.rounds, 0)
                await traced.stop()
                found["P5"] = p5_figure(lat["off"], lat["on"], len(otlp.spans), sizes)
                traced = None
                assert infra_traced is not None
                infra_traced.stop()
                infra_traced = None
            pids = bench.pids()
            idle = await fig.settled_rss(pids, 0.0 if "P6" in skip else sizes.idle_settle_s)
            if "P1" not in skip:
                log(f"P1: {sizes.latency_samples * sizes.rounds} sync starts per side")
                found["P1"] = p1_figure(
                    await fig.sync_rounds(clients, sides, sizes.latency_samples, sizes.rounds), sizes
                )
            if "P3" not in skip:
                log("P3")
                found["P3"] = await measure_p3(clients, sizes)
            if "GROWTH" not in skip:
                log("GROWTH")
                found["GROWTH"] = await chains.growth_figure(clients, sizes.chain_nodes, sizes.rounds, sizes.chain_runs)
            if "HTTP" not in skip:
                log("HTTP")
                found["HTTP"] = await chains.http_figure(clients, sizes.http_nodes, sizes.rounds, sizes.chain_runs)
            if "P4" not in skip:
                log(f"P4: {sizes.loop_iterations:,} iterations (hand-written: {sizes.baseline_loop_iterations:,})")
                found["P4"] = await chains.loop_figure(clients, sizes.loop_iterations, sizes.baseline_loop_iterations)
            if "P7" not in skip:
                log("P7")
                found["P7"] = await map_fanout.measure(clients, sizes.map_items, sizes.map_large, sizes.rounds)
            if not {"P2", "P6"} <= skip:
                log("P2 (and P6 under load)")
                found["P2"], found["P6"] = await measure_p2(clients, bench, receiver.hook_url, pinned, sizes, idle)
        finally:
            await asyncio.gather(*(p.stop() for p in (bench, traced) if p is not None))
    finally:
        if clients is not None:
            await clients.close()
        await receiver.close()
        await otlp.close()
        for stack in (infra, infra_traced):
            if stack is not None:
                stack.stop()

    settings = {
        "load average (1 min) at start, at end": f"{load_at_start:.1f}, {os.getloadavg()[0]:.1f}",
        "mode": "smoke" if sizes is SMOKE else "full",
        "figures": ", ".join(key for key in FIGURES if key in found),
        "rounds": str(sizes.rounds),
        "sizes": (
            f"{sizes.latency_samples * sizes.rounds} sync calls per side, bursts of {sizes.burst_starts} starts from "
            f"{sizes.burst_concurrency} callers, a {sizes.chain_nodes}-node chain, {sizes.http_nodes} HTTP nodes, "
            f"a {sizes.loop_iterations:,}-iteration loop (hand-written: {sizes.baseline_loop_iterations:,})"
        ),
        "started at": started_at,
        "finished at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "total time": f"{time.monotonic() - started:.0f} s",
    }
    return [found[key] for key in FIGURES if key in found], settings


async def measure_p3(clients: Clients, sizes: Sizes) -> Figure:
    """P3: the pure chain against the hand-written chain, run by run, and the histories' marginal events."""
    wf = fig.chain(sizes.chain_nodes)
    times: dict[str, list[float]] = {"baseline": [], "drift": []}
    ids: dict[str, str] = {}
    for _ in range(sizes.rounds):
        for _ in range(sizes.chain_runs):
            seconds, ids["baseline"] = await fig.hand_written_chain(clients, sizes.chain_nodes)
            times["baseline"].append(seconds)
            seconds, ids["drift"] = await fig.drift_chain(clients, wf)
            times["drift"].append(seconds)
    _, one_drift = await fig.drift_chain(clients, fig.chain(1))
    _, one_base = await fig.hand_written_chain(clients, 1)
    events = {
        "baseline": await fig.history_length(clients, ids["baseline"]),
        "drift": await fig.history_length(clients, ids["drift"]),
        "baseline_one": await fig.history_length(clients, one_base),
        "drift_one": await fig.history_length(clients, one_drift),
    }
    return p3_figure(times, events, sizes.chain_nodes, sizes)


async def measure_p2(
    clients: Clients,
    bench: BenchPlatform,
    hook_url: str,
    pinned: WorkflowDefinition,
    sizes: Sizes,
    idle: dict[str, float],
) -> tuple[Figure, Figure]:
    """P2's bursts, side by side, with P6's memory sampled meanwhile."""
    bursts: dict[str, list[fig.Burst]] = {"baseline": [], "drift": []}
    base_start = fig.baseline_async_start(clients, pinned)
    drift_start = fig.drift_async_start(bench, hook_url)
    async with fig.waiting_tap(clients) as tap, fig.RssSampler(bench.pids()) as sampler:
        for _ in range(sizes.rounds):
            bursts["baseline"].append(
                await fig.burst(tap, sizes.burst_starts, sizes.burst_concurrency, base_start, "p2b")
            )
            bursts["drift"].append(
                await fig.burst(tap, sizes.burst_starts, sizes.burst_concurrency, drift_start, "p2d")
            )
    p2 = p2_figure(bursts, sizes)
    if tap.asked:
        p2.notes.append(
            f"{tap.asked} state queries went to runs whose WAITING event the NATS tap had not heard "
            "within 5 s (core NATS is at most once); a run found WAITING counts from that moment."
        )
    return p2, p6_figure(idle, sampler.peak)


PREAMBLE = """
Written by `./run bench` (`uv run --frozen python -m benchmarks`); do not edit by hand: every
sentence here is generated by the benchmark code from what it measured.

Every figure is a ratio against a baseline measured **in the same run**, on the same embedded
Temporal server and with the same worker process settings: the baseline worker is a second
worker process started with the drift-worker's environment and its own task queue, running the
same interpreter code and the hand-written workflows (`benchmarks/baseline_workflows.py`).
Absolute numbers depend on the machine and on what else ran on it (see the load averages below:
on a shared machine they are noisy); the ratios are the figures to compare. The two sides
alternate call by call (P1, P5), burst by burst (P2) or run by run (P3, P7, HTTP, growth) so
background load hits both alike.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every code path, in a few minutes")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"report path (default {DEFAULT_OUT.relative_to(REPO)}; {SMOKE_OUT.relative_to(REPO)} with --smoke)",
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--loop-iterations", type=int, help="override P4's iterations")
    parser.add_argument("--skip", default="", help=f"figures not to measure, e.g. P4,P5 (of {','.join(FIGURES)})")
    parser.add_argument("--only", default="", help="measure only these figures, e.g. P1 or HTTP,GROWTH")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    if args.rounds or args.loop_iterations:
        sizes = Sizes(
            **{
                **sizes.__dict__,
                **({"rounds": args.rounds} if args.rounds else {}),
                **({"loop_iterations": args.loop_iterations} if args.loop_iterations else {}),
            }
        )
    try:
        skip = figures_skipped(args.skip, args.only)
    except ValueError as error:
        parser.error(str(error))
    partial = bool(skip) or sizes not in (FULL, SMOKE)
    # A partial or resized run never overwrites the full report unless told where to write.
    out = args.out or (SMOKE_OUT if args.smoke or partial else DEFAULT_OUT)
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as home:
        figures, settings = asyncio.run(measure(sizes, Path(home), skip))
    settings["command"] = " ".join(["`./run bench", *(sys.argv[1:] if argv is None else argv)]) + "`"
    if args.smoke:
        settings["mode"] = "smoke"
    elif partial:
        settings["mode"] = "full sizes, partial" if sizes == FULL and skip else "partial"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(figures, machine(), settings, PREAMBLE))
    log(f"wrote {out} in {time.monotonic() - began:.0f} s")
    for figure in figures:
        for row in figure.rows:
            if row.met is not None:
                log(
                    f"{figure.key} {row.metric}: {row.drift} vs {row.baseline} ({row.ratio}) goal {row.goal}: "
                    f"{'met' if row.met else 'NOT met'}"
                )
    missed = missed_goals(figures)
    if missed and not args.smoke:
        # Full sizes are the judge of the goals; smoke sizes are too small to hold anyone to them.
        log(f"goals missed: {', '.join(missed)}")
        return 1
    return 0


def figures_skipped(skip: str, only: str) -> frozenset[str]:
    """The figures not to measure, from `--skip` and `--only` (comma lists of FIGURES' keys)."""
    named = {
        name: frozenset(part.strip().upper() for part in value.split(",") if part.strip())
        for name, value in (("--skip", skip), ("--only", only))
    }
    for name, keys in named.items():
        unknown = keys - set(FIGURES)
        if unknown:
            raise ValueError(f"{name}: unknown figures {', '.join(sorted(unknown))} (known: {', '.join(FIGURES)})")
    chosen = named["--only"] or frozenset(FIGURES)
    return frozenset(FIGURES) - (chosen - named["--skip"])


if __name__ == "__main__":
    sys.exit(main())

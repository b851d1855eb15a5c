"""`python -m benchmarks [--smoke] [--out PATH]`: measure P1..P6 in one run and write the report."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import figures as fig
from benchmarks import map_fanout
from benchmarks.report import Figure, Row, machine, median, missed_goals, ratio, render
from benchmarks.stack import BenchPlatform, Clients
from drift_cli.servers import InfraStack

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
IMPROVEMENTS = Path(__file__).with_name("improvements.md")
IDLE_GOAL_MIB = 120.0
HISTORY_LIMIT = 10_240
GOAL_ITERATIONS = 100_000


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
    tracing_samples: int


FULL = Sizes(
    rounds=5,
    latency_samples=20,
    warmup=5,
    burst_starts=80,
    burst_concurrency=16,
    chain_nodes=50,
    chain_runs=2,
    loop_iterations=100_000,
    tracing_samples=20,
)
SMOKE = Sizes(
    rounds=2,
    latency_samples=3,
    warmup=1,
    burst_starts=6,
    burst_concurrency=3,
    chain_nodes=5,
    chain_runs=1,
    loop_iterations=10,
    tracing_samples=3,
)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def x(value: float) -> str:
    return f"{value:.2f}x"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------- figures


def p1_figure(lat: dict[str, fig.Latencies], sizes: Sizes) -> Figure:
    base, drift = lat["baseline"], lat["drift"]
    p50_b, p50_d = median(base.per_round(0.5)), median(drift.per_round(0.5))
    p99_b, p99_d = median(base.per_round(0.99)), median(drift.per_round(0.99))
    return Figure(
        "P1",
        "sync start latency, four-node flow ending WAITING",
        f"`POST /v3/workflow/start` (sync) of `bench_four` (three SCRIPT nodes, then an INSTRUCTION) through the "
        f"gateway, against update-with-start straight to Temporal of the same interpreter (the drift-worker "
        f"process's code, plus one update that answers at the first stable state) on a second worker process with "
        f"the same settings. Calls alternate one by one; {sizes.latency_samples} per side per round, "
        f"{sizes.rounds} rounds after {sizes.warmup} warm-up calls; each percentile is the median over rounds.",
        [
            Row("p50", ms(p50_b), ms(p50_d), x(ratio(p50_d, p50_b)), "<= 1.15x", ratio(p50_d, p50_b) <= 1.15),
            Row("p99", ms(p99_b), ms(p99_d), x(ratio(p99_d, p99_b)), "<= 1.4x", ratio(p99_d, p99_b) <= 1.4),
        ],
        [
            f"per-round p50 baseline {', '.join(ms(v) for v in base.per_round(0.5))}; "
            f"Drift {', '.join(ms(v) for v in drift.per_round(0.5))}",
        ],
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
        f"{sizes.rounds} bursts per side; median.",
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
        f"in a row, each adding one) on the baseline worker. {sizes.chain_runs} runs per side per round, "
        f"{sizes.rounds} rounds, alternating; median wall time from start to result. Events per node are "
        f"marginal: (events of the {nodes}-node run - events of a 1-node run) / {nodes - 1}.",
        [
            Row("wall time per run", ms(base), ms(drift), "", ""),
            Row("speed (baseline time / Drift time)", "1.00x", x(speed), x(speed), ">= 0.8x", speed >= 0.8),
            Row("history events per pure node", f"{per_step:.2f}", f"{per_node:.2f}", "", "<= 3", per_node <= 3),
            Row(f"history events, {nodes}-node run", str(events["baseline"]), str(events["drift"]), "", ""),
        ],
    )


def p4_figure(loop: object, seconds_per_step: float) -> Figure:
    status = getattr(loop, "status", "?")
    iterations = getattr(loop, "iterations", 0)
    elapsed = getattr(loop, "seconds", 0.0)
    runs = getattr(loop, "runs", 0)
    longest = getattr(loop, "longest_history", 0)
    visits = 2 * iterations
    floor = visits * seconds_per_step
    notes = []
    if iterations < GOAL_ITERATIONS:
        notes.append(
            f"This run used {iterations:,} iterations (`--loop-iterations`), not the goal's {GOAL_ITERATIONS:,}: "
            f"at this machine's rate the full loop alone takes about "
            f"{2 * GOAL_ITERATIONS / (visits / elapsed) / 60:.0f} minutes; plain `./run bench` runs it all."
        )
    return Figure(
        "P4",
        f"a {iterations:,}-iteration loop",
        f"`tests/worker/bench_long_loop.py`: a back-edge loop of two pure nodes (SCRIPT, BRANCH), so "
        f"{visits:,} node visits, on the standalone worker harness (`worker_support.standalone`, its own "
        f"embedded servers). The baseline column is the hand-written chain's time per step from P3 times the "
        f"visits: what the same number of plain local activities would cost.",
        [
            Row("completes", "", status, "", "COMPLETED", status.endswith("COMPLETED")),
            Row("wall time", f"{floor:.1f} s", f"{elapsed:.1f} s", x(ratio(elapsed, floor)), ""),
            Row("node visits / s", f"{visits / floor:.0f}" if floor else "", f"{visits / elapsed:.0f}", "", ""),
            Row("runs in the continue-as-new chain", "", str(runs), "", ""),
            Row(
                "largest history of any run",
                "",
                f"{longest:,} events",
                x(longest / HISTORY_LIMIT),
                f"<= {HISTORY_LIMIT:,}",
                longest <= HISTORY_LIMIT,
            ),
        ],
        [
            *notes,
            "Every run of the chain continues as new after at most 500 node visits (or 4,000 events), so "
            "the largest history is set by that cap, not by the number of iterations.",
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
        f"{sizes.tracing_samples} calls per side per round, {sizes.rounds} rounds; median of per-round percentiles.",
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
        "VmRSS from /proc of each service's process (and any children), after start-up and warm-up (idle), and "
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
                "baseline": lambda: fig.baseline_sync_start(clients, pinned),
                "drift": lambda: fig.drift_sync_start(bench),
            }
            # Warm both paths (imports, caches, connections) before anything is measured.
            await fig.interleaved(sides, 0, 0, sizes.warmup)
            if traced is not None:
                log("P5")
                tracing = {"off": sides["drift"], "on": lambda: fig.drift_sync_start(traced)}
                await fig.interleaved({"on": tracing["on"]}, 0, 0, sizes.warmup)
                lat = await fig.interleaved(tracing, sizes.tracing_samples, sizes.rounds, 0)
                await traced.stop()
                found["P5"] = p5_figure(lat["off"], lat["on"], len(otlp.spans), sizes)
                traced = None
                assert infra_traced is not None
                infra_traced.stop()
                infra_traced = None
            pids = bench.pids()
            idle = fig.idle_rss(pids)
            log("P1")
            latencies = await fig.interleaved(sides, sizes.latency_samples, sizes.rounds, 0)
            found["P1"] = p1_figure(latencies, sizes)

            log("P3")
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
            found["P3"] = p3_figure(times, events, sizes.chain_nodes, sizes)
            step_seconds = median(times["baseline"]) / sizes.chain_nodes

            if "P7" not in skip:
                log("P7")
                smoke = sizes is SMOKE
                found["P7"] = await map_fanout.measure(
                    clients, 50 if smoke else 1_000, 600 if smoke else 10_000, sizes.rounds
                )

            log("P2 (and P6 under load)")
            bursts: dict[str, list[fig.Burst]] = {"baseline": [], "drift": []}
            base_start = fig.baseline_async_start(clients, pinned)
            drift_start = fig.drift_async_start(bench, receiver.hook_url)
            async with fig.waiting_tap(clients) as tap, fig.RssSampler(pids) as sampler:
                for _ in range(sizes.rounds):
                    bursts["baseline"].append(
                        await fig.burst(tap, sizes.burst_starts, sizes.burst_concurrency, base_start, "p2b")
                    )
                    bursts["drift"].append(
                        await fig.burst(tap, sizes.burst_starts, sizes.burst_concurrency, drift_start, "p2d")
                    )
            found["P2"] = p2_figure(bursts, sizes)
            if tap.asked:
                found["P2"].notes.append(
                    f"{tap.asked} state queries went to runs whose WAITING event the NATS tap had not heard "
                    "within 5 s (core NATS is at most once); a run found WAITING counts from that moment."
                )
            found["P6"] = p6_figure(idle, sampler.peak)
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

    if "P4" not in skip:
        log(f"P4: {sizes.loop_iterations} iterations on the standalone harness")
        loop = await fig.long_loop(sizes.loop_iterations)
        found["P4"] = p4_figure(loop, step_seconds)
    settings = {
        "load average (1 min) at start, at end": f"{load_at_start:.1f}, {os.getloadavg()[0]:.1f}",
        "mode": "smoke" if sizes is SMOKE else "full",
        "rounds": str(sizes.rounds),
        "sizes": (
            f"{sizes.latency_samples} sync calls per side per round, bursts of {sizes.burst_starts} starts from "
            f"{sizes.burst_concurrency} callers, a {sizes.chain_nodes}-node chain, "
            f"a {sizes.loop_iterations:,}-iteration loop"
        ),
        "total time": f"{time.monotonic() - started:.0f} s",
        "measured at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    order = ["P1", "P2", "P3", "P4", "P5", "P6", "P7"]
    return [found[key] for key in order if key in found], settings


PREAMBLE = """
Written by `./run bench` (`uv run --frozen python -m benchmarks`); do not edit by hand.

Every figure is a ratio against a baseline measured **in the same run**, on the same embedded
Temporal server and with the same worker process settings: the baseline worker is a second
worker process started with the drift-worker's environment and its own task queue, running the
same interpreter code. Absolute numbers depend on the machine and on what else ran on it (see
the load averages below: on a shared machine they are noisy); the ratios are the figures to
compare. Percentiles and rates are medians over rounds; the two sides alternate call
by call (P1), burst by burst (P2) or run by run (P3) so background load hits both alike.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: every code path, in well under 2 minutes")
    parser.add_argument("--out", type=Path, help="report path (default docs/benchmarks.md; a temp file with --smoke)")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--loop-iterations", type=int, help="override P4's iterations")
    parser.add_argument("--skip", default="", help="figures not to measure, e.g. P4,P5 (for quick comparisons)")
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
    out = args.out or (Path(tempfile.gettempdir()) / "drift-benchmarks-smoke.md" if args.smoke else DEFAULT_OUT)
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="drift-bench-") as home:
        skip = frozenset(f.strip().upper() for f in args.skip.split(",") if f.strip())
        figures, settings = asyncio.run(measure(sizes, Path(home), skip))
    if args.smoke:
        settings["mode"] = "smoke"
    appendix = IMPROVEMENTS.read_text() if IMPROVEMENTS.exists() else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(figures, machine(), settings, PREAMBLE, appendix))
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
        # Full mode is the judge of the goals; smoke sizes are too small to hold anyone to them.
        log(f"goals missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

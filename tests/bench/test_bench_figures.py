"""The benchmarks' judging: P1's clocks and true p99, P4's scaled goal, failed figures, --only/--skip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload, SearchAttributes
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent, UpsertWorkflowSearchAttributesEventAttributes

# The benchmarks package lives at the repository root, next to tests/ (it is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.__main__ import FIGURES, SMOKE, TRUE_P99_SAMPLES, Sizes, figures_skipped, p1_figure
from benchmarks.chains import GOAL_ITERATIONS, Chain, LoopRun, failed, loop_rows
from benchmarks.figures import Latencies, SyncLatencies, waiting_recorded_at
from benchmarks.report import Figure, Row, missed_goals


def upsert(status: str, seconds: int, nanos: int = 0) -> HistoryEvent:
    event = HistoryEvent(
        event_type=EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        upsert_workflow_search_attributes_event_attributes=UpsertWorkflowSearchAttributesEventAttributes(
            search_attributes=SearchAttributes(
                indexed_fields={
                    "DriftStatus": Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(status).encode())
                }
            )
        ),
    )
    event.event_time.seconds = seconds
    event.event_time.nanos = nanos
    return event


def test_waiting_is_recorded_at_the_event_time_of_the_waiting_upsert_only() -> None:
    """The WAITING upsert's server time is found; other statuses and other events are passed over."""
    started = HistoryEvent(event_type=EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    started.event_time.seconds = 50
    events = [started, upsert("RUNNING", 100), upsert("WAITING", 101, 250_000_000), upsert("WAITING", 200)]
    assert waiting_recorded_at(events) == pytest.approx(101.25)
    assert waiting_recorded_at(events[:2]) is None


def latencies(values: list[float], rounds: int) -> Latencies:
    per = len(values) // rounds
    return Latencies([values[i * per : (i + 1) * per] for i in range(rounds)])


def sync(answer: list[float], recorded: list[float], rounds: int) -> SyncLatencies:
    return SyncLatencies(latencies(answer, rounds), latencies(recorded, rounds))


def test_p1_judges_both_clocks_on_pooled_samples_and_says_when_the_p99_is_not_a_true_one() -> None:
    """Pooled p50/p99 of both clocks against 1.0x and 1.3x; a run under 200 samples says its p99 is not true."""
    full = Sizes(**{**SMOKE.__dict__, "latency_samples": 100, "rounds": 3})
    base = [0.100] * 300
    # Drift: answers faster, records WAITING at the same speed but with a slow tail of 3% (> 1% of samples).
    drift_answer = [0.090] * 300
    drift_recorded = [0.100] * 291 + [0.200] * 9
    figure = p1_figure({"baseline": sync(base, base, 3), "drift": sync(drift_answer, drift_recorded, 3)}, full)
    verdicts = {row.metric: row.met for row in figure.rows}
    assert verdicts == {
        "answer, p50": True,
        "answer, p99": True,
        "WAITING recorded, p50": True,
        "WAITING recorded, p99": False,
    }
    assert not any("not a true p99" in note for note in figure.notes)
    assert "sample number 297 of 300" in " ".join(figure.notes)

    few = [0.1] * (TRUE_P99_SAMPLES - 2)
    small = Sizes(**{**SMOKE.__dict__, "latency_samples": len(few) // 2, "rounds": 2})
    figure = p1_figure({"baseline": sync(few, few, 2), "drift": sync(few, few, 2)}, small)
    assert "not a true p99" in figure.notes[0]


def loop(iterations: int, seconds: float, longest: int, status: str = "COMPLETED") -> LoopRun:
    return LoopRun(iterations, seconds, status, Chain(runs=max(1, iterations // 250), longest=longest))


def test_p4_judges_a_shorter_loop_on_its_time_scaled_to_the_goals_iterations() -> None:
    """1,000 iterations in 0.5 s meet the 60 s goal (50 s scaled); in 0.7 s they miss it; a long history misses."""
    base = loop(1_000, 6.0, 505)
    met = loop_rows("t", "m", base, loop(1_000, 0.5, 600))
    assert missed_goals([met]) == []
    assert any("scaled" in note for note in met.notes)
    slow = loop_rows("t", "m", base, loop(1_000, 0.7, 600))
    assert missed_goals([slow]) == ["P4 wall time (scaled to 100,000 iterations)"]
    full = loop_rows("t", "m", base, loop(GOAL_ITERATIONS, 59.0, 10_241))
    assert missed_goals([full]) == ["P4 largest history of any run"]
    assert not any("scaled" in note for note in full.notes)
    speed = next(row for row in met.rows if row.metric.startswith("speed per visit"))
    assert speed.drift == "12.00x"


def test_a_figure_whose_measurement_failed_misses_its_goal_and_names_the_error() -> None:
    """A figure that raised is a missed goal (full mode then exits 1) whose row quotes the error."""
    figure = failed("GROWTH", "growth", "how", RuntimeError("over its limit"))
    assert missed_goals([figure]) == ["GROWTH measured"]
    assert "RuntimeError: over its limit" in figure.rows[0].drift


def test_only_and_skip_choose_the_figures_and_refuse_unknown_names() -> None:
    """--only keeps just its figures, --skip removes from them, and a name that is no figure is refused."""
    assert figures_skipped("", "") == frozenset()
    assert figures_skipped("p4, P5", "") == {"P4", "P5"}
    assert figures_skipped("", "p1,http") == frozenset(FIGURES) - {"P1", "HTTP"}
    assert figures_skipped("HTTP", "P1,HTTP") == frozenset(FIGURES) - {"P1"}
    with pytest.raises(ValueError, match="P9"):
        figures_skipped("", "P1,P9")


def test_full_mode_exits_1_on_a_missed_goal_and_every_report_names_its_commit_and_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Full sizes exit 1 when a goal is missed (smoke exits 0); the written report names the commit and times."""
    import benchmarks.__main__ as bench

    async def measured(sizes: Sizes, home: Path, skip: frozenset[str]) -> tuple[list[Figure], dict[str, str]]:
        figure = Figure("P3", "speed", "how", [Row("speed", "1.00x", "1.20x", "1.20x", ">= 4x", False)])
        return [figure], {"mode": "test", "started at": "2026-01-01 00:00:00 UTC"}

    monkeypatch.setattr(bench, "measure", measured)
    out = tmp_path / "report.md"
    assert bench.main(["--out", str(out)]) == 1
    text = out.read_text()
    assert "| commit |" in text and "| started at | 2026-01-01 00:00:00 UTC |" in text
    assert "| P3 speed | **no** |" in text
    assert f"| command | `./run bench --out {out}` |" in text
    assert bench.main(["--smoke", "--out", str(out)]) == 0
    monkeypatch.setattr(bench, "measure", lambda *a: _met())
    assert bench.main(["--out", str(out)]) == 0


async def _met() -> tuple[list[Figure], dict[str, str]]:
    return [Figure("P1", "latency", "how", [Row("p50", "1 ms", "1 ms", "1.00x", "<= 1.0x", True)])], {}

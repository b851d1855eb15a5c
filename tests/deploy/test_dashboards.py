"""The shipped Grafana dashboards and Prometheus alert rules are well-formed and name each service's metrics by job."""

from __future__ import annotations

import json

import yaml
from support.monitoring import DASHBOARDS, JOBS, RULE_FILES, expressions, selectors


def test_dashboards_are_grafana_json_with_a_prometheus_datasource_variable() -> None:
    """Each dashboard has a unique uid, a datasource variable every panel uses, and PromQL in each target."""
    assert {path.name for path in DASHBOARDS} >= {"drift-platform.json", "temporal-sdk.json"}
    uids = set()
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] not in uids
        uids.add(dashboard["uid"])
        [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        assert variable["query"] == "prometheus"
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_alert_rules_have_names_expressions_and_summaries() -> None:
    """Every rule is an alert with an expression, a severity and a summary; names are unique."""
    names = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names.append(rule["alert"])
                assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
                assert rule["labels"]["severity"] in {"info", "warning", "critical"}
                assert rule["annotations"]["summary"]
    assert len(names) == len(set(names))
    assert any(name.startswith("Temporal") for name in names) and any(name.startswith("Drift") for name in names)


def test_every_metric_selector_names_the_service_it_is_read_from() -> None:
    """A query of a Drift or Temporal SDK metric selects its services by `job`, each one a Drift service."""
    assert list(expressions())
    for selector in selectors():
        assert selector.jobs, f"{selector.source}: {selector.metric} has no job matcher naming one of {JOBS}"

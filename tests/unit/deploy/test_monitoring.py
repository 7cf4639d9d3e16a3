"""The alert rules and the Grafana dashboard under deploy/: valid files, every
expression parsed as PromQL (promql-parser), and every metric they name one that
Falsework serves (read from a real /metrics rendering, cluster metrics included)."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

from falsework.api.metrics import Metrics
from falsework.engine.cluster import empty_body, observe
from falsework.engine.models import Mark, Snapshot
from support.paths import DEPLOY

RULES = DEPLOY / "prometheus" / "falsework-rules.yaml"
DASHBOARD = DEPLOY / "grafana" / "falsework-dashboard.json"
NAME = re.compile(r"\bfalsework_[a-z_]+\b")
# Grafana's variables, as Grafana puts them in before Prometheus sees the query
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "${datasource}": "x"}


def served() -> set[str]:
    """Every sample name a node's /metrics serves, the cluster's included."""
    metrics = Metrics()
    body = empty_body()
    observe(body, Mark(1, "task", "completed", "template:default/t", 1.0))
    observe(body, Mark(2, "step", "completed", "debug:log", 0.1))
    body["gauges"] = {"tasks": {}, "oldest_open_age": 0, "workers_alive": 1, "worker_capacity": 5}
    metrics.cluster.snapshot = Snapshot(2, body, 0.0)
    metrics.claim_latency.observe(0.1)
    metrics.step_duration.labels("debug:log").observe(0.1)
    metrics.tasks_completed.labels("completed").inc()
    text = metrics.render().decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def check_expression(expr: str, names: set[str], where: str) -> None:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    try:
        promql_parser.parse(expr)
    except ValueError as exc:
        raise AssertionError(f"{where}: not PromQL ({exc}): {expr}") from None
    unknown = set(NAME.findall(expr)) - names
    assert not unknown, f"{where}: names no metric Falsework serves: {sorted(unknown)}"


def test_the_alert_rules_parse_and_name_served_metrics() -> None:
    names = served()
    assert {"falsework_tasks", "falsework_task_duration_seconds_bucket"} <= names
    doc: dict[str, Any] = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    (group,) = doc["groups"]
    alerts = {rule["alert"]: rule for rule in group["rules"]}
    # the three the issue names: an outage, no workers, stuck tasks
    assert {"FalseworkDown", "FalseworkNoWorkers", "FalseworkTasksStuck"} <= set(alerts)
    for name, rule in alerts.items():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name
        check_expression(rule["expr"], names, name)
        # the cluster's gauges are on every node: summing them would multiply them
        assert not re.search(r"sum\s*\(\s*falsework_(tasks|workers|worker_capacity)", rule["expr"])


def test_the_dashboard_is_grafana_json_whose_queries_parse() -> None:
    names = served()
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    (variable,) = dash["templating"]["list"]
    assert (variable["name"], variable["type"]) == ("datasource", "datasource")
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    shown: set[str] = set()
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            check_expression(target["expr"], names, panel["title"])
            shown |= set(NAME.findall(target["expr"]))
    for metric in (
        "falsework_tasks",
        "falsework_oldest_open_task_age_seconds",
        "falsework_task_duration_seconds_bucket",
        "falsework_step_duration_seconds_bucket",
        "falsework_workers_alive",
        "falsework_worker_capacity",
    ):
        assert metric in shown, metric


def test_a_broken_expression_is_caught() -> None:
    names = served()
    try:
        check_expression("max(falsework_tasks", names, "here")
    except AssertionError as exc:
        assert "not PromQL" in str(exc)
    else:
        raise AssertionError("an unclosed parenthesis passed")
    try:
        check_expression("max(falsework_no_such_metric)", names, "here")
    except AssertionError as exc:
        assert "falsework_no_such_metric" in str(exc)
    else:
        raise AssertionError("an unknown metric passed")


def test_the_snapshot_age_grows_while_it_cannot_be_read_again() -> None:
    """FalseworkDatabaseUnreachable fires on this: a node that cannot reach the
    database keeps serving its last snapshot, whose age keeps growing."""
    import time

    metrics = Metrics()
    assert "falsework_tasks{" not in metrics.render().decode()  # nothing before a snapshot
    body = empty_body()
    body["gauges"] = {"tasks": {}, "oldest_open_age": 0, "workers_alive": 0, "worker_capacity": 0}
    metrics.cluster.snapshot = Snapshot(0, body, 5.0)
    metrics.cluster.read_at = time.monotonic() - 130.0  # read 130 s ago, 5 s old then
    text = metrics.render().decode()
    (age,) = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "falsework_cluster_metrics_age_seconds"
    ]
    assert 135.0 <= age < 140.0
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    (unreachable,) = [r for r in rules if r["alert"] == "FalseworkDatabaseUnreachable"]
    threshold = float(unreachable["expr"].rsplit(">", 1)[1])
    assert age > threshold

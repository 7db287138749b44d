"""deploy/grafana/rendercost.json: a dashboard whose every expression names metrics rendercost exports
(``observability/metrics.py``'s registry), with a panel for each view the README promises."""

from __future__ import annotations

import json
import re
from typing import Any

from prometheus_client import Metric

from rendercost.observability.metrics import Metrics
from tests.unit.deploy.conftest import DEPLOY

DASHBOARD = DEPLOY / "grafana" / "rendercost.json"
METRIC_NAME = re.compile(r"\brendercost_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
VIEWS = (
    "cost per render",
    "spend by tenant",
    "queue depth",
    "batch fill",
    "stage seconds",
    "cache hit",
    "busy vs idle",
)


def exported_names() -> set[str]:
    """Every series name the registry can expose (a labelled family with no samples yet still counts)."""
    metrics = Metrics()
    metrics.watch_queue(lambda: {})
    families: list[Metric] = list(metrics.registry.collect())
    names = {family.name + suffix for family in families for suffix in SUFFIXES[family.type]}
    assert "rendercost_queue_depth" in names and "rendercost_cost_usd_total" in names
    return names


def _expressions(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {panel["title"]: [target["expr"] for target in panel["targets"]] for panel in dashboard["panels"]}


def test_every_metric_the_dashboard_names_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_names()
    for title, expressions in _expressions(dashboard).items():
        assert expressions, f"{title}: no query"
        for expression in expressions:
            named = set(METRIC_NAME.findall(expression))
            assert named, f"{title}: {expression} names no rendercost metric"
            assert named <= exported, f"{title}: {sorted(named - exported)} are not in metrics.py"


def test_series_names_follow_each_family_s_type() -> None:
    """A histogram has _sum/_count/_bucket series, a counter only _total: a dashboard that asks for
    ``rendercost_cost_usd`` or ``rendercost_render_cost_usd_total`` would draw nothing, and fails."""
    exported = exported_names()
    assert {"rendercost_render_cost_usd_sum", "rendercost_render_cost_usd_bucket"} <= exported
    assert not {"rendercost_render_cost_usd_total", "rendercost_cost_usd", "rendercost_gpu_idle"} & exported


def test_the_dashboard_has_each_promised_view() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    titles = [panel["title"].lower() for panel in dashboard["panels"]]
    for view in VIEWS:
        assert any(view in title for title in titles), f"no panel for {view}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"] for variable in dashboard["templating"]["list"]}
    for expression in (e for exprs in _expressions(dashboard).values() for e in exprs):
        for used in re.findall(r"\$([a-z_]+)", expression):
            assert used in variables or used.startswith("__"), used

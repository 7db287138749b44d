"""A plan as rows: the CSV (one row per scenario, baseline first) and the table ``rendercost plan`` prints.

Money stays a decimal string in every cell; a change column reads ``after - before`` of the row's cost.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rendercost.capacity.figures import ScenarioFigures
from rendercost.capacity.plan import PlanReport
from rendercost.domain.money import usd_text

CSV_COLUMNS = (
    "name", "device", "pricing", "evidence", "cost_usd", "cost_per_month_usd", "change_usd", "change_pct",
    "allocated_usd", "idle_usd", "cost_per_image_marginal_usd", "cost_per_image_loaded_usd",
    "wait_p50_s", "wait_p95_s", "latency_p50_s", "latency_p95_s", "utilization", "workers",
    "workers_needed", "slo_met", "result_hit_rate", "price_as_of",
)  # fmt: skip

TABLE_COLUMNS = (
    ("scenario", "name"),
    ("device", "device"),
    ("pricing", "pricing"),
    ("evidence", "evidence"),
    ("cost USD", "cost_usd"),
    ("per month", "cost_per_month_usd"),
    ("change", "change_pct"),
    ("per image", "cost_per_image_loaded_usd"),
    ("p95 wait s", "wait_p95_s"),
    ("util", "utilization"),
    ("workers", "workers"),
    ("needed", "workers_needed"),
)


def plan_rows(report: PlanReport) -> list[dict[str, Any]]:
    """One flat row per scenario, the baseline first."""
    base = report.baseline
    rows = [_row(base, base, None)]
    for figures in report.scenarios:
        needed = report.workers_needed.get(figures.name)
        rows.append(_row(figures, base, None if needed is None else needed.confirmed))
    return rows


def plan_csv(report: PlanReport) -> str:
    """The rows as CSV text with a header."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(plan_rows(report))
    return buffer.getvalue()


def _row(figures: ScenarioFigures, base: ScenarioFigures, needed: int | None) -> dict[str, Any]:
    data = figures.to_dict()
    change = figures.cost - base.cost
    pct = "" if base.cost == 0 else f"{(change / base.cost * 100):+.1f}%"
    return {
        **data,
        "change_usd": usd_text(change),
        "change_pct": pct,
        "workers_needed": "" if needed is None else needed,
        "slo_met": "" if data["slo_met"] is None else data["slo_met"],
    }

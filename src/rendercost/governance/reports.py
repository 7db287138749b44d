"""Cost reports over the ledger: renders, device time, cost, latency and savings, grouped.

``build_report`` reads the cost lines in ``[since, until)`` (optionally one tenant's) and the jobs they
belong to, and groups them by any of ``tenant, model, preset, stage, class``. Money stays ``Decimal``
and every group's ``cost`` is an exact sum of ledger lines, so the groups add up to ``Ledger.total``.
Idle lines (``Stage.IDLE``, a worker's device time with nothing to do) are kept apart: they make the
*fully loaded* cost per render, and allocated + idle is what the machines cost over the window.

Savings by mechanism: the caches' ``cost_avoided`` on the cost lines (``result``, ``embedding``,
``rewrite``) and the saving lines of routing, batching and the storage lifecycle (``ledger.savings``),
grouped like the cost lines they were measured on. ``cache_hits`` counts renders, never lines.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select

from rendercost.domain.costs import Stage
from rendercost.domain.money import ZERO
from rendercost.ledger.ledger import period_filters
from rendercost.ledger.tables import cost_lines, saving_lines
from rendercost.queue.tables import jobs

DIMENSIONS: dict[str, str] = {
    "tenant": "tenant",
    "model": "model",
    "preset": "preset",
    "stage": "stage",
    "class": "request_class",
}  # report dimension -> cost_lines column
IDLE = str(Stage.IDLE)
CENT = Decimal("0.000001")  # cost-per-render rounding (a millionth of a dollar)
STREAM_BATCH = 5000  # lines fetched from the cursor at a time
_READ = [  # what the report reads of a line
    cost_lines.c[name]
    for name in (
        "job_id", "image_index", "stage", "device_seconds", "cost", "cost_avoided", "details",
        "batch_size", "tenant", "model", "preset", "request_class", "tags",
    )
]  # fmt: skip


def parse_dimensions(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"tenant,model"`` -> ``("tenant", "model")``; ``ValueError`` naming an unknown dimension."""
    if spec is None:
        return ()
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    cleaned = tuple(name.strip() for name in names if name.strip())
    unknown = [name for name in cleaned if name not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown report dimension {unknown[0]!r}: use {', '.join(DIMENSIONS)}")
    return cleaned


@dataclass(frozen=True)
class ReportRow:
    """One group of the report."""

    key: dict[str, str]  # dimension -> value ("" for none)
    renders: int  # distinct jobs
    images: int  # distinct (job, image)
    device_seconds: float  # busy device time
    cost: Decimal  # exact sum of the group's (non-idle) lines
    cost_per_render: Decimal  # cost / renders (marginal)
    p50_latency_s: float | None  # job created -> finished
    p95_latency_s: float | None
    cache_hits: int  # renders (jobs) a cache answered at least one stage of; never more than renders
    cache_hit_rate: float  # share of images with at least one such line
    savings: dict[str, Decimal]  # mechanism -> cost avoided

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "renders": self.renders,
            "images": self.images,
            "device_seconds": round(self.device_seconds, 6),
            "cost_usd": format(self.cost, "f"),
            "cost_per_render_usd": format(self.cost_per_render, "f"),
            "p50_latency_s": self.p50_latency_s,
            "p95_latency_s": self.p95_latency_s,
            "cache_hits": self.cache_hits,
            "cache_hit_rate": round(self.cache_hit_rate, 6),
            "savings_usd": {name: format(value, "f") for name, value in sorted(self.savings.items())},
        }


@dataclass(frozen=True)
class Report:
    """The grouped rows and the window's totals, utilization included."""

    dimensions: tuple[str, ...]
    rows: tuple[ReportRow, ...]
    allocated_cost: Decimal  # all render lines
    idle_cost: Decimal  # all idle lines
    busy_seconds: float
    idle_seconds: float
    renders: int
    savings: dict[str, Decimal] = field(default_factory=dict)

    @property
    def machine_cost(self) -> Decimal:
        """What the machines cost over the window: allocated + idle."""
        return self.allocated_cost + self.idle_cost

    @property
    def marginal_cost_per_render(self) -> Decimal:
        return _per(self.allocated_cost, self.renders)

    @property
    def loaded_cost_per_render(self) -> Decimal:
        """Cost per render with the idle time spread over the renders."""
        return _per(self.machine_cost, self.renders)

    @property
    def utilization(self) -> float:
        total = self.busy_seconds + self.idle_seconds
        return self.busy_seconds / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "group_by": list(self.dimensions),
            "rows": [row.to_dict() for row in self.rows],
            "totals": {
                "renders": self.renders,
                "allocated_cost_usd": format(self.allocated_cost, "f"),
                "idle_cost_usd": format(self.idle_cost, "f"),
                "machine_cost_usd": format(self.machine_cost, "f"),
                "busy_device_seconds": round(self.busy_seconds, 6),
                "idle_device_seconds": round(self.idle_seconds, 6),
                "utilization": round(self.utilization, 6),
                "marginal_cost_per_render_usd": format(self.marginal_cost_per_render, "f"),
                "loaded_cost_per_render_usd": format(self.loaded_cost_per_render, "f"),
                "savings_usd": {name: format(value, "f") for name, value in sorted(self.savings.items())},
            },
        }


def _per(amount: Decimal, count: int) -> Decimal:
    return (amount / count).quantize(CENT) if count else ZERO


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def mechanism_of(details: dict[str, Any], stage: str) -> str:
    """Which mechanism a cost-avoided line credits: ``details["cache"]`` as the pricing and caches write
    it (``result``, ``embedding``, ``rewrite``), else ``details["mechanism"]``, else by stage."""
    named = details.get("cache") or details.get("mechanism")
    if named:
        return str(named)
    return {"prompt_rewrite": "rewrite", "text_encode": "embedding"}.get(stage, "result")


def dimension_value(row: Any, dimension: str) -> str:
    """A line's value for a report dimension; ``class`` is the routed render class (the ``class`` tag)
    when the request named one, else the request's priority class."""
    if dimension == "class":
        tagged = dict(row["tags"]).get("class")
        if tagged:
            return str(tagged)
    return str(row[DIMENSIONS[dimension]] or "")


@dataclass
class _Group:
    jobs: set[str] = field(default_factory=set)
    images: set[tuple[str, int]] = field(default_factory=set)
    seconds: float = 0.0
    cost: Decimal = ZERO
    hit_jobs: set[str] = field(default_factory=set)
    hit_images: set[tuple[str, int]] = field(default_factory=set)
    savings: dict[str, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))


def build_report(
    engine: Engine,
    *,
    by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
) -> Report:
    """The report over lines created in ``[since, until)``; ``tenant`` limits it to one tenant."""
    dims = parse_dimensions(by)
    query = select(*_READ).where(*period_filters(since, until, tenant))
    groups: dict[tuple[str, ...], _Group] = defaultdict(_Group)
    idle_cost, idle_seconds = ZERO, 0.0
    with engine.connect() as conn:  # streamed: memory follows the groups, not the lines
        for row in conn.execution_options(yield_per=STREAM_BATCH).execute(query).mappings():
            if row["stage"] == IDLE:
                idle_cost += row["cost"]
                idle_seconds += float(row["device_seconds"])
                continue
            key = tuple(dimension_value(row, d) for d in dims)
            _add(groups[key], row)
    for saved in saving_rows(engine, since, until, tenant):
        key = tuple(dimension_value(saved, d) for d in dims)
        groups[key].savings[str(saved["mechanism"])] += saved["amount"]
    latencies = _latencies(engine, {job for group in groups.values() for job in group.jobs})
    report_rows = tuple(_finish(dims, key, group, latencies) for key, group in sorted(groups.items()))
    savings: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for group in groups.values():
        for name, value in group.savings.items():
            savings[name] += value
    return Report(
        dimensions=dims,
        rows=report_rows,
        allocated_cost=sum((g.cost for g in groups.values()), ZERO),
        idle_cost=idle_cost,
        busy_seconds=sum(g.seconds for g in groups.values()),
        idle_seconds=idle_seconds,
        renders=len({job for group in groups.values() for job in group.jobs}),
        savings=dict(savings),
    )


def saving_rows(
    engine: Engine, since: datetime | None, until: datetime | None, tenant: str | None
) -> Sequence[Any]:
    """The saving lines (routing, batching, lifecycle; ``ledger.savings``) created in ``[since, until)``."""
    c = saving_lines.c
    conditions = [
        *([c.created_at >= since] if since is not None else []),
        *([c.created_at < until] if until is not None else []),
        *([c.tenant == tenant] if tenant is not None else []),
    ]
    with engine.connect() as conn:
        return conn.execute(select(saving_lines).where(*conditions)).mappings().all()


def _add(group: _Group, row: Any) -> None:
    group.jobs.add(row["job_id"])
    group.images.add((row["job_id"], row["image_index"]))
    group.seconds += float(row["device_seconds"])
    group.cost += row["cost"]
    avoided: Decimal = row["cost_avoided"]
    if avoided > 0:
        group.hit_jobs.add(row["job_id"])
        group.hit_images.add((row["job_id"], row["image_index"]))
        group.savings[mechanism_of(dict(row["details"]), row["stage"])] += avoided


def _latencies(engine: Engine, job_ids: Iterable[str]) -> dict[str, float]:
    ids = list(job_ids)
    found: dict[str, float] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = select(jobs.c.id, jobs.c.created_at, jobs.c.finished_at).where(
                jobs.c.id.in_(ids[start : start + 500]), jobs.c.finished_at.is_not(None)
            )
            for job_id, created, finished in conn.execute(query):
                found[job_id] = (finished - created).total_seconds()
    return found


def _finish(
    dims: tuple[str, ...], key: tuple[str, ...], group: _Group, latencies: dict[str, float]
) -> ReportRow:
    waits = [latencies[job] for job in group.jobs if job in latencies]
    return ReportRow(
        key=dict(zip(dims, key, strict=True)),
        renders=len(group.jobs),
        images=len(group.images),
        device_seconds=group.seconds,
        cost=group.cost,
        cost_per_render=_per(group.cost, len(group.jobs)),
        p50_latency_s=percentile(waits, 0.5),
        p95_latency_s=percentile(waits, 0.95),
        cache_hits=len(group.hit_jobs),
        cache_hit_rate=len(group.hit_images) / len(group.images) if group.images else 0.0,
        savings=dict(group.savings),
    )

"""A scenario's figures, as the plan reports them: money as decimal strings, each figure's evidence.

``figures(simulation, span_s)`` turns a ``capacity.simulate.Simulation`` into ``ScenarioFigures``;
``change(before, after)`` is the before/after/change triple printed beside the as-is baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from rendercost.capacity.simulate import Simulation
from rendercost.domain.money import ZERO, quantize, usd_text

SECONDS_PER_MONTH = Decimal(730 * 3600)  # a cloud month: 730 hours


@dataclass(frozen=True)
class ScenarioFigures:
    """What one scenario would cost and how it would perform over the window."""

    name: str  # scenario name
    device: str  # device type
    pricing: str  # pricing model
    evidence: str  # measured (devices and presets all in the history) or inferred
    price_as_of: str  # price table date
    cost: Decimal  # USD for the window: fleet + storage + rewriting
    cost_per_month: Decimal  # the same, scaled to a 730-hour month
    allocated: Decimal  # busy device time
    idle: Decimal  # fleet cost not spent rendering (idle, cold starts, lost work)
    storage: Decimal  # stored images
    rewrite: Decimal  # prompt rewriting
    render_total: Decimal  # allocated + storage + rewrite: what the ledger's render lines would sum to
    per_image_marginal: Decimal  # render_total / images delivered
    per_image_loaded: Decimal  # cost / images delivered (idle included)
    by_preset: dict[str, Decimal]  # render_total per preset
    wait_p50_s: float  # queue wait of rendered jobs
    wait_p95_s: float
    latency_p50_s: float  # arrival to last image
    latency_p95_s: float
    utilization: float  # busy / billed device-seconds
    workers: int  # fixed fleet size, or autoscale peak
    interruptions: int  # spot interruptions replayed
    result_hit_rate: float  # share of jobs the exact-result cache answered
    embedding_hit_rate: float  # share of jobs whose text embeddings were reused
    cache_source: str  # where the hit rates come from
    jobs: int
    images: int
    slo_met: bool | None = None  # p95 wait <= latency goal; None without a goal

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "pricing": self.pricing,
            "evidence": self.evidence,
            "price_as_of": self.price_as_of,
            "cost_usd": usd_text(self.cost),
            "cost_per_month_usd": usd_text(self.cost_per_month),
            "allocated_usd": usd_text(self.allocated),
            "idle_usd": usd_text(self.idle),
            "storage_usd": usd_text(self.storage),
            "rewrite_usd": usd_text(self.rewrite),
            "render_total_usd": usd_text(self.render_total),
            "cost_per_image_marginal_usd": usd_text(self.per_image_marginal),
            "cost_per_image_loaded_usd": usd_text(self.per_image_loaded),
            "by_preset_usd": {k: usd_text(v) for k, v in sorted(self.by_preset.items())},
            "wait_p50_s": round(self.wait_p50_s, 3),
            "wait_p95_s": round(self.wait_p95_s, 3),
            "latency_p50_s": round(self.latency_p50_s, 3),
            "latency_p95_s": round(self.latency_p95_s, 3),
            "utilization": round(self.utilization, 4),
            "workers": self.workers,
            "interruptions": self.interruptions,
            "result_hit_rate": round(self.result_hit_rate, 4),
            "embedding_hit_rate": round(self.embedding_hit_rate, 4),
            "cache_source": self.cache_source,
            "jobs": self.jobs,
            "images": self.images,
            "slo_met": self.slo_met,
        }


def figures(sim: Simulation, span_s: float) -> ScenarioFigures:
    """The figures of one simulation over a window of ``span_s`` seconds."""
    rendered = [i for i, hit in enumerate(sim.cache.hits) if not hit]
    waits = np.array([sim.replay.wait_s[i] for i in rendered] or [0.0])
    latencies = np.array([sim.replay.latency_s[i] for i in rendered] or [0.0])
    billed = sum(s.end - s.start for s in sim.replay.sessions) or 1.0
    goal = sim.scenario.latency_goal_s
    images = max(sim.images, 1)
    p95 = float(np.percentile(waits, 95))
    return ScenarioFigures(
        name=sim.scenario.name,
        device=sim.device,
        pricing=sim.pricing,
        evidence=sim.evidence,
        price_as_of=sim.price_as_of,
        cost=sim.total,
        cost_per_month=quantize(
            sim.total * SECONDS_PER_MONTH / Decimal(repr(max(span_s, sim.window_s, 1.0)))
        ),
        allocated=sim.allocated_cost,
        idle=max(sim.fleet_cost - sim.allocated_cost, ZERO),
        storage=sim.storage_cost,
        rewrite=sim.rewrite_cost,
        render_total=sim.render_total,
        per_image_marginal=quantize(sim.render_total / images),
        per_image_loaded=quantize(sim.total / images),
        by_preset=sim.by_preset,
        wait_p50_s=float(np.percentile(waits, 50)),
        wait_p95_s=p95,
        latency_p50_s=float(np.percentile(latencies, 50)),
        latency_p95_s=float(np.percentile(latencies, 95)),
        utilization=sim.replay.busy_s / billed,
        workers=sim.replay.peak_workers,
        interruptions=sim.replay.interruptions,
        result_hit_rate=sim.cache.result_hit_rate,
        embedding_hit_rate=sim.cache.embedding_hit_rate,
        cache_source=sim.cache.source,
        jobs=sim.jobs,
        images=sim.images,
        slo_met=None if goal is None else p95 <= goal,
    )


def change(before: Decimal, after: Decimal) -> dict[str, str | None]:
    """``{"before", "after", "change", "change_pct"}`` with money as decimal strings."""
    pct = None if before == 0 else format(((after - before) / before * 100).quantize(Decimal("0.01")), "f")
    return {
        "before": usd_text(before),
        "after": usd_text(after),
        "change": usd_text(after - before),
        "change_pct": pct,
    }

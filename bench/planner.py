"""How long the planner's replay takes for 10k and 1M jobs (goal: 1M jobs in under 60 s), side by side.

A synthetic month-like workload (Poisson arrivals, five presets, four sizes, 1-4 images, three render
classes, a quarter batch priority, prompts that repeat) goes through:

1. the bare event loop (``capacity.replay``) with a fixed fleet;
2. the event loop with an autoscaled fleet and spot interruptions;
3. a whole scenario (``capacity.simulate`` + figures): routing, cache modelling from repeats, call
   shapes from a fitted cost model, the replay, billing and percentiles.

Printed per size: seconds, jobs replayed per second, and the 1M/10k time per job ratio (1.0 = linear).

Usage: .venv/bin/python bench/planner.py [--sizes 10000,1000000] [--seed 1]
Default run: about 1-2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial

from rendercost.capacity.costmodel import features, fit_cost_model
from rendercost.capacity.figures import figures
from rendercost.capacity.history import BatchSample
from rendercost.capacity.replay import Fleet, ReplayJobs, replay
from rendercost.capacity.scenario import Scenario
from rendercost.capacity.simulate import PlanInputs, simulate
from rendercost.capacity.workload import Arrival, Workload
from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.specs import Priority
from rendercost.ledger.catalog import PriceCatalog

PRESETS = ("speed", "speed", "quality", "lightning", "extreme-speed")
SIZES = ((1024, 1024), (832, 1216), (1216, 832), (768, 1344))
CLASSES = ("draft", "draft", "review", "final")
L4_SECONDS_PER_STEP = 0.2  # an L4's SDXL 1024px step with CFG, roughly (12 s for 30 steps + decode)


def workload(count: int, seed: int) -> Workload:
    """``count`` arrivals at 0.3 jobs/s (about 5 L4s busy), prompts drawn from a pool so some repeat."""
    rng = random.Random(seed)
    now, arrivals = 0.0, []
    for _ in range(count):
        now += rng.expovariate(0.3)
        width, height = rng.choice(SIZES)
        arrivals.append(
            Arrival(
                at_s=now,
                preset=rng.choice(PRESETS),
                width=width,
                height=height,
                n=rng.choice((1, 1, 2, 4)),
                render_class=rng.choice(CLASSES),
                priority=Priority.BATCH if rng.random() < 0.25 else Priority.INTERACTIVE,
                prompt=f"prompt {rng.randrange(count // 4 + 1)}",
                seed=rng.randrange(4),
            )
        )
    return Workload(arrivals=tuple(arrivals), span_s=now, source=f"synthetic {count} jobs")


def calibration() -> list[BatchSample]:
    """Samples of an L4-like device: per step ~0.2 s at 1024px with CFG, decode ~1 s per image."""
    samples = []
    for preset in ("speed", "quality"):
        for images in (1, 2, 4):
            for width, height in SIZES:
                pixels = images * width * height
                for stage in DEVICE_STAGES:
                    x = features(stage, preset, images, pixels)
                    per = {"denoise": (0.05, L4_SECONDS_PER_STEP / 2 / 1024**2)}.get(str(stage), (0.05, 1e-6))
                    samples.append(
                        BatchSample("l4", stage, per[0] * x[0] + per[1] * x[1], preset, images, pixels)
                    )
    return samples


def replay_jobs(inputs: PlanInputs) -> ReplayJobs:
    """The workload as replay arrays with fixed shapes (what simulate builds, without the cache view)."""
    shapes: dict[tuple[str, int, int], int] = {}
    arrivals = inputs.workload.arrivals
    index = [shapes.setdefault((a.preset, a.width, a.height), len(shapes)) for a in arrivals]
    calls = [inputs.model.shape("l4", p, w * h) for p, w, h in shapes]
    return ReplayJobs(
        at_s=tuple(a.at_s for a in arrivals),
        shape=tuple(index),
        images=tuple(a.n for a in arrivals),
        batch_priority=tuple(a.priority == Priority.BATCH for a in arrivals),
        hit=tuple(False for _ in arrivals),
        fixed_s=tuple(c.fixed for c in calls),
        per_image_s=tuple(c.per_image for c in calls),
    )


def whole_scenario(inputs: PlanInputs, scenario: Scenario) -> object:
    return figures(simulate(inputs, scenario), inputs.workload.span_s)


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="Comma-separated job counts.")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    catalog = PriceCatalog.load()
    model = fit_cost_model(calibration(), catalog.planner.speeds)
    fixed = Fleet(workers=8, max_batch=4, max_wait_s=0.1)
    scaled = Fleet(autoscale=True, min_workers=1, max_workers=12, jobs_per_worker=2, cold_start_s=30.0,
                   idle_tail_s=120.0, max_batch=4, max_wait_s=0.1, interruptions_per_hour=0.05)  # fmt: skip
    what_if = Scenario(name="spot, drafts on lightning, caches", device="l4", pricing="spot", workers=8,
                       routes={"draft": "lightning"}, caches=True, max_batch=4, max_wait_ms=100)  # fmt: skip
    results: dict[str, dict[int, float]] = {"fixed fleet": {}, "autoscale + spot": {}, "whole scenario": {}}
    print(f"{'path':<18} {'jobs':>9} {'seconds':>9} {'jobs/s':>10}")
    for count in sizes:
        load = workload(count, args.seed)
        inputs = PlanInputs(load, model, catalog, "l4", "on_demand", {}, Decimal(0), 8, 4, 100, 30.0)
        jobs = replay_jobs(inputs)
        runs: dict[str, Callable[[], object]] = {
            "fixed fleet": partial(replay, jobs, fixed, load.span_s),
            "autoscale + spot": partial(replay, jobs, scaled, load.span_s),
            "whole scenario": partial(whole_scenario, inputs, what_if),
        }
        for name, call in runs.items():
            seconds = timed(call)
            results[name][count] = seconds
            print(f"{name:<18} {count:>9,} {seconds:>9.2f} {count / seconds:>10,.0f}")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        for name, times in results.items():
            ratio = (times[large] / large) / (times[small] / small)
            print(f"{name:<18} time per job {large:,} vs {small:,}: {ratio:.2f}x")
        verdict = "met" if results["whole scenario"][large] < 60 else "NOT met"
        print(f"goal: {large:,} jobs in under 60 s (whole scenario): {verdict}")


if __name__ == "__main__":
    main()

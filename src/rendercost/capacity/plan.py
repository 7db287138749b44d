"""The plan: the as-is baseline and every scenario, with changes, break-evens, worker counts and evidence.

Who calls it: ``rendercost plan`` and ``POST /v1/plan``, through ``plan_from_database`` (history from the
ledger, optionally replaced by a workload file). The order of work:

1. ``prepare``: read the window (``capacity.history``) and fit the cost model (``capacity.costmodel``);
2. ``run_scenario`` for the as-is scenario (the history's device, pricing, fleet, batching, routing,
   caches), then for each scenario: replay, price, break-evens (``capacity.breakevens``) and, with a
   latency goal, an Erlang-C worker count confirmed (and corrected) by replays;
3. ``assemble``: beside the baseline, a before/after/change triple per money figure; the evidence; the
   backtest of the as-is replay against the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from rendercost.capacity.breakeven import erlang_c_workers
from rendercost.capacity.breakevens import breakevens
from rendercost.capacity.costmodel import CostModel, fit_cost_model
from rendercost.capacity.figures import ScenarioFigures, change, figures
from rendercost.capacity.history import History, read_history
from rendercost.capacity.scenario import AS_IS, Scenario
from rendercost.capacity.simulate import PlanInputs, Simulation, simulate
from rendercost.capacity.workload import Workload
from rendercost.domain.money import ZERO, usd_text
from rendercost.ledger.catalog import PriceCatalog
from rendercost.settings import Settings

CONFIRM_STEPS = 12  # most replays spent correcting an Erlang-C guess


@dataclass(frozen=True)
class WorkersNeeded:
    """Workers a latency goal needs: the queueing formula's guess and the replay's answer."""

    goal_s: float  # p95 queue wait goal
    erlang_c: int  # M/M/c first guess
    confirmed: int  # fewest workers whose replay meets the goal (or the last tried)
    met: bool  # the confirmed count meets the goal in the replay
    jobs_per_worker: int  # KEDA target value that keeps the goal (queued jobs per worker)

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal_s": self.goal_s,
            "erlang_c": self.erlang_c,
            "confirmed": self.confirmed,
            "met": self.met,
            "keda": {"trigger": "postgresql", "targetQueryValue": str(self.jobs_per_worker)},
        }


@dataclass(frozen=True)
class PlanReport:
    """Everything ``rendercost plan`` prints."""

    baseline: ScenarioFigures  # the as-is replay
    scenarios: tuple[ScenarioFigures, ...]  # the what-ifs, in the order asked
    workers_needed: dict[str, WorkersNeeded]  # by scenario name, where a goal was given
    breakevens: dict[str, dict[str, Any]]  # by scenario name
    keda: dict[str, dict[str, Any]]  # by scenario name: the worker pool's ScaledObject values
    evidence: dict[str, Any]  # window, samples, fit errors, price table date, speeds used
    backtest: dict[str, Any] = field(default_factory=dict)  # as-is replay vs the ledger's render lines

    def to_dict(self) -> dict[str, Any]:
        base = self.baseline
        return {
            "evidence": self.evidence,
            "backtest": self.backtest,
            "baseline": {**base.to_dict(), "provenance": self.provenance(base)},
            "scenarios": [
                {
                    **s.to_dict(),
                    "provenance": self.provenance(s),
                    "vs_baseline": {
                        "cost_usd": change(base.cost, s.cost),
                        "cost_per_month_usd": change(base.cost_per_month, s.cost_per_month),
                        "cost_per_image_loaded_usd": change(base.per_image_loaded, s.per_image_loaded),
                    },
                    "workers_needed": (
                        self.workers_needed[s.name].to_dict() if s.name in self.workers_needed else None
                    ),
                    "breakevens": self.breakevens.get(s.name, {}),
                    "keda": self.keda.get(s.name),
                }
                for s in self.scenarios
            ],
        }

    def provenance(self, figures: ScenarioFigures) -> dict[str, Any]:
        """What one scenario's figures rest on: the window, the samples, the evidence, the price date,
        and for a device the history never ran on, the relative speed used and its source."""
        speeds = self.evidence.get("speeds", {})
        measured = figures.device in self.evidence.get("measured_devices", [])
        return {
            "window": self.evidence.get("window"),
            "calibration_samples": self.evidence.get("calibration_samples"),
            "evidence": figures.evidence,
            "price_as_of": figures.price_as_of,
            "device_speed": None if measured else speeds.get(figures.device),
        }


@dataclass(frozen=True)
class PlanContext:
    """A plan in progress: what every scenario shares, and the history it came from."""

    inputs: PlanInputs  # workload, cost model, prices
    history: History  # the window read from the database
    from_workload: bool  # the arrivals come from a workload file (no backtest then)


@dataclass(frozen=True)
class ScenarioOutcome:
    """One scenario's figures, break-evens and worker count."""

    figures: ScenarioFigures
    breakevens: dict[str, Any]
    workers_needed: WorkersNeeded | None
    keda: dict[str, Any]  # ScaledObject values for this scenario's worker pool


def prepare(
    engine: Engine,
    settings: Settings,
    catalog: PriceCatalog,
    *,
    since: datetime,
    until: datetime,
    workload: Workload | None = None,
    workers: int | None = None,
) -> PlanContext:
    """Step 1: read ``[since, until)`` and fit the cost model (``workload`` replaces the arrivals)."""
    history = read_history(engine, since, until)
    model = fit_cost_model(history.samples, catalog.planner.speeds)
    inputs = plan_inputs(history, model, settings, catalog, workers=workers, workload=workload)
    return PlanContext(inputs=inputs, history=history, from_workload=workload is not None)


def run_scenario(inputs: PlanInputs, scenario: Scenario) -> ScenarioOutcome:
    """Steps 2-5 for one scenario: replay, price, break-evens, workers for its latency goal."""
    sim = simulate(inputs, scenario)
    needed = workers_needed(inputs, sim) if scenario.latency_goal_s is not None else None
    return ScenarioOutcome(
        figures=figures(sim, inputs.workload.span_s),
        breakevens=breakevens(inputs, sim),
        workers_needed=needed,
        keda=keda_values(sim, needed),
    )


def assemble(
    context: PlanContext, baseline: ScenarioOutcome, outcomes: Sequence[ScenarioOutcome]
) -> PlanReport:
    """The report: the baseline, the scenarios, the evidence and (from the ledger) the backtest."""
    actual = context.history.actuals
    replayed = baseline.figures
    return PlanReport(
        baseline=replayed,
        scenarios=tuple(o.figures for o in outcomes),
        workers_needed={o.figures.name: o.workers_needed for o in outcomes if o.workers_needed is not None},
        breakevens={o.figures.name: o.breakevens for o in outcomes},
        keda={o.figures.name: o.keda for o in outcomes},
        evidence=evidence(context.inputs),
        backtest=(
            {}
            if context.from_workload
            else backtest(actual.total, replayed.render_total, actual.by_preset, replayed.by_preset)
        ),
    )


def plan_from_database(
    engine: Engine,
    settings: Settings,
    catalog: PriceCatalog,
    *,
    since: datetime,
    until: datetime,
    scenarios: Sequence[Scenario],
    workload: Workload | None = None,
    workers: int | None = None,
) -> PlanReport:
    """The whole plan in one call (``POST /v1/plan``; the CLI runs the steps itself to show progress)."""
    context = prepare(engine, settings, catalog, since=since, until=until, workload=workload, workers=workers)
    baseline = run_scenario(context.inputs, Scenario(name=AS_IS))
    return assemble(context, baseline, [run_scenario(context.inputs, s) for s in scenarios])


def plan_inputs(
    history: History,
    model: CostModel,
    settings: Settings,
    catalog: PriceCatalog,
    *,
    workers: int | None = None,
    workload: Workload | None = None,
) -> PlanInputs:
    """What every scenario shares, from a history (and optionally a workload replacing its arrivals).
    ``workers`` (the as-is fleet) defaults to the devices whose idle lines are in the window, else 1."""
    actual = history.actuals
    jobs = max(len(history.workload.arrivals), 1)
    workers = workers or actual.devices or 1  # the devices that metered idle time, unless told
    return PlanInputs(
        workload=workload or history.workload,
        model=model,
        catalog=catalog,
        device=actual.device_type,
        pricing=actual.pricing_model,
        storage_by_size=history.storage_by_size,
        rewrite_per_job=actual.rewrite_cost / jobs,
        workers=workers,
        max_batch=settings.max_batch_size,
        max_wait_ms=settings.max_wait_ms,
        aging_s=settings.aging_seconds,
        region=settings.region,
        usd_per_hour=actual.usd_per_hour or None,
    )


def keda_values(sim: Simulation, needed: WorkersNeeded | None) -> dict[str, Any]:
    """What the fleet chart's KEDA ScaledObject needs for this scenario: the postgresql trigger's target
    (queued jobs per worker; from the latency goal when there is one) and the replica bounds. Empty for
    a serverless scenario: the provider scales those workers, not the chart."""
    scenario = sim.scenario
    if sim.pricing == "serverless":
        return {}
    scaled = scenario.autoscale
    per_worker = needed.jobs_per_worker if needed is not None else scenario.jobs_per_worker
    replicas = needed.confirmed if needed is not None else sim.replay.peak_workers
    return {
        "trigger": "postgresql",
        "targetQueryValue": str(per_worker),
        "minReplicaCount": scenario.min_workers if scaled else replicas,
        "maxReplicaCount": max(scenario.max_workers, replicas) if scaled else replicas,
        "cooldownPeriod": int(scenario.idle_tail_s),
    }


def workers_needed(inputs: PlanInputs, sim: Simulation) -> WorkersNeeded:
    """Erlang-C's guess for the scenario's goal, then replays up or down until the fewest that meet it."""
    goal = sim.scenario.latency_goal_s
    assert goal is not None  # noqa: S101  only called for scenarios with a goal
    rendered = [a for a, hit in zip(inputs.workload.arrivals, sim.cache.hits, strict=True) if not hit]
    span = inputs.workload.span_s
    service = sim.replay.busy_s / max(len(rendered), 1)
    guess = erlang_c_workers(len(rendered) / span, service, goal_s=goal) if rendered else 1
    count, met = _confirm(inputs, sim.scenario, guess, goal)
    per_worker = max(1, int(goal / service)) if service > 0 else sim.scenario.jobs_per_worker
    return WorkersNeeded(goal_s=goal, erlang_c=guess, confirmed=count, met=met, jobs_per_worker=per_worker)


def _confirm(inputs: PlanInputs, scenario: Scenario, guess: int, goal: float) -> tuple[int, bool]:
    def meets(workers: int) -> bool:
        return figures(simulate(inputs, scenario, workers=workers), inputs.workload.span_s).wait_p95_s <= goal

    count = guess
    if meets(count):
        while count > 1 and meets(count - 1):
            count -= 1
        return count, True
    for _ in range(CONFIRM_STEPS):
        count += 1
        if meets(count):
            return count, True
    return count, False


def backtest(
    ledger_total: Decimal,
    replayed_total: Decimal,
    ledger_by_preset: Mapping[str, Decimal],
    replayed_by_preset: Mapping[str, Decimal],
) -> dict[str, Any]:
    """The as-is replay's render cost against the ledger's, in total and per preset (relative errors)."""

    def error(actual: Decimal, replayed: Decimal) -> float | None:
        return None if actual == 0 else float((replayed - actual) / actual)

    return {
        "ledger_total_usd": usd_text(ledger_total),
        "replayed_total_usd": usd_text(replayed_total),
        "error": error(ledger_total, replayed_total),
        "by_preset": {
            preset: {
                "ledger_usd": usd_text(cost),
                "replayed_usd": usd_text(replayed_by_preset.get(preset, ZERO)),
                "error": error(cost, replayed_by_preset.get(preset, ZERO)),
            }
            for preset, cost in sorted(ledger_by_preset.items())
        },
    }


def fit_report(model: CostModel) -> list[dict[str, Any]]:
    """Per (device, stage): samples and the fit's errors."""
    return [
        {
            "device": fit.device_type,
            "stage": str(fit.stage),
            "samples": fit.samples,
            "relative_error": round(fit.relative_error, 4),
            "total_error": round(fit.total_error, 6),
            "coefficients": [float(f"{c:.6g}") for c in fit.coefficients],
        }
        for (_, _), fit in sorted(model.fits.items())
    ]


def evidence(inputs: PlanInputs) -> dict[str, Any]:
    """What every figure rests on."""
    workload = inputs.workload
    return {
        "window": workload.source,
        "window_start": workload.start.isoformat() if workload.start else None,
        "window_seconds": workload.span_s,
        "jobs": len(workload.arrivals),
        "images": workload.images,
        "calibration_samples": inputs.model.samples,
        "measured_devices": list(inputs.model.devices),
        "price_table": {"source": inputs.catalog.source, "as_of": inputs.catalog.as_of},
        "speeds": {
            name: {"relative": s.relative, "evidence": s.evidence, "source": s.source}
            for name, s in sorted(inputs.catalog.planner.speeds.items())
        },
        "fit": fit_report(inputs.model),
    }

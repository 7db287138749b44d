"""One scenario, end to end: route and cache the arrivals, replay them, price the fleet.

``simulate(inputs, scenario)`` is called by ``capacity.plan`` once per scenario (and a few more times
to confirm a worker count). Seconds stay floats; every amount it returns is a ``Decimal``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from rendercost.capacity.billing import (
    DEDICATED_MINIMUM_S,
    FleetBill,
    committed_cost,
    cost_of,
    dedicated_bill,
    serverless_bill,
)
from rendercost.capacity.caching import CacheView, cache_view
from rendercost.capacity.costmodel import INFERRED, MEASURED, CostModel
from rendercost.capacity.history import storage_cost
from rendercost.capacity.replay import Fleet, ReplayJobs, ReplayResult, replay
from rendercost.capacity.scenario import Scenario
from rendercost.capacity.workload import Workload
from rendercost.domain.money import SECONDS_PER_HOUR, ZERO, quantize
from rendercost.errors import InvalidRequest
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.planner_prices import ServerlessOffer

Shape = tuple[str, str, int, int]  # (model, preset, width, height): what may share one call


@dataclass(frozen=True)
class PlanInputs:
    """Everything every scenario shares."""

    workload: Workload  # arrivals
    model: CostModel  # calibrated seconds
    catalog: PriceCatalog  # prices and planner tables
    device: str  # the history's device type
    pricing: str  # the history's pricing model
    storage_by_size: Mapping[tuple[int, int], Decimal]  # mean USD of one stored image per size
    rewrite_per_job: Decimal  # USD of prompt rewriting per job
    workers: int  # the history's fleet size
    max_batch: int  # the history's batching
    max_wait_ms: int
    aging_s: float
    region: str = "us-east-1"  # the server's configured region (settings.region)
    usd_per_hour: Decimal | None = None  # the device-hour price the history was billed at

    def region_of(self, scenario: Scenario) -> str:
        """The catalog region a scenario is priced in."""
        return scenario.region or self.region


@dataclass(frozen=True)
class Simulation:
    """A scenario's replay and its money."""

    scenario: Scenario  # what was asked
    device: str  # device type replayed
    pricing: str  # pricing model billed
    usd_per_hour: Decimal  # device-hour price (serverless: per-second price x 3600)
    replay: ReplayResult  # what happened
    fleet_cost: Decimal  # the machines: busy, idle, cold starts and lost work
    allocated_cost: Decimal  # busy device-seconds only (what the ledger writes as render lines)
    storage_cost: Decimal  # stored images
    rewrite_cost: Decimal  # prompt rewriting
    by_preset: dict[str, Decimal]  # allocated + storage + rewrite per preset
    jobs: int  # requests
    images: int  # images delivered (cache answers included)
    rendered_images: int  # images rendered
    evidence: str  # measured or inferred
    window_s: float  # wall-clock seconds the bill covers (the window, the drain, minimum billing)
    price_as_of: str  # date of the price used
    cache: CacheView  # hits modelled

    @property
    def total(self) -> Decimal:
        """The window's cost: fleet + storage + rewriting."""
        return self.fleet_cost + self.storage_cost + self.rewrite_cost

    @property
    def render_total(self) -> Decimal:
        """The ledger's render lines' equivalent: allocated + storage + rewriting (idle left out)."""
        return self.allocated_cost + self.storage_cost + self.rewrite_cost


def simulate(inputs: PlanInputs, scenario: Scenario, *, workers: int | None = None) -> Simulation:
    """Replay ``scenario`` (``workers`` overrides its fleet size) and price it."""
    pricing = scenario.pricing or inputs.pricing
    offer = _offer(inputs.catalog, scenario) if pricing == "serverless" else None
    device = offer.device if offer is not None else (scenario.device or inputs.device)
    view = cache_view(inputs.workload, scenario.routes, scenario.caches)
    shapes, jobs = _jobs(inputs, view, device)
    fleet = _fleet(inputs, scenario, pricing, offer, device, workers)
    result = replay(jobs, fleet, inputs.workload.span_s)
    usd_per_hour, bill = _bill(inputs, scenario, pricing, offer, device, result)
    arrivals = inputs.workload.arrivals
    rendered = [a.n for a, hit in zip(arrivals, view.hits, strict=True) if not hit]
    by_preset = _by_preset(inputs, view, shapes, result, usd_per_hour)
    evidence = (
        MEASURED if all(e == MEASURED for e in view_evidence(inputs.model, device, shapes)) else INFERRED
    )
    return Simulation(
        scenario=scenario,
        device=device,
        pricing=pricing,
        usd_per_hour=usd_per_hour,
        replay=result,
        fleet_cost=bill.cost,
        allocated_cost=cost_of(result.busy_s, usd_per_hour),
        storage_cost=quantize(sum(_stored(inputs, view), ZERO)),
        rewrite_cost=quantize(inputs.rewrite_per_job * len(arrivals)),
        by_preset=by_preset,
        jobs=len(arrivals),
        images=sum(a.n for a in arrivals),
        rendered_images=sum(rendered),
        evidence=evidence,
        window_s=_billed_window(result, dedicated=offer is None),
        price_as_of=offer.as_of if offer is not None else inputs.catalog.as_of,
        cache=view,
    )


def view_evidence(model: CostModel, device: str, shapes: list[Shape]) -> list[str]:
    """The evidence of each call shape's seconds on ``device``: measured or inferred."""
    return [model.shape(device, preset, w * h).evidence for _, preset, w, h in shapes]


def _offer(catalog: PriceCatalog, scenario: Scenario) -> ServerlessOffer:
    offers = catalog.planner.serverless
    name = scenario.serverless or ""
    if name not in offers:
        raise InvalidRequest(
            f"no serverless offer {name!r} in the price catalog; it has: {', '.join(sorted(offers))}",
            param="serverless",
        )
    return offers[name]


def _jobs(inputs: PlanInputs, view: CacheView, device: str) -> tuple[list[Shape], ReplayJobs]:
    index: dict[Shape, int] = {}
    shape_of: list[int] = []
    text_miss: dict[int, list[int]] = defaultdict(lambda: [0, 0])  # shape -> [misses, images]
    for arrival, preset, hit, emb in zip(
        inputs.workload.arrivals, view.presets, view.hits, view.embedding_hits, strict=True
    ):
        shape = index.setdefault((arrival.model, preset, arrival.width, arrival.height), len(index))
        shape_of.append(shape)
        if not hit:
            text_miss[shape][0] += 0 if emb else arrival.n
            text_miss[shape][1] += arrival.n
    shapes = list(index)
    calls = [
        inputs.model.shape(device, preset, w * h, text_encode_share=_share(text_miss.get(i, [1, 1])))
        for i, (_, preset, w, h) in enumerate(shapes)
    ]
    arrivals = inputs.workload.arrivals
    return shapes, ReplayJobs(
        at_s=tuple(a.at_s for a in arrivals),
        shape=tuple(shape_of),
        images=tuple(a.n for a in arrivals),
        batch_priority=tuple(str(p) == "batch" for p in view.priorities),
        hit=view.hits,
        fixed_s=tuple(c.fixed for c in calls),
        per_image_s=tuple(c.per_image for c in calls),
    )


def _share(counts: list[int]) -> float:
    return counts[0] / counts[1] if counts[1] else 1.0


def _fleet(
    inputs: PlanInputs,
    scenario: Scenario,
    pricing: str,
    offer: ServerlessOffer | None,
    device: str,
    workers: int | None,
) -> Fleet:
    spot = inputs.catalog.planner.spot_interruption.get(device)
    rate = 0.0
    if pricing == "spot":
        rate = (
            scenario.interruptions_per_hour
            if scenario.interruptions_per_hour is not None
            else (spot.per_hour if spot else 0.0)
        )
    autoscale = scenario.autoscale or offer is not None
    return Fleet(
        workers=workers or scenario.workers or inputs.workers,
        autoscale=autoscale and workers is None,
        min_workers=0 if offer is not None else scenario.min_workers,
        max_workers=scenario.max_workers,
        jobs_per_worker=scenario.jobs_per_worker,
        cold_start_s=offer.cold_start_s if offer is not None else scenario.cold_start_s,
        idle_tail_s=offer.idle_timeout_s if offer is not None else scenario.idle_tail_s,
        max_batch=scenario.max_batch or inputs.max_batch,
        max_wait_s=(scenario.max_wait_ms if scenario.max_wait_ms is not None else inputs.max_wait_ms)
        / 1000.0,
        aging_s=inputs.aging_s,
        interruptions_per_hour=rate,
        replacement_s=spot.replacement_s if spot else 120.0,
    )


def _bill(
    inputs: PlanInputs,
    scenario: Scenario,
    pricing: str,
    offer: ServerlessOffer | None,
    device: str,
    result: ReplayResult,
) -> tuple[Decimal, FleetBill]:
    if offer is not None:
        return offer.usd_per_second * SECONDS_PER_HOUR, serverless_bill(result.sessions, offer)
    bought = "on_demand" if pricing == "commitment" else pricing
    as_billed = (device, bought, scenario.region) == (inputs.device, inputs.pricing, None)
    if as_billed and inputs.usd_per_hour:
        price = inputs.usd_per_hour  # what the ledger paid (your own catalog, your region)
    else:
        price = inputs.catalog.device_price(device, bought, inputs.region_of(scenario))
    bill = dedicated_bill(result.sessions, price)
    if pricing != "commitment":
        return price, bill
    wall_hours = _billed_window(result, dedicated=True) / 3600.0  # paid for every hour, per fleet
    cost = committed_cost(bill.cost, wall_hours, scenario.commit_usd_per_hour, scenario.commit_discount)
    hours = Decimal(repr(bill.billed_s)) / SECONDS_PER_HOUR
    return (cost / hours if hours else price), FleetBill(cost=cost, billed_s=bill.billed_s)


def _billed_window(result: ReplayResult, *, dedicated: bool) -> float:
    """The wall-clock time a bill covers: the replay's end, or a session's minimum billed minute."""
    longest = max((s.end - s.start for s in result.sessions), default=0.0)
    return max(result.end_s, max(longest, DEDICATED_MINIMUM_S) if dedicated else longest)


def _stored(inputs: PlanInputs, view: CacheView) -> list[Decimal]:
    """Storage of each rendered job's images (a cache answer stores nothing new)."""
    return [
        storage_cost(inputs.storage_by_size, a.width, a.height) * a.n
        for a, hit in zip(inputs.workload.arrivals, view.hits, strict=True)
        if not hit
    ]


def _by_preset(
    inputs: PlanInputs, view: CacheView, shapes: list[Shape], result: ReplayResult, usd_per_hour: Decimal
) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (_, preset, _, _), seconds in zip(shapes, result.shape_busy_s, strict=True):
        totals[preset] += cost_of(seconds, usd_per_hour)
    for arrival, preset, hit in zip(inputs.workload.arrivals, view.presets, view.hits, strict=True):
        stored = (
            ZERO if hit else storage_cost(inputs.storage_by_size, arrival.width, arrival.height) * arrival.n
        )
        totals[preset] += quantize(stored + inputs.rewrite_per_job)
    return dict(totals)

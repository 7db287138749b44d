"""Read a window of history from the database: the workload, calibration samples, the ledger's totals.

Only SQL over the ``cost_lines`` table and the ``jobs`` table's plain columns, plus each job's request
through ``queue.codec.decode_payload`` (its ``spec``, ``n`` and ``priority``; nothing else). A job is in
the window when it was created in ``[since, until)``; its lines are those with its job id. Idle lines
count when they were written in the window.

Who calls it: ``capacity.plan.plan_from_database`` once per plan; it reads everything in two queries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, RowMapping, select

from rendercost.capacity.workload import Arrival, Workload
from rendercost.domain.costs import DEVICE_STAGES, Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.money import ZERO
from rendercost.domain.specs import Priority
from rendercost.errors import InvalidRequest
from rendercost.ledger.tables import cost_lines
from rendercost.queue.codec import decode_payload
from rendercost.queue.tables import jobs

CLASS_TAG = "class"  # job tag that carries the render class (admission.routing.CLASS_TAG)
RESULT_CACHE = "result"  # details["cache"] of a line answered from the exact-result cache
EMBEDDING_SKIP = "embedding_cache"  # details["skipped"] of a text_encode line the embedding cache spared
_DEVICE_STAGE_NAMES = {str(s) for s in DEVICE_STAGES}


@dataclass(frozen=True)
class BatchSample:
    """One stage of one pipeline call, as measured: what the cost model is fitted on."""

    device_type: str  # catalog device it ran on
    stage: Stage  # which stage
    seconds: float  # the call's device-seconds for the stage (all images together)
    preset: str  # preset of the batch (a batch shares one preset and size)
    images: int  # images in the call
    pixels: int  # sum of the images' pixels


@dataclass(frozen=True)
class LedgerActuals:
    """What the ledger billed for the window (the backtest's reference)."""

    total: Decimal  # USD of every render line (device, storage, rewrite; idle excluded)
    by_preset: Mapping[str, Decimal]  # USD of render lines per preset
    idle_cost: Decimal  # USD of idle lines written in the window
    idle_seconds: float  # their device-seconds
    devices: int  # distinct devices whose idle lines are in the window (0 when none metered idle time)
    busy_seconds: float  # device-seconds of render lines
    storage_cost: Decimal  # USD of storage lines
    rewrite_cost: Decimal  # USD of prompt_rewrite lines
    usd_per_hour: Decimal  # device price most lines were billed at
    device_type: str  # device most lines ran on
    pricing_model: str  # how that device was bought


@dataclass(frozen=True)
class History:
    """A window of history, ready to calibrate and replay."""

    workload: Workload  # the arrivals
    samples: tuple[BatchSample, ...]  # per-call stage measurements
    actuals: LedgerActuals  # what the ledger billed
    storage_by_size: Mapping[tuple[int, int], Decimal]  # (width, height) -> mean USD of one image's storage
    since: datetime  # window start
    until: datetime  # window end


def read_history(engine: Engine, since: datetime, until: datetime) -> History:
    """The history of jobs created in ``[since, until)``; ``InvalidRequest`` when it holds no job."""
    if until <= since:
        raise InvalidRequest("--until must be after --since", param="until")
    with engine.connect() as conn:
        job_rows = conn.execute(
            select(jobs.c.id, jobs.c.created_at, jobs.c.state, jobs.c.tags, jobs.c.payload)
            .where(jobs.c.created_at >= since, jobs.c.created_at < until)
            .where(jobs.c.state == str(JobState.SUCCEEDED))
            .order_by(jobs.c.created_at, jobs.c.seq)
        ).all()
        line_rows = conn.execute(select(cost_lines).where(cost_lines.c.created_at >= since)).mappings().all()
    if not job_rows:
        raise InvalidRequest(f"no succeeded jobs were created between {since} and {until}", param="since")
    specs = {row.id: _job_view(row, since) for row in job_rows}
    lines = [line for line in line_rows if line["job_id"] in specs]
    idle = [line for line in line_rows if line["stage"] == str(Stage.IDLE) and line["created_at"] < until]
    arrivals = tuple(_arrival(view, lines_of) for view, lines_of in _with_lines(specs, lines))
    workload = Workload(
        arrivals=arrivals,
        span_s=(until - since).total_seconds(),
        source=f"ledger {since.isoformat()}..{until.isoformat()}",
        start=since,
        observed_cache=True,
    )
    return History(
        workload=workload,
        samples=tuple(_samples(lines, specs)),
        actuals=_actuals(lines, idle, specs),
        storage_by_size=_storage_by_size(lines, specs),
        since=since,
        until=until,
    )


@dataclass(frozen=True)
class _JobView:
    at_s: float
    preset: str
    width: int
    height: int
    n: int
    priority: Priority
    model: str
    prompt: str
    seed: int
    render_class: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _job_view(row: Any, since: datetime) -> _JobView:
    request = decode_payload(row.payload)
    spec = request.spec
    tags = row.tags or {}
    return _JobView(
        at_s=(row.created_at - since).total_seconds(),
        preset=spec.preset,
        width=spec.width,
        height=spec.height,
        n=request.n,
        priority=request.priority,
        model=spec.model,
        prompt=spec.prompt,
        seed=spec.seed,
        render_class=str(tags.get(CLASS_TAG, "")),
    )


def _with_lines(
    specs: Mapping[str, _JobView], lines: Iterable[RowMapping]
) -> Iterable[tuple[_JobView, list[RowMapping]]]:
    by_job: dict[str, list[RowMapping]] = defaultdict(list)
    for line in lines:
        by_job[line["job_id"]].append(line)
    return ((view, by_job[job_id]) for job_id, view in specs.items())


def _arrival(view: _JobView, lines: list[RowMapping]) -> Arrival:
    device = [line for line in lines if line["stage"] in _DEVICE_STAGE_NAMES]
    hit = bool(device) and all((line["details"] or {}).get("cache") == RESULT_CACHE for line in device)
    embedding = any(
        line["stage"] == str(Stage.TEXT_ENCODE) and (line["details"] or {}).get("skipped") == EMBEDDING_SKIP
        for line in lines
    )
    return Arrival(
        at_s=view.at_s,
        preset=view.preset,
        width=view.width,
        height=view.height,
        n=view.n,
        render_class=view.render_class,
        priority=view.priority,
        model=view.model,
        prompt=view.prompt,
        seed=view.seed,
        result_hit=hit,
        embedding_hit=embedding,
    )


def _samples(lines: Iterable[RowMapping], specs: Mapping[str, _JobView]) -> Iterable[BatchSample]:
    """One sample per (pipeline call, stage) that ran; cache answers and skipped stages are left out."""
    calls: dict[tuple[str, str], list[RowMapping]] = defaultdict(list)
    for line in lines:
        details = line["details"] or {}
        if line["stage"] not in _DEVICE_STAGE_NAMES or not line["batch_id"] or "skipped" in details:
            continue
        if details.get("cache") == RESULT_CACHE:
            continue
        calls[(line["batch_id"], line["stage"])].append(line)
    for (_, stage), members in calls.items():
        views = [specs[line["job_id"]] for line in members]
        yield BatchSample(
            device_type=str(members[0]["device_type"]),
            stage=Stage(stage),
            seconds=sum(float(line["device_seconds"]) for line in members),
            preset=views[0].preset,
            images=len(members),
            pixels=sum(view.pixels for view in views),
        )


def _actuals(lines: list[RowMapping], idle: list[RowMapping], specs: Mapping[str, _JobView]) -> LedgerActuals:
    by_preset: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        by_preset[specs[line["job_id"]].preset] += line["cost"]
    device = [line for line in lines if line["stage"] in _DEVICE_STAGE_NAMES and line["batch_id"]]
    usual = Counter((line["device_type"], line["pricing_model"], line["unit_price"]) for line in device)
    device_type, pricing_model, price = usual.most_common(1)[0][0] if usual else ("cpu", "on_demand", ZERO)
    return LedgerActuals(
        total=sum((line["cost"] for line in lines), ZERO),
        by_preset=dict(by_preset),
        idle_cost=sum((line["cost"] for line in idle), ZERO),
        idle_seconds=sum(float(line["device_seconds"]) for line in idle),
        devices=len({str((line["details"] or {}).get("worker", "")) for line in idle}),
        busy_seconds=sum(float(line["device_seconds"]) for line in device),
        storage_cost=sum((line["cost"] for line in lines if line["stage"] == "storage"), ZERO),
        rewrite_cost=sum((line["cost"] for line in lines if line["stage"] == "prompt_rewrite"), ZERO),
        usd_per_hour=Decimal(price),
        device_type=str(device_type),
        pricing_model=str(pricing_model),
    )


def _storage_by_size(
    lines: Iterable[RowMapping], specs: Mapping[str, _JobView]
) -> dict[tuple[int, int], Decimal]:
    """Mean storage cost of one image per size (file sizes follow content more than pixels, so sizes
    the history never stored fall back to the mean over all sizes; see ``storage_cost``)."""
    totals: dict[tuple[int, int], list[Decimal]] = defaultdict(list)
    for line in lines:
        if line["stage"] == str(Stage.STORAGE) and (line["details"] or {}).get("cache") != RESULT_CACHE:
            view = specs[line["job_id"]]
            totals[(view.width, view.height)].append(line["cost"])
    return {size: sum(costs, ZERO) / len(costs) for size, costs in totals.items()}


def storage_cost(by_size: Mapping[tuple[int, int], Decimal], width: int, height: int) -> Decimal:
    """Storage of one ``width x height`` image: the history's mean for that size, else for all sizes."""
    if (width, height) in by_size:
        return by_size[(width, height)]
    return sum(by_size.values(), ZERO) / len(by_size) if by_size else ZERO

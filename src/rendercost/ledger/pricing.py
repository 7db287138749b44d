"""Pricing: turn a batch's measured device-seconds and an image's stored bytes into cost lines.

Pure functions over domain types and a ``PriceCatalog``; no I/O. The rules:

- A stage's batch cost is ``cost_of_seconds(batch seconds, USD per device-hour)``, quantized once.
- It is split across the batch's images in proportion to their work, ``pixels x steps``, with
  ``split_exact``, so the images' lines of a stage add up to the batch cost EXACTLY.
- A job's prompt rewrite is one LLM call for all its images: its line is split across the images
  (``rewrite_lines``) the same way, so each image's receipt carries its share of the tokens' cost.
  The rewrite's own line (``rewrite_line``) is its tokens from the provider's usage, priced from the
  catalog (builtin rewrites cost 0; a semantic-cache hit costs 0 with the reused rewrite avoided).
- A stage the runner skipped (``RenderResult.skipped_stages``) gets a line too: its cost is what it
  really used (usually 0) and ``cost_avoided`` is what it would have cost, when the caller can estimate
  that (``avoided_seconds``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from rendercost.domain.batch import BatchPlan, RenderResult
from rendercost.domain.costs import DEVICE_STAGES, CostLine, PricingModel, Stage
from rendercost.domain.money import SECONDS_PER_HOUR, ZERO, cost_of_seconds, quantize, split_exact
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.ledger.catalog import PriceCatalog
from rendercost.llm_gateway.types import RewriteResult

BYTES_PER_GB = Decimal(2**30)  # AWS bills storage in binary gigabytes
DAYS_PER_MONTH = Decimal(30)  # a GB-month is priced over a 30-day month
QUANTITY_QUANTUM = Decimal("1e-18")  # the ledger keeps quantities to 18 places; costs are exact
DEVICE_HOUR = "device-hour"
GB_MONTH = "GB-month"


def work_units(spec: RenderSpec) -> int:
    """What one image asks of the device: ``pixels x denoising steps`` that ran (the preset's, or the
    request's ``steps``)."""
    return spec.pixels * spec.run_preset().steps


def price_batch(
    plan: BatchPlan,
    result: RenderResult,
    *,
    catalog: PriceCatalog,
    device_type: str,
    pricing_model: PricingModel | str,
    region: str,
    avoided_seconds: Mapping[Stage, float] | None = None,
) -> list[tuple[CostLine, ...]]:
    """One tuple of device cost lines per plan item, in plan order, stages in pipeline order.

    ``avoided_seconds``: for skipped stages, the whole-batch device-seconds the stage would have taken
    (e.g. a running average the caller keeps); without it a skipped stage's ``cost_avoided`` is 0.
    Raises ``ValueError`` when ``result`` does not answer ``plan`` or names a stage that is not measured
    in device-seconds; ``InvalidRequest`` when the catalog has no price for the device.
    """
    if result.batch_id != plan.batch_id or len(result.images) != plan.size:
        raise ValueError(f"result {result.batch_id!r} does not answer plan {plan.batch_id!r}")
    stages = set(result.stage_seconds) | set(result.skipped_stages)
    if unmeasured := stages - set(DEVICE_STAGES):
        raise ValueError(f"stages {sorted(unmeasured)} are not priced in device-seconds")
    model = PricingModel(pricing_model)
    usd_per_hour = catalog.device_price(device_type, model, region)
    weights = [work_units(item.spec) for item in plan.items]
    per_item: list[list[CostLine]] = [[] for _ in plan.items]
    for stage in (s for s in DEVICE_STAGES if s in stages):
        seconds = result.stage_seconds.get(stage, 0.0)
        costs = split_exact(cost_of_seconds(seconds, usd_per_hour), weights)
        avoided = split_exact(cost_of_seconds((avoided_seconds or {}).get(stage, 0.0), usd_per_hour), weights)
        shares = _split_seconds(seconds, weights)
        details = _skip_details(result.skipped_stages.get(stage))
        for i, item in enumerate(plan.items):
            per_item[i].append(
                CostLine(
                    job_id=item.job_id,
                    image_index=item.image_index,
                    stage=stage,
                    device_seconds=shares[i],
                    unit_price=usd_per_hour,
                    unit=DEVICE_HOUR,
                    quantity=_hours(shares[i]),
                    cost=costs[i],
                    device_type=device_type,
                    pricing_model=model,
                    batch_id=plan.batch_id,
                    batch_size=plan.size,
                    cost_avoided=avoided[i],
                    details={**details, "work_share": f"{weights[i]}/{sum(weights)}"},
                )
            )
    return [tuple(lines) for lines in per_item]


def price_storage(
    job_id: str,
    image_index: int,
    size_bytes: int,
    *,
    catalog: PriceCatalog,
    backend: str,
    region: str,
    retention_days: int,
    output_format: str | None = None,
) -> CostLine:
    """The storage line of one image: ``size_bytes`` kept ``retention_days`` days, plus one PUT; its
    details name the file's ``output_format`` when given (a format saving is measured on it).

    Quantity is GB-months (GB = 2**30 bytes, month = 30 days); cost is quantized once, after adding the
    PUT price, so the line is exact to ``COST_QUANTUM``.
    """
    if size_bytes < 0 or retention_days < 0:
        raise ValueError("size_bytes and retention_days must not be negative")
    prices = catalog.storage_prices(backend, region)
    gb_months = Decimal(size_bytes) / BYTES_PER_GB * Decimal(retention_days) / DAYS_PER_MONTH
    put_cost = prices.put_per_1000 / Decimal(1000)
    return CostLine(
        job_id=job_id,
        image_index=image_index,
        stage=Stage.STORAGE,
        device_seconds=0.0,
        unit_price=prices.gb_month,
        unit=GB_MONTH,
        quantity=gb_months.quantize(QUANTITY_QUANTUM),
        cost=quantize(gb_months * prices.gb_month + put_cost),
        device_type="",
        details={
            "backend": backend,
            "region": region,
            "bytes": size_bytes,
            "retention_days": retention_days,
            "puts": 1,
            "put_price_per_1000": str(prices.put_per_1000),
            **({"format": output_format} if output_format is not None else {}),
        },
    )


def split_line(line: CostLine, job_id: str, n_images: int) -> list[CostLine]:
    """``line`` (a charge for a whole job) as one line per image of ``job_id``: cost, cost avoided and
    quantity split equally with ``split_exact``, so the images' lines add up to ``line`` exactly."""
    if n_images < 1:
        raise ValueError("a job has at least one image")
    weights = [1] * n_images
    costs = split_exact(line.cost, weights)
    avoided = split_exact(line.cost_avoided, weights)
    quantities = split_exact(line.quantity, weights)
    details = {**line.details, "job_images": n_images} if n_images > 1 else dict(line.details)
    return [
        replace(
            line,
            job_id=job_id,
            image_index=i,
            cost=costs[i],
            cost_avoided=avoided[i],
            quantity=quantities[i],
            details=details,
        )
        for i in range(n_images)
    ]


def rewrite_lines(request: RenderRequest, job_id: str) -> list[CostLine]:
    """The prompt_rewrite line of each image of ``request`` (job ``job_id``), in image order; empty when
    the request was not rewritten. The API writes these to the ledger as soon as the job exists (the
    tokens are spent whatever becomes of the render); the worker puts the same lines in the receipts."""
    line = request.rewrite.line if request.rewrite is not None else None
    if line is None:
        return []
    return split_line(line, job_id, request.n)


CACHE_SKIPS = {"embedding_cache": "embedding"}  # skipped-stage reasons that are cache hits -> cache name


def _skip_details(reason: str | None) -> dict[str, str]:
    """A skipped stage's details: the reason, and the cache that answered it (counted as a hit)."""
    if reason is None:
        return {}
    return {"skipped": reason, **({"cache": CACHE_SKIPS[reason]} if reason in CACHE_SKIPS else {})}


def _split_seconds(seconds: float, weights: Sequence[int]) -> list[float]:
    """``seconds`` in proportion to ``weights`` (floats: seconds are measurements, not money)."""
    total = sum(weights)
    if total == 0:
        return [seconds / len(weights)] * len(weights)
    return [seconds * w / total for w in weights]


def _hours(seconds: float) -> Decimal:
    if seconds == 0:
        return ZERO
    return (Decimal(repr(seconds)) / SECONDS_PER_HOUR).quantize(QUANTITY_QUANTUM)


MILLION = Decimal(1_000_000)
TOKENS_UNIT = "1M tokens"  # the unit of a prompt_rewrite line


def rewrite_line(
    result: RewriteResult,
    catalog: PriceCatalog,
    *,
    job_id: str,
    image_index: int = 0,
    avoided: RewriteResult | None = None,
) -> CostLine:
    """The line for one rewrite. Builtin rewrites cost 0. ``avoided``: a semantic-cache hit, priced
    as the rewrite it reused (cost 0, ``cost_avoided`` what that rewrite cost)."""
    paid = avoided or result
    if paid.provider == "builtin":
        cost = ZERO
        unit_price = ZERO
    else:
        prices = catalog.token_prices(paid.model)
        cost = quantize(
            Decimal(paid.input_tokens) * prices.input_per_1m / MILLION
            + Decimal(paid.output_tokens) * prices.output_per_1m / MILLION
        )
        unit_price = prices.output_per_1m
    details = {
        "provider": paid.provider,
        "model": paid.model,
        "input_tokens": paid.input_tokens,
        "output_tokens": paid.output_tokens,
        "fallback": result.fallback,
    }
    if avoided is not None:
        details["cache"] = "rewrite"
    tokens = Decimal(paid.input_tokens + paid.output_tokens)
    return CostLine(
        job_id=job_id,
        image_index=image_index,
        stage=Stage.PROMPT_REWRITE,
        device_seconds=0.0,
        unit_price=unit_price,
        unit=TOKENS_UNIT,
        quantity=ZERO if avoided is not None else tokens / MILLION,
        cost=ZERO if avoided is not None else cost,
        device_type="",
        cost_avoided=cost if avoided is not None else ZERO,
        details=details,
    )

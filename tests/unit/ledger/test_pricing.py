import json
import random
from dataclasses import replace
from decimal import Decimal

import pytest

from rendercost.domain.batch import BatchItem, BatchPlan, RenderedImage, RenderResult
from rendercost.domain.controls import CacheOutcome, RewriteRecord
from rendercost.domain.costs import DEVICE_STAGES, CostLine, PricingModel, Receipt, Stage
from rendercost.domain.money import ZERO, cost_of_seconds, quantize
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import (
    price_batch,
    price_storage,
    rewrite_lines,
    split_line,
    work_units,
)

CATALOG = PriceCatalog.load()
H100 = Decimal("6.88")


def _plan(specs: list[RenderSpec], batch_id: str = "b1") -> BatchPlan:
    return BatchPlan(batch_id, tuple(BatchItem("job", i, spec) for i, spec in enumerate(specs)))


def _result(
    plan: BatchPlan, seconds: dict[Stage, float], skipped: dict[Stage, str] | None = None
) -> RenderResult:
    images = tuple(RenderedImage(item, b"", "image/png", item.spec.seed) for item in plan.items)
    return RenderResult(plan.batch_id, images, seconds, "cuda:0", skipped or {})


def _price(plan: BatchPlan, result: RenderResult, **kw: object) -> list[tuple]:  # type: ignore[type-arg]
    return price_batch(
        plan, result, catalog=CATALOG, device_type="h100", pricing_model="on_demand", region="us-east-1", **kw
    )  # type: ignore[arg-type]


def test_one_image_pays_the_whole_batch_stage_by_stage() -> None:
    plan = _plan([RenderSpec("a", preset="lightning", width=512, height=512)])
    seconds = {Stage.TEXT_ENCODE: 0.01, Stage.DENOISE: 1.5, Stage.DECODE: 0.2}
    [lines] = _price(plan, _result(plan, seconds))
    assert [line.stage for line in lines] == [Stage.TEXT_ENCODE, Stage.DENOISE, Stage.DECODE]
    denoise = lines[1]
    assert denoise.cost == cost_of_seconds(1.5, H100) == Decimal("0.0028666667")
    assert denoise.unit == "device-hour"
    assert denoise.unit_price == H100
    assert abs(denoise.quantity * 3600 - Decimal("1.5")) < Decimal("1e-14")
    assert denoise.device_seconds == 1.5
    assert (denoise.batch_id, denoise.batch_size, denoise.device_type) == ("b1", 1, "h100")
    assert denoise.pricing_model is PricingModel.ON_DEMAND


@pytest.mark.parametrize("seed", range(40))
def test_members_sum_exactly_to_the_batch_cost(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [(64, 64), (512, 512), (1024, 1024), (832, 1216), (8, 8)]
    presets = ["quality", "speed", "lightning", "extreme-speed"]
    specs = [
        RenderSpec("p", preset=rng.choice(presets), width=w, height=h, seed=i)
        for i, (w, h) in enumerate(rng.choice(sizes) for _ in range(rng.randint(1, 9)))
    ]
    plan = _plan(specs)
    seconds = {stage: rng.uniform(0, 50) * rng.choice([1e-4, 1, 1]) for stage in DEVICE_STAGES}
    model = rng.choice(list(PricingModel))
    region = rng.choice(["us-east-1", "us-west-2", "eu-west-1"])
    device = rng.choice(["cpu", "t4", "l4", "h200"])
    per_item = price_batch(
        plan, _result(plan, seconds), catalog=CATALOG, device_type=device, pricing_model=model, region=region
    )
    price = CATALOG.device_price(device, model, region)
    assert len(per_item) == len(specs)
    for stage, secs in seconds.items():
        stage_lines = [next(line for line in lines if line.stage is stage) for lines in per_item]
        assert sum(line.cost for line in stage_lines) == cost_of_seconds(secs, price)
        assert sum(line.device_seconds for line in stage_lines) == pytest.approx(secs)
        assert all(line.cost == quantize(line.cost) for line in stage_lines)
    grand_total = sum(Receipt(lines).total for lines in per_item)
    assert grand_total == sum(cost_of_seconds(s, price) for s in seconds.values())


def test_uneven_work_splits_in_proportion_to_pixels_times_steps() -> None:
    big = RenderSpec("a", preset="quality", width=1024, height=1024)  # 60 steps
    small = RenderSpec("b", preset="lightning", width=512, height=512)  # 4 steps
    assert work_units(big) == 1024 * 1024 * 60
    plan = _plan([big, small])
    big_lines, small_lines = _price(plan, _result(plan, {Stage.DENOISE: 3600.0}))
    ratio = Decimal(work_units(big)) / Decimal(work_units(small))
    assert big_lines[0].cost + small_lines[0].cost == H100
    assert abs(big_lines[0].cost - small_lines[0].cost * ratio) < Decimal("1e-7")
    assert big_lines[0].device_seconds == pytest.approx(3600 * 60 * 4 / (60 * 4 + 4))


def test_skipped_stage_gets_a_zero_line_with_the_cost_avoided() -> None:
    plan = _plan([RenderSpec("a", preset="lightning", width=64, height=64)] * 2)
    result = _result(plan, {Stage.DENOISE: 1.0}, skipped={Stage.TEXT_ENCODE: "embedding_cache_hit"})
    per_item = _price(plan, result, avoided_seconds={Stage.TEXT_ENCODE: 0.5})
    for lines in per_item:
        encode = lines[0]
        assert encode.stage is Stage.TEXT_ENCODE
        assert encode.cost == ZERO
        assert encode.details["skipped"] == "embedding_cache_hit"
    assert sum(lines[0].cost_avoided for lines in per_item) == cost_of_seconds(0.5, H100)
    without_estimate = _price(plan, result)
    assert without_estimate[0][0].cost_avoided == ZERO


def test_mismatched_result_or_non_device_stage_is_refused() -> None:
    plan = _plan([RenderSpec("a")])
    with pytest.raises(ValueError, match="does not answer"):
        _price(plan, replace(_result(plan, {}), batch_id="other"))
    with pytest.raises(ValueError, match="not priced in device-seconds"):
        _price(plan, _result(plan, {Stage.STORAGE: 1.0}))


def test_storage_line_prices_gb_months_and_one_put() -> None:
    gib = 2**30
    s3 = price_storage("job", 0, gib, catalog=CATALOG, backend="s3", region="us-east-1", retention_days=30)
    assert s3.stage is Stage.STORAGE
    assert s3.quantity == Decimal(1)
    assert s3.unit == "GB-month"
    assert s3.cost == Decimal("0.023") + Decimal("0.005") / 1000
    local = price_storage(
        "job", 1, 123_456, catalog=CATALOG, backend="local", region="us-east-1", retention_days=7
    )
    expected = Decimal(123_456) / gib * 7 / 30 * Decimal("0.08")
    assert local.cost == quantize(expected)
    assert local.details["bytes"] == 123_456
    assert local.cost == quantize(local.cost)


def _rewrite_line(cost: str, avoided: str = "0") -> CostLine:
    return CostLine(
        job_id="",
        image_index=0,
        stage=Stage.PROMPT_REWRITE,
        device_seconds=0.0,
        unit_price=Decimal("0.60"),
        unit="1M tokens",
        quantity=Decimal("0.000107"),
        cost=Decimal(cost),
        device_type="",
        cost_avoided=Decimal(avoided),
        details={"input_tokens": 62, "output_tokens": 45},
    )


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_a_job_wide_line_splits_across_its_images_exactly(n: int) -> None:
    line = _rewrite_line("0.0000363001", avoided="0.0000000013")
    shares = split_line(line, "job_9", n)
    assert [share.image_index for share in shares] == list(range(n))
    assert {share.job_id for share in shares} == {"job_9"}
    assert sum((share.cost for share in shares), ZERO) == line.cost
    assert sum((share.cost_avoided for share in shares), ZERO) == line.cost_avoided
    assert sum((share.quantity for share in shares), ZERO) == line.quantity
    assert max(share.cost for share in shares) - min(share.cost for share in shares) <= Decimal("1e-10")


def test_rewrite_lines_come_from_the_requests_record_and_survive_json() -> None:
    spec = RenderSpec(prompt="p", model="default", preset="lightning", width=64, height=64, seed=1)
    plain = RenderRequest(spec=spec, n=2)
    assert rewrite_lines(plain, "job_1") == []
    line = _rewrite_line("0.0000000003")
    record = RewriteRecord("p", "p, detailed", "local", "", 1, 2, False, CacheOutcome.MISS, False, line)
    request = RenderRequest(spec=spec, n=2, rewrite=record)
    decoded = RenderRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    lines = rewrite_lines(decoded, "job_1")
    assert [line.cost for line in lines] == [Decimal("0.0000000002"), Decimal("0.0000000001")]
    assert lines[0].details["job_images"] == 2 and lines[0].stage == Stage.PROMPT_REWRITE
